/// `export --nms`: the graph's NonMaxSuppression tail gives the detector's NMS on the same prediction (the same boxes
/// to 1e-3 px, in the same order up to ties), per image of a dynamic batch, multi-label, single-label and agnostic,
/// at three opsets. (The prediction itself is ONNX Runtime's against TorchSharp's: OnnxTests.)
module YoloSpp.Tests.Export.OnnxNmsTests

open System.IO
open Expecto
open Microsoft.ML.OnnxRuntime
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Export
open YoloSpp.Model
open YoloSpp.Tests

/// Rows (score, class, box) of one image; the order compared up to runs of scores within 1e-6 (ties the two
/// sorts may order otherwise), boxes to 1e-3 px, scores to 1e-5.
let private sameRows (expected: (float * int * float[])[]) (actual: (float * int * float[])[]) (what: string) =
    Expect.equal actual.Length expected.Length (what + ": as many detections")

    for i in 0 .. expected.Length - 1 do
        let se, _, _ = expected.[i]
        let sa, _, _ = actual.[i]
        Expect.isLessThan (abs (se - sa)) 1e-5 (sprintf "%s: detection %d score %.7f against %.7f" what i sa se)
        // the row of the same class and box among those of (nearly) the same score
        let peers = actual |> Array.filter (fun (s, _, _) -> abs (s - se) < 1e-6)

        let _, ce, be = expected.[i]

        Expect.isTrue
            (peers
             |> Array.exists (fun (_, c, b) -> c = ce && Array.forall2 (fun (x: float) y -> abs (x - y) < 1e-3) b be))
            (sprintf
                "%s: detection %d (score %.9f class %d, box %A) is in the graph's output; near it: %A; expected near it: %A"
                what
                i
                se
                ce
                be
                (actual |> Array.filter (fun (s, _, _) -> abs (s - se) < 1e-3))
                (expected |> Array.filter (fun (s, _, _) -> abs (s - se) < 1e-3)))

