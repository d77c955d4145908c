/// `yolospp info`: the model summary of a cfg (layers, output shapes, parameters, GFLOPs), like the reference's
/// model_info.
module YoloSpp.Cli.InfoCommand

open YoloSpp.App
open System
open System.IO
open System.Text.Json
open Argu
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training

open YoloSpp.Platform

type InfoArgs =
    | Cfg of path: string
    | Weights of path: string
    | Classes of int
    | Img_Size of int
    | Json

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Cfg _ -> "Darknet cfg file, or a built-in network (shapes-spp, yolov3-spp); not needed with a .ckpt (it carries its cfg; given, it overrides)"
            | Weights _ ->
                "weights to describe and check: a .ckpt written by `yolospp train` (its run is printed too), or .weights, .pt/.pth, .safetensors with --cfg"
            | Classes _ -> "class count of a built-in network given by name (default 80 for yolov3-spp, 5 for shapes-spp)"
            | Img_Size _ ->
                sprintf "input size for shapes and GFLOPs, a multiple of 32 (default: the checkpoint's training size, else %d)" TrainedModel.DefaultImageSize
            | Json -> "print the summary as JSON"

let private shape (s: int64[]) = String.Join("x", s)

/// The network to describe and, with --weights, what the weights file says about it.
let private resolve (args: ParseResults<InfoArgs>) : DarknetConfig * TrainedModel option =
    let cfg = args.TryGetResult Cfg
    let size = args.TryGetResult Img_Size

    match args.TryGetResult Weights, cfg with
    | Some w, _ ->
        let m =
            TrainedModel.Open(w, Option.toObj cfg, null, Option.toNullable size, ModelOptions.notice)

        m.Config, Some m
    | None, Some c ->
        size |> Option.iter (fun s -> DarkNet.CheckImageSize(s, "--img-size"))
        ModelCfg.LoadOrTopology(c, args.GetResult(Classes, ModelCfg.TopologyClasses c)), None
    | None, None -> raise (ArgumentException "give --weights (a .ckpt describes itself) or --cfg (a cfg file, shapes-spp or yolov3-spp)")

/// The lines that describe a checkpoint's run (empty for weights that are not a .ckpt).
let checkpointLines (m: TrainedModel) : string list =
    match m.Checkpoint with
    | null -> []
    | c ->
        let orOlder (what: string) =
            sprintf "%s: not recorded (an older checkpoint)" what

        let epochs =
            match Option.ofNullable c.Epochs with
            | Some n -> sprintf "epoch %d of 0-%d" c.Epoch (n - 1)
            | None -> sprintf "epoch %d" c.Epoch

        [
            sprintf "trained: %s (epochs count from 0), best mAP@0.5:0.95 %.4f" epochs c.BestMap
            (match Option.ofNullable c.ImageSize with
             | Some s -> sprintf "image size: %d" s
             | None -> orOlder "image size")
            (match c.ClassNames with
             | null -> orOlder "classes" + "; give --names to detect"
             | n -> sprintf "classes (%d): %s" n.Count (String.Join(", ", n)))
            (match c.Dataset with
             | null -> orOlder "dataset"
             | d -> sprintf "dataset: %s" d)
            (match c.Hyp with
             | null -> orOlder "hyperparameters"
             | h ->
                 "hyperparameters: "
                 + String.Join(
                     ", ",
                     h.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                     |> Array.map (fun l -> l.Replace(": ", " "))
                 ))
            (match c.Version with
             | null -> orOlder "written by"
             | v -> sprintf "written by: YoloSpp %s" v)
        ]

/// Runs the command; returns the exit code (2 for bad input, with one line per problem on stderr).
let run (args: ParseResults<InfoArgs>) : int =
    Errors.run (fun () ->
        Backend.Initialize()
        let config, trained = resolve args

        let size =
            match trained with
            | Some m -> m.ImageSize
            | None -> args.GetResult(Img_Size, TrainedModel.DefaultImageSize)

        use model = new DarkNet(config)

        let report =
            trained |> Option.map (fun m -> ModelWeights.Load(model, m.WeightsPath))

        let s = ModelInfo.Describe(model, size, size)

        if args.Contains Json then
            let c = trained |> Option.bind (fun m -> Option.ofObj m.Checkpoint)

            let doc =
                {|
                    cfg =
                        (match trained with
                         | Some m -> m.CfgSource
                         | None -> args.GetResult Cfg)
                    img_size = size
                    layers =
                        s.Layers
                        |> Seq.map (fun l ->
                            {|
                                index = l.Index
                                ``type`` = l.Type
                                output = l.Output
                                ``params`` = l.Parameters
                            |})
                    parameter_tensors = s.ParameterTensors
                    parameters = s.Parameters
                    gradients = s.Gradients
                    gflops = s.Gflops
                    fused_parameter_tensors = s.FusedParameterTensors
                    weights = report |> Option.map string |> Option.toObj
                    checkpoint =
                        c
                        |> Option.map (fun c ->
                            {|
                                epoch = c.Epoch
                                epochs = c.Epochs
                                best_map = c.BestMap
                                img_size = c.ImageSize
                                names = c.ClassNames
                                dataset = c.Dataset
                                hyp = c.Hyp
                                version = c.Version
                            |})
                        |> Option.toObj
                |}

            printfn "%s" (JsonSerializer.Serialize(doc, JsonSerializerOptions(WriteIndented = true)))
        else
            printfn "%5s  %-14s %-18s %12s" "layer" "type" "output" "params"

            for l in s.Layers do
                printfn "%5d  %-14s %-18s %12s" l.Index l.Type (shape l.Output) (l.Parameters.ToString("N0"))

            printfn
                "Model summary: %d modules, %d parameter tensors, %s parameters, %s gradients, %.1f GFLOPs at %dx%d"
                s.Layers.Count
                s.ParameterTensors
                (s.Parameters.ToString("N0"))
                (s.Gradients.ToString("N0"))
                s.Gflops
                size
                size

            printfn "Fused for inference (conv+BN folded): %d parameter tensors" s.FusedParameterTensors
            report |> Option.iter (fun r -> printfn "Weights: %O" r)

            trained
            |> Option.iter (fun m ->
                for line in checkpointLines m do
                    printfn "%s" line)

        0)
