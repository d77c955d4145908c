/// Tests of the network built from a cfg: fusion, weights formats and their errors, freezing, non-square inputs.
module YoloSpp.Tests.Model.ModelTests

open System
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests

let private golden name =
    Path.Combine(TestUtil.repoGoldenDir, name)

let private tinyCfg () = golden "tiny-spp.cfg"
let private tinyWeights () = golden "tiny-spp-random.weights"

let private tinyModel () =
    let m = DarkNet.FromCfgFile(tinyCfg ())
    DarknetWeights.Load(m, tinyWeights ()) |> ignore
    m

let private input (h: int64) (w: int64) =
    let g = new torch.Generator(3UL)
    torch.rand ([| 1L; 3L; h; w |], generator = g)

let private tempFile (ext: string) =
    Path.Combine(Path.GetTempPath(), sprintf "yolospp-%s%s" (Guid.NewGuid().ToString("N")) ext)

let private withTemp ext (f: string -> unit) =
    let p = tempFile ext

    try
        f p
    finally
        if File.Exists p then
            File.Delete p

let private throwsMessage<'E when 'E :> exn> (f: unit -> unit) = TestUtil.throwsMessage<'E> f

let private maxAbsDiff (a: torch.Tensor) (b: torch.Tensor) = (a - b).abs().max().item<float32> ()