let tests =
    testList
        "onnx nms"
        [
            test "export --nms: the graph's detections are the detector's NMS, per image of a dynamic batch, multi-label, single-label and agnostic" {
                let dir, cfg, _, images = OnnxBackendTests.demo.Force()
                use model = DarkNet.FromCfgFile cfg
                ModelWeights.LoadExact(model, Path.Combine(dir, "demo.safetensors")) |> ignore
                model.eval ()
                // three images and a non-square crop of one, as one batch of 128x128 and one of 96x160
                let batch (h: int) (w: int) =
                    torch.cat (
                        [|
                            for f in images.[0..2] ->
                                let im = (RgbImage.Load f).Resized(w, h)
                                im.ToTensor()
                        |],
                        0L
                    )

                for opset, conf, iou, maxDet, multi, agnostic in
                    [
                        12, 0.3, 0.6, 100, true, false
                        17, 0.3, 0.45, 100, false, false
                        12, 0.2, 0.5, 100, true, true
                        13, 0.3, 0.6, 3, true, false
                        12, 0.999, 0.6, 100, true, false
                    ] do
                    let what =
                        sprintf "opset %d conf %g iou %g max %d multi %b agnostic %b" opset conf iou maxDet multi agnostic

                    let path =
                        Path.Combine(dir, sprintf "nms-%d-%g-%g-%d-%b-%b.onnx" opset conf iou maxDet multi agnostic)

                    OnnxExport.Export(
                        model,
                        path,
                        OnnxExportOptions(Opset = opset, Nms = OnnxNmsOptions(conf, iou, maxDet, Agnostic = agnostic, MultiLabel = multi))
                    )

                    use session = new InferenceSession(path)

                    let nmsOptions =
                        { Nms.NmsOptions.Default with
                            ConfThres = conf
                            IouThres = iou
                            MaxDet = maxDet
                            MultiLabel = multi
                            Agnostic = agnostic
                        }

                    for h, w in [ 128, 128; 96, 160 ] do
                        use _ = torch.NewDisposeScope()
                        let x = batch h w
                        let data = x.contiguous().data<float32>().ToArray()

                        use value =
                            OrtValue.CreateTensorValueFromMemory(data, [| 3L; 3L; int64 h; int64 w |])

                        use outputs =
                            session.Run(new RunOptions(), [| "images" |], [| value |], [| "detections"; "prediction" |])

                        // the detector's NMS (as `detect --backend onnxruntime` runs it) on the model's own prediction
                        let prediction =
                            torch.tensor(outputs.[1].GetTensorDataAsSpan<float32>().ToArray()).view (outputs.[1].GetTensorTypeAndShape().Shape)

                        Expect.isLessThan ((prediction - model.forward(x).Detections).abs().max().ToDouble()) 2.0 (what + ": the prediction is the network's")

                        let expected = Nms.nonMaxSuppression nmsOptions prediction
                        let shape = outputs.[0].GetTensorTypeAndShape().Shape
                        Expect.equal shape.[1] 7L (what + ": 7 columns")

                        let rows =
                            outputs.[0].GetTensorDataAsSpan<float32>().ToArray()
                            |> Array.map float
                            |> Array.chunkBySize 7

                        let images = rows |> Array.map (fun r -> int r.[0])
                        Expect.equal images (Array.sort images) (what + ": by image")

                        for b in 0..2 do
                            let mine =
                                match expected.[b] with
                                | None -> [||]
                                | Some t ->
                                    t.data<float32>().ToArray()
                                    |> Array.map float
                                    |> Array.chunkBySize 6
                                    |> Array.map (fun r -> r.[4], int r.[5], r.[0..3])

                            let graph =
                                rows
                                |> Array.filter (fun r -> int r.[0] = b)
                                |> Array.map (fun r -> r.[5], int r.[6], r.[1..4])

                            let scores = graph |> Array.map (fun (s, _, _) -> s)
                            Expect.equal scores (Array.sortDescending scores) (what + ": by descending score")
                            Expect.isLessThanOrEqual graph.Length maxDet (what + ": at most max_det an image")
                            sameRows mine graph (sprintf "%s, %dx%d, image %d" what h w b)

                        if conf > 0.9 then
                            Expect.equal shape.[0] 0L (what + ": nothing above the threshold, an empty [0, 7]")
                        else
                            Expect.isGreaterThan shape.[0] 3L (what + ": detections in the batch")

                    let meta = session.ModelMetadata.CustomMetadataMap
                    Expect.stringContains meta.[OnnxExport.NmsMetadataKey] (sprintf "\"max_det\":%d" maxDet) (what + ": settings in the metadata")
                    Expect.stringContains meta.[OnnxExport.LetterboxMetadataKey] "(x_input - pad_left) / r" (what + ": the letterbox rule")
                    // the TorchSharp-free backend still reads the model (its prediction output is kept)
                    use ort = OnnxRuntimeNetwork.Load path
                    Expect.equal ort.NumClasses model.NumClasses (what + ": the backend reads it")
            }

            test "yolospp export --nms --conf best: a checkpoint's best confidence becomes the graph's threshold; NMS options need --nms" {
                YoloSpp.Tests.Robustness.WhyFixtures.withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 8 4 3
                    let cfg = TinyRuns.tinyCfg dir

                    let r =
                        YoloSpp.Training.Trainer(Tiny.Options(cfg, data, Path.Combine(dir, "run"), epochs = 1)).Run()

                    let best = (CheckpointFile.ReadInfo r.LastCheckpoint).BestConfidence.Value
                    let onnx = Path.Combine(dir, "best.onnx")

                    let code, out, err =
                        BuildTests.yolospp
                            [
                                "export"
                                "--weights"
                                r.LastCheckpoint
                                "--output"
                                onnx
                                "--nms"
                                "--conf"
                                "best"
                                "--max-det"
                                "7"
                            ]

                    Expect.equal code 0 err
                    Expect.stringContains out "nms in the graph: output detections [N, 7]" "says so"
                    use session = new InferenceSession(onnx)
                    let meta = session.ModelMetadata.CustomMetadataMap
                    use doc = System.Text.Json.JsonDocument.Parse(meta.[OnnxExport.NmsMetadataKey])
                    Expect.floatClose Accuracy.veryHigh (doc.RootElement.GetProperty("conf_thres").GetDouble()) best "the best confidence"
                    Expect.equal (doc.RootElement.GetProperty("max_det").GetInt32()) 7 "--max-det"
                    Expect.floatClose Accuracy.veryHigh (float meta.[YoloSpp.Detection.OnnxRuntimeNetwork.MetadataKeys.BestConfidence]) best "best_conf too"

                    let code2, _, err2 =
                        BuildTests.yolospp
                            [
                                "export"
                                "--weights"
                                r.LastCheckpoint
                                "--output"
                                Path.Combine(dir, "x.onnx")
                                "--iou"
                                "0.5"
                            ]

                    Expect.equal code2 2 "refused"
                    Expect.stringContains err2 "go with --nms" "says why")
            }

            test "ONNX Runtime with --device cuda: the CUDA execution provider where there is one, else the CPU with a notice" {
                let dir, _, _, images = OnnxBackendTests.demo.Force()
                let model = Path.Combine(dir, "demo.onnx")
                use network = OnnxRuntimeNetwork.Load(model, 0, System.Nullable 0, null)
                let notices = ResizeArray<string>()
                let options = DetectorOptions(ImageSize = 128, ConfThreshold = 0.3)

                use cuda =
                    Detector.Load(
                        null,
                        model,
                        null,
                        DetectorOptions(ImageSize = 128, ConfThreshold = 0.3, Device = "cuda"),
                        (fun n -> notices.Add n),
                        InferenceBackend.OnnxRuntime
                    )

                use cpu =
                    Detector.Load(null, model, null, options, backend = InferenceBackend.OnnxRuntime)

                if network.OnGpu then
                    Expect.isEmpty notices "on the GPU, nothing to say"
                else
                    Expect.exists notices (fun n -> n.Contains "CUDA execution provider is not available here") "says it runs on the CPU"

                let a = cpu.Detect images.[0]
                let b = cuda.Detect images.[0]
                Expect.equal b.Count a.Count "the same detections"

                for d, e in Seq.zip a b do
                    Expect.isLessThan (abs (d.Confidence - e.Confidence)) 1e-4 "the same scores"

                Expect.throwsT<System.ArgumentException> (fun () -> Detector.OnnxCudaDevice "cuda:x" |> ignore) "a bad device"
            }

            test "onnx.checker accepts a model with NMS (python3-onnx); bad NMS settings are refused naming the option" {
                let dir, cfg, _, _ = OnnxBackendTests.demo.Force()
                use model = DarkNet.FromCfgFile cfg
                let path = Path.Combine(dir, "checked-nms.onnx")
                OnnxExport.Export(model, path, OnnxExportOptions(Nms = OnnxNmsOptions()))

                match OnnxTests.pythonOnnx.Force() with
                | None -> ()
                | Some python ->
                    let code, out = OnnxTests.checker python path
                    Expect.equal code 0 out

                for options, name in
                    [
                        OnnxNmsOptions(ConfThreshold = 1.5), "--conf"
                        OnnxNmsOptions(IouThreshold = -0.1), "--iou"
                        OnnxNmsOptions(MaxDetections = 0), "max detections"
                    ] do
                    let e =
                        TestUtil.throwsMessage<System.ArgumentException> (fun () ->
                            OnnxExport.Export(model, Path.Combine(dir, "bad.onnx"), OnnxExportOptions(Nms = options)))

                    Expect.stringContains e name "names the setting"
            }
        ]
