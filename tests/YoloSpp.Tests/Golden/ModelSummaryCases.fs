/// Golden kind `model_summary`: the structure of a cfg as the reference builds it (counts, indices, module
/// classes and fields, parameters and shapes at 512), exact.
module YoloSpp.Tests.Golden.ModelSummaryCases

open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Training
open YoloSpp.Model
open YoloSpp.Tests.Golden.Json

let private ints (e: JsonElement) =
    items e |> Array.map (fun x -> x.GetInt32())

let private longs (e: JsonElement) =
    items e |> Array.map (fun x -> x.GetInt64())

/// The cfg fields of a parsed layer, as the golden stores them.
let private fieldsOf (layer: Cfg.Layer) : (string * string) list =
    let l (xs: int list) = sprintf "%A" (List.toArray xs)

    match layer with
    | Cfg.Convolutional c ->
        [
            "filters", string c.Filters
            "size", string c.Size
            "stride", string c.Stride
            "batch_normalize", (if c.BatchNormalize then "1" else "0")
            "activation", (if c.Activation.IsLeaky then "leaky" else "linear")
        ]
    | Cfg.Shortcut s -> [ "from", l s.From ]
    | Cfg.Route r -> [ "layers", l r.Layers ]
    | Cfg.MaxPool p -> [ "size", string p.Size; "stride", string p.Stride ]
    | Cfg.Upsample u -> [ "stride", string u.Stride ]
    | Cfg.Yolo y -> [ "mask", l y.Mask; "classes", string y.Classes ]

let private goldenField (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.Array -> sprintf "%A" (ints e)
    | JsonValueKind.Number -> string (e.GetInt32())
    | _ -> e.GetString()

let run (folder: string) (case: JsonElement) =
    use _ = torch.NewDisposeScope()
    let cfgPath = Path.Combine(folder, str "cfg" case)
    let text = File.ReadAllText cfgPath

    let text =
        match tryProp "cfg_overrides" case |> Option.bind (tryProp "classes") with
        | Some nc ->
            match CfgWrite.withClasses cfgPath (nc.GetInt32()) None text with
            | Ok t -> t
            | Error es -> failtestf "%A" es
        | None -> text

    let config = ModelCfg.Parse(cfgPath, text)
    let cfg = config.Core
    let model = new DarkNet(config)
    let pars = model.parameters () |> Seq.toArray
    Expect.equal (pars |> Array.sumBy (fun p -> p.numel ())) (num "total_params" case |> int64) "total_params"
    Expect.equal pars.Length (int "num_param_tensors" case) "num_param_tensors"
    Expect.equal model.Modules.Count (int "num_modules" case) "num_modules"
    Expect.sequenceEqual model.YoloLayerIndices (ints (prop "yolo_layers" case)) "yolo_layers"
    Expect.sequenceEqual model.Routs (ints (prop "routs" case)) "routs"

    for i, y in Array.indexed (items (prop "yolo" case)) do
        let layer = model.YoloLayers.[i]
        Expect.equal model.YoloLayerIndices.[i] (int "index" y) "yolo index"
        Expect.equal layer.Stride (int "stride" y) "yolo stride"
        close (sprintf "yolo %d anchors_px" i) 0.0 0.0 layer.AnchorsPx (tensor64 (prop "anchors_px" y))
        close (sprintf "yolo %d anchor_vec" i) 0.0 0.0 layer.AnchorVec (tensor64 (prop "anchor_vec" y))

    let shapes = Summary.layerShapes cfg (512, 512) |> List.toArray
    let channels = CfgGraph.outputChannels cfg |> List.toArray
    let defs = cfg.Modules |> List.toArray

    for m in items (prop "modules" case) do
        let i = int "index" m
        let what f = sprintf "module %d %s" i f
        Expect.equal shapes.[i].Type (str "type" m) (what "type")
        Expect.equal (DarkNet.TorchClassOf model.Modules.[i]) (str "torch_class" m) (what "torch_class")
        Expect.equal (model.Modules.[i].parameters () |> Seq.sumBy (fun p -> p.numel ())) (int64 (int "params" m)) (what "params")
        Expect.sequenceEqual (Array.append [| 1L |] shapes.[i].Shape) (longs (prop "out_shape_train_512" m)) (what "out_shape_train_512")

        match tryProp "out_channels" m with
        | Some c -> Expect.equal channels.[i] (c.GetInt32()) (what "out_channels")
        | None -> ()

        for key, value in fieldsOf defs.[i].Layer do
            match tryProp key m with
            | Some g -> Expect.equal value (goldenField g) (what key)
            | None -> ()
    // the network itself produces those shapes: one eval forward at 512
    model.eval () |> ignore

    let out =
        (use _ = torch.no_grad () in model.forward (torch.zeros (1L, 3L, 512L, 512L)))

    Expect.sequenceEqual out.Detections.shape (longs (prop "eval_output_shape_512" case)) "eval_output_shape_512"

    items (prop "eval_raw_p_shapes_512" case)
    |> Array.iteri (fun k s -> Expect.sequenceEqual out.Raw.[k].shape (longs s) (sprintf "eval raw p %d" k))

    let yoloShapes =
        model.YoloLayerIndices
        |> Seq.map (fun i -> Array.append [| 1L |] shapes.[i].Shape)
        |> Seq.toArray

    items (prop "train_output_shapes_512" case)
    |> Array.iteri (fun k s -> Expect.sequenceEqual yoloShapes.[k] (longs s) (sprintf "train output %d" k))
