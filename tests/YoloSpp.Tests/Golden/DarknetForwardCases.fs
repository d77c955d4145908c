/// Golden kind `darknet_forward`: a Darknet cfg with .weights, eval output, eval raw p and train raw p
/// (float32, rel 1e-4 + abs 1e-4; in the contiguous and the channels-last layout), and save(load(weights)) byte-identical.
module YoloSpp.Tests.Golden.DarknetForwardCases

open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests.Golden.Json

open YoloSpp.Platform

let run (folder: string) (case: JsonElement) =
    use _ = torch.NewDisposeScope()
    let model = DarkNet.FromCfgFile(Path.Combine(folder, str "cfg" case))
    let weights = Path.Combine(folder, str "weights_file" case)
    let header = DarknetWeights.Load(model, weights)
    // weights round trip
    let tmp = Path.GetTempFileName()

    try
        DarknetWeights.Save(model, tmp, header)
        Expect.isTrue (File.ReadAllBytes tmp = File.ReadAllBytes weights) "save(load(weights)) is byte-identical"
    finally
        File.Delete tmp

    match tryProp "total_params" case with
    | Some n -> Expect.equal (model.parameters () |> Seq.sumBy (fun p -> p.numel ())) (n.GetInt64()) "total params"
    | None -> ()

    match tryProp "yolo_layers" case with
    | Some ys -> Expect.sequenceEqual model.YoloLayerIndices (items ys |> Array.map (fun e -> e.GetInt32())) "yolo layers"
    | None -> ()

    let x =
        tensorAs torch.float32 (Some(shapeOf (prop "input_shape" case))) (prop "input" case)

    let tol what (a: torch.Tensor) (e: torch.Tensor) = close what 1e-4 1e-4 a e

    let rawShapes name =
        items (prop name case) |> Array.map shapeOf

    // every check in both layouts: contiguous, and channels-last (other oneDNN kernels; DarkNet.ChannelsLast)
    let pass (channelsLast: bool) =
        model.ChannelsLast <- channelsLast
        // the train-mode forward below moves the BatchNorm running stats: each pass starts from the weights file
        DarknetWeights.Load(model, weights) |> ignore
        model.eval () |> ignore
        let out = (use _ = torch.no_grad () in model.forward x)
        tol "eval_output" out.Detections (tensorAs torch.float32 (Some(shapeOf (prop "eval_output_shape" case))) (prop "eval_output" case))
        let evalShapes = rawShapes "eval_raw_p_shapes"

        items (prop "eval_raw_p" case)
        |> Array.iteri (fun i e -> tol (sprintf "eval_raw_p[%d]" i) out.Raw.[i] (tensorAs torch.float32 (Some evalShapes.[i]) e))

        model.train () |> ignore
        let tr = (use _ = torch.no_grad () in model.forward x)
        Expect.isNull (box tr.Detections) "train mode returns raw heads only"
        let trainShapes = rawShapes "train_raw_p_shapes"

        items (prop "train_raw_p" case)
        |> Array.iteri (fun i e -> tol (sprintf "train_raw_p[%d]" i) tr.Raw.[i] (tensorAs torch.float32 (Some trainShapes.[i]) e))

    // under a guard that routes convolutions through unfold + matmul a network cannot compute channels-last
    for channelsLast in [ false; ConvGuard.CheckChannelsLast model.ConvConfigs ] |> List.distinct do
        try
            pass channelsLast
        with :? AssertException as e ->
            failtestf "%s layout: %s" (if channelsLast then "channels-last" else "contiguous") e.Message