let tests =
    testList
        "model"
        [
            test "the state dict has the reference's names only (a reference .pt loads exactly)" {
                // the reference's Darknet holds conv and BN tensors only; the anchors are no state there
                use m = tinyModel ()
                let names = m.state_dict().Keys |> Seq.toArray

                let pattern =
                    Text.RegularExpressions.Regex
                        @"^module_list\.\d+\.(Conv2d\.(weight|bias)|BatchNorm2d\.(weight|bias|running_mean|running_var|num_batches_tracked))$"

                Expect.isNonEmpty names "tensors"
                Expect.isEmpty (names |> Array.filter (pattern.IsMatch >> not)) "names the reference's Darknet does not have"
            }
            test "fused and unfused eval outputs agree" {
                use _ = torch.NewDisposeScope()
                use m = tinyModel ()
                m.eval () |> ignore
                let x = input 128L 128L
                let before = (use _ = torch.no_grad () in m.forward x)
                let tensorsBefore = m.parameters () |> Seq.length
                use f = m.Fuse()
                let after = (use _ = torch.no_grad () in f.forward x)
                Expect.isLessThan (maxAbsDiff before.Detections after.Detections) 1e-3f "decoded boxes (pixels)"
                Array.iter2 (fun a b -> Expect.isLessThan (maxAbsDiff a b) 1e-4f "raw heads") before.Raw after.Raw

                let bnCount =
                    m.Config.Core.Modules
                    |> List.filter (fun d ->
                        match d.Layer with
                        | YoloSpp.Model.Cfg.Convolutional c -> c.BatchNormalize
                        | _ -> false)
                    |> List.length

                Expect.equal (f.parameters () |> Seq.length) (tensorsBefore - bnCount) "one tensor fewer per folded pair"
                Expect.equal (m.parameters () |> Seq.length) tensorsBefore "the original is unchanged"
            }
            test "non-square inputs give ny x nx grids" {
                use _ = torch.NewDisposeScope()
                use m = tinyModel ()
                m.eval () |> ignore
                let out = (use _ = torch.no_grad () in m.forward (input 96L 160L))
                Expect.sequenceEqual (out.Raw |> Array.map (fun r -> r.shape.[2], r.shape.[3])) [| (3L, 5L); (6L, 10L); (12L, 20L) |] "grids"
                Expect.equal out.Detections.shape.[1] (3L * (15L + 60L + 240L)) "rows"
            }
            test "an input with the wrong channel count names the shape" {
                use _ = torch.NewDisposeScope()
                use m = tinyModel ()

                let msg =
                    throwsMessage<ArgumentException> (fun () -> m.forward (torch.zeros (1L, 1L, 64L, 64L)) |> ignore)

                Expect.stringContains msg "input must be [bs, 3, H, W], got [1, 1, 64, 64]" "message"
            }
            test "Darknet weights: save(load(x)) is byte-identical" {
                use m = tinyModel ()

                withTemp ".weights" (fun p ->
                    DarknetWeights.Save(m, p)
                    Expect.isTrue (File.ReadAllBytes p = File.ReadAllBytes(tinyWeights ())) "bytes")
            }
            test "a truncated weights file names the layer where it ran out" {
                use m = DarkNet.FromCfgFile(tinyCfg ())

                withTemp ".weights" (fun p ->
                    let bytes = File.ReadAllBytes(tinyWeights ())
                    File.WriteAllBytes(p, bytes.[.. bytes.Length - 1001])

                    let msg =
                        throwsMessage<InvalidInputException> (fun () -> DarknetWeights.Load(m, p) |> ignore)

                    Expect.stringContains msg "ran out at layer 54 ([convolutional] at cfg line" "layer"
                    Expect.stringContains msg "Conv2d.weight needs" "array")
            }
            test "a weights file with extra bytes says how many" {
                use m = DarkNet.FromCfgFile(tinyCfg ())

                withTemp ".weights" (fun p ->
                    File.WriteAllBytes(p, Array.append (File.ReadAllBytes(tinyWeights ())) (Array.zeroCreate 12))

                    let msg =
                        throwsMessage<InvalidInputException> (fun () -> DarknetWeights.Load(m, p) |> ignore)

                    Expect.stringContains msg "12 surplus bytes after the last convolution" "surplus")
            }
            test "a weights file shorter than its header is an error" {
                use m = DarkNet.FromCfgFile(tinyCfg ())

                withTemp ".weights" (fun p ->
                    File.WriteAllBytes(p, Array.zeroCreate 10)

                    let msg =
                        throwsMessage<InvalidInputException> (fun () -> DarknetWeights.Load(m, p) |> ignore)

                    Expect.stringContains msg "10 bytes is too short for a Darknet weights header" "header")
            }
            test "a cutoff loads only the first modules and tolerates the rest of the file" {
                use m = DarkNet.FromCfgFile(tinyCfg ())
                let last = m.YoloLayerIndices.[2] - 1
                let before = (m.Modules.[last].parameters () |> Seq.head).clone ()
                DarknetWeights.Load(m, tinyWeights (), cutoff = Nullable 10) |> ignore
                Expect.isTrue ((m.Modules.[last].parameters () |> Seq.head).eq(before).all().item<bool> ()) "last predictor untouched"
                let full = tinyModel ()
                Expect.isTrue ((m.Modules.[0].parameters () |> Seq.head).eq(full.Modules.[0].parameters () |> Seq.head).all().item<bool> ()) "module 0 loaded"
            }
            test "safetensors checkpoint: save then load gives identical outputs" {
                use _ = torch.NewDisposeScope()
                use m = tinyModel ()
                m.eval () |> ignore

                withTemp ".safetensors" (fun p ->
                    ModelWeights.Save(m, p)
                    use fresh = DarkNet.FromCfgFile(tinyCfg ())
                    let report = ModelWeights.Load(fresh, p)
                    Expect.isEmpty report.Skipped "nothing skipped"
                    fresh.eval () |> ignore
                    let x = input 64L 64L
                    let a = (use _ = torch.no_grad () in m.forward x)
                    let b = (use _ = torch.no_grad () in fresh.forward x)
                    Expect.isTrue (a.Detections.eq(b.Detections).all().item<bool> ()) "identical")
            }
            test "a PyTorch checkpoint {'model': state_dict} maps onto the reference's names" {
                use _ = torch.NewDisposeScope()
                use m = tinyModel ()

                withTemp ".pt" (fun p ->
                    let sd = Collections.Hashtable()

                    for KeyValue(k, v) in m.state_dict () do
                        sd.[k] <- v

                    TorchSharp.PyBridge.PyTorchPickler.PickleStateDict(p, sd)
                    use fresh = DarkNet.FromCfgFile(tinyCfg ())
                    let report = ModelWeights.Load(fresh, p)
                    Expect.isEmpty report.Skipped "all loaded"
                    Expect.isTrue (report.Loaded |> Seq.contains "module_list.0.Conv2d.weight") "reference name"
                    Expect.isTrue (report.Loaded |> Seq.contains "module_list.0.BatchNorm2d.running_var") "buffers too")
            }
            test "a cfg with another class count loads everything but the predictors, and says so" {
                use _ = torch.NewDisposeScope()
                use m = tinyModel ()

                withTemp ".safetensors" (fun weights ->
                    withTemp ".cfg" (fun cfg3 ->
                        ModelWeights.Save(m, weights)
                        ModelCfg.WriteWithClasses(tinyCfg (), cfg3, 3)
                        use m3 = DarkNet.FromCfgFile cfg3
                        Expect.equal m3.NumClasses 3 "classes"
                        let report = ModelWeights.Load(m3, weights)

                        let skipped =
                            report.Skipped |> Seq.map (fun struct (n, _) -> n) |> Seq.sort |> Seq.toList

                        let predictors =
                            m3.YoloLayerIndices
                            |> Seq.collect (fun i ->
                                [
                                    sprintf "module_list.%d.Conv2d.bias" (i - 1)
                                    sprintf "module_list.%d.Conv2d.weight" (i - 1)
                                ])
                            |> Seq.sort
                            |> Seq.toList

                        Expect.equal skipped predictors "the three prediction convs"
                        Expect.stringContains (string report) "kept initial values of" "report text"))
            }
            test "freezing: --freeze-layers leaves only the predictors; the default freezes modules 0..74" {
                use m = DarkNet.FromCfgFile(golden "yolov3-spp.cfg")
                ModelWeights.Freeze(m, onlyPredictors = true)
                Expect.equal (m.parameters () |> Seq.filter (fun p -> p.requires_grad) |> Seq.length) 6 "3 x (weight, bias)"
                use m2 = DarkNet.FromCfgFile(golden "yolov3-spp.cfg")
                ModelWeights.Freeze(m2, onlyPredictors = false)
                Expect.equal (m2.parameters () |> Seq.filter (fun p -> p.requires_grad) |> Seq.length) 69 "21 x 3 + 3 x 2, as the reference's comment counts"
            }
            test "the yolo prediction biases start at the reference's smart init" {
                use m = DarkNet.FromCfgFile(tinyCfg ())

                let conv =
                    m.Modules.[m.YoloLayerIndices.[0] - 1].parameters ()
                    |> Seq.find (fun p -> p.dim () = 1L)

                let b = conv.view (3L, -1L)
                // PyTorch's default bias init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), small next to -4.5
                let obj = b.[torch.TensorIndex.Colon, torch.TensorIndex.Single 4L]
                Expect.isTrue (obj.lt(torch.tensor (-4.0f)).all().item<bool> ()) "objectness near -4.5"
            }
        ]
