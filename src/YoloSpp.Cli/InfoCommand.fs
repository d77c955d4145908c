/// `yolospp info`: the model summary of a cfg (layers, output shapes, parameters, GFLOPs), like the reference's
/// model_info.
module YoloSpp.Cli.InfoCommand

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

type InfoArgs =
    | [<Mandatory>] Cfg of path: string
    | Weights of path: string
    | Img_Size of int
    | Json

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Cfg _ -> "Darknet cfg file"
            | Weights _ -> "weights to load and check against the cfg (.weights, .pt/.pth, .safetensors)"
            | Img_Size _ -> "input size for shapes and GFLOPs, a multiple of 32 (default 512)"
            | Json -> "print the summary as JSON"

let private shape (s: int64[]) = String.Join("x", s)

/// Runs the command; returns the exit code (2 for bad input, with one line per problem on stderr).
let run (args: ParseResults<InfoArgs>) : int =
    let cfgPath = args.GetResult Cfg
    let size = args.GetResult(Img_Size, 512)

    Errors.run (fun () ->
        DarkNet.CheckImageSize(size, "--img-size")
        Backend.Initialize()
        use model = DarkNet.FromCfgFile cfgPath

        let report =
            args.TryGetResult Weights |> Option.map (fun w -> ModelWeights.Load(model, w))

        let s = ModelInfo.Describe(model, size, size)

        if args.Contains Json then
            let doc =
                {|
                    cfg = cfgPath
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

        0)
