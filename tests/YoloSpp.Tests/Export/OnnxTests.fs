/// ONNX export and the ONNX Runtime backend: the exported graph computes the port's eval output, passes
/// onnx.checker, and detect/eval through ONNX Runtime give the TorchSharp backend's detections.
module YoloSpp.Tests.Export.OnnxTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Export
open YoloSpp.Model
open YoloSpp.Tests

let private golden name =
    Path.Combine(TestUtil.repoGoldenDir, name)

let private withTempDir (f: string -> unit) =
    let d = (Directory.CreateTempSubdirectory "yolospp-onnx-").FullName

    try
        f d
    finally
        try
            Directory.Delete(d, true)
        with _ ->
            ()

/// Every BatchNorm's running statistics drawn at random, so that folding them is not the identity.
let private randomiseBatchNorm (model: DarkNet) (seed: int64) =
    use _ = torch.no_grad ()
    let g = new torch.Generator(uint64 seed)

    for m in model.modules () do
        match m with
        | :? BatchNorm2d as bn ->
            bn.running_mean.copy_ (torch.randn (bn.running_mean.shape, generator = g) * 0.1)
            |> ignore

            bn.running_var.copy_ (torch.rand (bn.running_var.shape, generator = g) + 0.5)
            |> ignore

            bn.weight.copy_ (torch.rand (bn.weight.shape, generator = g) + 0.5) |> ignore
            bn.bias.copy_ (torch.randn (bn.bias.shape, generator = g) * 0.1) |> ignore
        | _ -> ()

let private fixedSize (h: int) (w: int) : Nullable<struct (int * int)> = Nullable(struct (h, w))

let private input (bs: int64) (h: int64) (w: int64) =
    let g = new torch.Generator(7UL)
    torch.rand ([| bs; 3L; h; w |], generator = g)

/// |a − b| ≤ 1e-4 + 1e-4·|b| everywhere (the issue's tolerance), with the worst element named.
let private expectClose (actual: torch.Tensor) (expected: torch.Tensor) (what: string) =
    Expect.sequenceEqual actual.shape expected.shape (what + ": shape")
    let a = actual.``to`` torch.float64
    let e = expected.``to`` torch.float64
    let excess = (a - e).abs () - (e.abs () * 1e-4 + 1e-4)
    let worst = excess.max().ToDouble()

    if worst > 0.0 then
        let i = excess.argmax().ToInt64()
        let fa, fe = a.flatten().[i].ToDouble(), e.flatten().[i].ToDouble()
        failtestf "%s: element %d is %.9g, expected %.9g (beyond abs 1e-4 + rel 1e-4)" what i fa fe

/// Exports, runs ONNX Runtime on the input and compares with the network's eval output (unfused).
let private checkAgainstEval (model: DarkNet) (options: OnnxExportOptions) (x: torch.Tensor) =
    withTempDir (fun dir ->
        let path = Path.Combine(dir, "model.onnx")
        OnnxExport.Export(model, path, options)
        model.eval ()

        let expected =
            use _ = torch.no_grad ()
            model.forward (x)

        use ort = OnnxRuntimeNetwork.Load path
        use got = ort.Predict x
        expectClose got expected.Detections (sprintf "prediction (%s)" (Path.GetFileName path)))

/// A network with every layer type the exporter writes: the 2×2 stride-1 max-pool (zero-padded bottom/right, as
/// yolov3-tiny), a stride-2 max-pool, a shortcut, a two-way route, upsample and two yolo heads.
let private allLayersCfg =
    """[net]
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[shortcut]
from=-2
activation=linear

[maxpool]
size=2
stride=1

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=10,13, 16,30, 33,23, 30,61, 62,45, 59,119
classes=2
num=6

[route]
layers=-3

[upsample]
stride=2

[route]
layers=-1,-6

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=3,4,5
anchors=10,13, 16,30, 33,23, 30,61, 62,45, 59,119
classes=2
num=6
"""

let private tinyModel () =
    let m = DarkNet.FromCfgFile(golden "tiny-spp.cfg")
    DarknetWeights.Load(m, golden "tiny-spp-random.weights") |> ignore
    m

/// A Python that imports onnx (python3 on the PATH, else the system's /usr/bin/python3), or None.
let private pythonOnnx =
    lazy
        ([ "python3"; "/usr/bin/python3" ]
         |> List.tryFind (fun python ->
             try
                 let psi =
                     ProcessStartInfo(python, "-c \"import onnx\"", RedirectStandardOutput = true, RedirectStandardError = true)

                 use p = Process.Start psi
                 p.WaitForExit()
                 p.ExitCode = 0
             with _ ->
                 false))

let private checker (python: string) (path: string) =
    let script =
        "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print('ok')"

    let psi =
        ProcessStartInfo(python, RedirectStandardOutput = true, RedirectStandardError = true)

    psi.ArgumentList.Add "-c"
    psi.ArgumentList.Add script
    psi.ArgumentList.Add path
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEnd()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out + err

let private graphTests =
    testList
        "graph"
        [
            test "tiny-spp: ONNX Runtime equals the eval output, non-square input, dynamic size and batch" {
                use m = tinyModel ()
                checkAgainstEval m (OnnxExportOptions()) (input 2L 96L 160L)
            }

            test "tiny-spp, fixed 64x96, BatchNormalization nodes, static batch, raw heads: both outputs equal the port's" {
                use m = tinyModel ()
                randomiseBatchNorm m 5L

                withTempDir (fun dir ->
                    let path = Path.Combine(dir, "static.onnx")

                    OnnxExport.Export(
                        m,
                        path,
                        OnnxExportOptions(ImageSize = (fixedSize 64 96), Fuse = false, DynamicBatch = false, BatchSize = 2, RawOutput = true, Opset = 17)
                    )

                    m.eval ()
                    let x = input 2L 64L 96L

                    let expected =
                        use _ = torch.no_grad ()
                        m.forward x

                    use ort = OnnxRuntimeNetwork.Load path
                    Expect.equal ort.FixedImageSize ((fixedSize 64 96)) "fixed size read back"
                    Expect.equal ort.FixedBatchSize (Nullable 2) "fixed batch read back"
                    use got = ort.Predict x
                    expectClose got expected.Detections "prediction"
                    // the raw heads through the ONNX session directly (second output)
                    let rawExpected =
                        torch.cat ([| for r in expected.Raw -> r.reshape (2L, -1L, r.shape[4]) |], 1L)

                    use session = new Microsoft.ML.OnnxRuntime.InferenceSession(path)
                    let data = x.contiguous().data<float32>().ToArray()

                    use value =
                        Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(data, [| 2L; 3L; 64L; 96L |])

                    use outputs =
                        session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), [| "images" |], [| value |], [| "prediction"; "raw" |])

                    let raw = outputs[1].GetTensorDataAsSpan<float32>().ToArray()
                    expectClose (torch.tensor(raw).view (rawExpected.shape)) rawExpected "raw"

                    let err =
                        TestUtil.throwsMessage<ArgumentException> (fun () -> ort.Predict(input 2L 96L 96L) |> ignore)

                    Expect.stringContains err "static.onnx" "names the model"
                    Expect.stringContains err "[2, 3, 96, 96]" "names the batch's shape"
                    Expect.stringContains err "64x96" "and the model's")
            }

            test "every layer type (2x2 stride-1 max-pool, shortcut, route, upsample, two heads) at 64x96 and 96x32" {
                withTempDir (fun dir ->
                    let cfg = Path.Combine(dir, "all-layers.cfg")
                    File.WriteAllText(cfg, allLayersCfg)
                    torch.manual_seed 11L |> ignore
                    use m = DarkNet.FromCfgFile cfg
                    randomiseBatchNorm m 3L
                    checkAgainstEval m (OnnxExportOptions(Opset = 11)) (input 1L 64L 96L)
                    checkAgainstEval m (OnnxExportOptions(Opset = 13)) (input 3L 96L 32L)
                    checkAgainstEval m (OnnxExportOptions(ImageSize = (fixedSize 96 32))) (input 1L 96L 32L))
            }

            test "yolov3-spp: ONNX Runtime equals the eval output at 64x96" {
                torch.manual_seed 2L |> ignore
                use m = new DarkNet(ModelCfg.Topology("yolov3-spp", 2))
                randomiseBatchNorm m 9L
                checkAgainstEval m (OnnxExportOptions()) (input 1L 64L 96L)
            }

            test "metadata: names, size, strides, anchors, cfg and the producer" {
                use m = tinyModel ()

                withTempDir (fun dir ->
                    let path = Path.Combine(dir, "meta.onnx")
                    let names = [| for i in 0 .. m.NumClasses - 1 -> sprintf "thing %d" i |]
                    OnnxExport.Export(m, path, OnnxExportOptions(ClassNames = names, ImageSize = (fixedSize 64 64)))
                    use session = new Microsoft.ML.OnnxRuntime.InferenceSession(path)
                    let meta = session.ModelMetadata
                    Expect.equal meta.ProducerName "YoloSpp" "producer"
                    let map = meta.CustomMetadataMap
                    Expect.equal (JsonSerializer.Deserialize<string[]>(map["names"])) names "names"
                    Expect.equal map["img_size"] "[64,64]" "size"
                    Expect.equal map["strides"] (JsonSerializer.Serialize [| for y in m.YoloLayers -> y.Stride |]) "strides"
                    Expect.stringContains map["anchors"] "[" "anchors"
                    Expect.equal (ModelCfg.Parse("meta", map["cfg"]).ModuleCount) m.Config.ModuleCount "the cfg text parses back"
                    use ort = OnnxRuntimeNetwork.Load path
                    Expect.sequenceEqual ort.ClassNames names "names read back")
            }

            test "bad options and files are clear errors" {
                use m = tinyModel ()

                withTempDir (fun dir ->
                    let path = Path.Combine(dir, "x.onnx")

                    let e1 =
                        TestUtil.throwsMessage<ArgumentException> (fun () -> OnnxExport.Export(m, path, OnnxExportOptions(Opset = 9)))

                    Expect.stringContains e1 "opset 9" "names the opset"

                    let e2 =
                        TestUtil.throwsMessage<ArgumentException> (fun () -> OnnxExport.Export(m, path, OnnxExportOptions(ClassNames = [| "one" |])))

                    Expect.stringContains e2 "1 class names" "names the count"
                    Expect.isFalse (File.Exists path) "nothing written"
                    File.WriteAllText(path, "not a model")

                    let e3 =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> OnnxRuntimeNetwork.Load path |> ignore)

                    Expect.stringContains e3 "x.onnx" "names the file")
            }

            test "onnx.checker accepts the exported models (python3-onnx)" {
                match pythonOnnx.Force() with
                | None -> skiptest "python3 with the onnx package is not installed (apt-get install python3-onnx)"
                | Some python ->
                    use m = tinyModel ()

                    withTempDir (fun dir ->
                        for name, options in
                            [
                                "dynamic", OnnxExportOptions()
                                "fixed", OnnxExportOptions(ImageSize = (fixedSize 64 96), Fuse = false, RawOutput = true, Opset = 17)
                            ] do
                            let path = Path.Combine(dir, name + ".onnx")
                            OnnxExport.Export(m, path, options)
                            let code, out = checker python path
                            Expect.equal code 0 (sprintf "%s: %s" name out))
            }
        ]

/// The demo network (cfg/shapes-spp.cfg) with seeded weights whose head biases are spread, so that scores differ
/// clearly (no near-ties for NMS to order differently), and a few shapes images.
let private demo =
    lazy
        (let dir = TestUtil.fixtureDir "yolospp-onnx-"

         let s =
             ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "shapes"), Train = 1, Val = 6, Size = 128, Seed = 5))

         let cfg = Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")
         torch.manual_seed 4L |> ignore

         (use m = DarkNet.FromCfgFile cfg
          randomiseBatchNorm m 4L
          use _ = torch.no_grad ()
          let g = new torch.Generator(8UL)

          for i in m.YoloLayerIndices do
              let conv =
                  (m.Modules[i - 1] :?> TorchSharp.Modules.Sequential).named_children ()
                  |> Seq.head
                  |> fun struct (_, c) -> c :?> TorchSharp.Modules.Conv2d

              conv.bias.copy_ (torch.randn (conv.bias.shape, generator = g) * 3.0) |> ignore

          ModelWeights.Save(m, Path.Combine(dir, "demo.safetensors"))
          OnnxExport.Export(m, Path.Combine(dir, "demo.onnx"), OnnxExportOptions(ClassNames = Shapes.classNames)))

         let valDir = Path.Combine(s.Directory, "images", "val")
         dir, cfg, s, Directory.GetFiles valDir |> Array.sort)

/// The same detections in the same order, up to the order within runs of equal confidence (|Δ| < 1e-5: cells of a
/// uniform padding score alike, and ONNX Runtime's last bits may order such ties otherwise): per run, the same
/// (class, box) multiset; every confidence within 1e-5.
let private sameDetections (a: (int * float list * float) list) (b: (int * float list * float) list) (what: string) =
    Expect.equal b.Length a.Length (what + ": as many detections")
    Expect.isGreaterThan a.Length 0 (what + ": something is detected")

    for i, ((_, _, ca), (_, _, cb)) in List.indexed (List.zip a b) do
        Expect.isLessThan (abs (ca - cb)) 1e-5 (sprintf "%s: detection %d confidence %.9f against %.9f" what i cb ca)

    // runs of near-equal confidence in the reference order
    let runs =
        a
        |> List.indexed
        |> List.fold
            (fun (acc: int list list) (i, (_, _, c)) ->
                match acc with
                | (j :: _ as run) :: rest when abs (c - (let _, _, cj = a[j] in cj)) < 1e-5 -> (i :: run) :: rest
                | _ -> [ i ] :: acc)
            []

    for run in runs do
        let key (l: (int * float list * float) list) =
            run |> List.map (fun i -> let c, box, _ = l[i] in c, box) |> List.sort

        Expect.equal (key b) (key a) (sprintf "%s: detections %A (class, box)" what (List.rev run))

let private ofDetector (ds: Detection seq) =
    [ for d in ds -> d.ClassId, [ d.X1; d.Y1; d.X2; d.Y2 ], d.Confidence ]

let private backendTests =
    testList
        "backend"
        [
            test "Detector: ONNX Runtime gives the TorchSharp detections on the demo network (same boxes, same order)" {
                let dir, cfg, s, images = demo.Force()
                let names = Path.Combine(s.Directory, "shapes.names")
                let options = DetectorOptions(ImageSize = 128, ConfThreshold = 0.3)

                use torchDet =
                    Detector.Load(cfg, Path.Combine(dir, "demo.safetensors"), names, options)

                use onnxDet =
                    Detector.Load(null, Path.Combine(dir, "demo.onnx"), null, options, backend = InferenceBackend.OnnxRuntime)

                Expect.sequenceEqual onnxDet.ClassNames Shapes.classNames "names from the model"
                // a non-square picture too, so the minimal-rectangle letterbox gives another input shape
                let wide = (RgbImage.Load images[0]).Resized(150, 70)

                for name, picture in [ for f in images -> Path.GetFileName f, RgbImage.Load f ] @ [ "wide", wide ] do
                    sameDetections (ofDetector (torchDet.Detect picture)) (ofDetector (onnxDet.Detect picture)) name
            }

            test "CLI: export, then detect --backend onnxruntime writes the default backend's detections.json; eval's mAP agrees" {
                let dir, cfg, s, _ = demo.Force()
                let onnx = Path.Combine(dir, "cli.onnx")
                let weights = Path.Combine(dir, "demo.safetensors")
                let names = Path.Combine(s.Directory, "shapes.names")

                let code, out, err =
                    BuildTests.yolospp
                        [
                            "export"
                            "--cfg"
                            cfg
                            "--weights"
                            weights
                            "--names"
                            names
                            "--output"
                            onnx
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "cli.onnx" "reports the file"
                let src = Path.Combine(s.Directory, "images", "val")

                let detect backend model out =
                    BuildTests.yolospp (
                        [
                            "detect"
                            "--weights"
                            model
                            "--source"
                            src
                            "--out"
                            out
                            "--img-size"
                            "128"
                            "--conf"
                            "0.3"
                        ]
                        @ (if backend = "onnxruntime" then
                               [ "--backend"; "onnxruntime" ]
                           else
                               [ "--cfg"; cfg; "--names"; names ])
                    )

                let c1, _, e1 = detect "torchsharp" weights (Path.Combine(dir, "det-torch"))
                Expect.equal c1 0 e1
                let c2, _, e2 = detect "onnxruntime" onnx (Path.Combine(dir, "det-onnx"))
                Expect.equal c2 0 e2

                let read (d: string) =
                    use doc =
                        JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, d, "detections.json")))

                    [
                        for im in doc.RootElement.EnumerateArray() do
                            for det in im.GetProperty("detections").EnumerateArray() ->
                                det.GetProperty("class").GetInt32(),
                                [ for v in det.GetProperty("box_xyxy").EnumerateArray() -> v.GetDouble() ],
                                det.GetProperty("confidence").GetDouble()
                    ]

                sameDetections (read "det-torch") (read "det-onnx") "detections.json"

                let evalMap backend model =
                    let code, out, err =
                        BuildTests.yolospp (
                            [
                                "eval"
                                "--weights"
                                model
                                "--data"
                                s.DataFile
                                "--img-size"
                                "128"
                                "--batch-size"
                                "2"
                            ]
                            @ (if backend = "onnxruntime" then
                                   [ "--backend"; "onnxruntime" ]
                               else
                                   [ "--cfg"; cfg ])
                        )

                    Expect.equal code 0 err

                    out.Split('\n')
                    |> Array.find (fun l -> l.Contains "IoU=0.50:0.95 | area=   all | maxDets=100")

                Expect.equal (evalMap "onnxruntime" onnx) (evalMap "torchsharp" weights) "the same mAP line"
            }

            test "examples/OnnxRuntimeOnly (plain ONNX Runtime, no YoloSpp) finds the detector's best detection" {
                let dir, _, _, images = demo.Force()

                let dll =
                    Path.Combine(TestUtil.repoRoot, "examples", "OnnxRuntimeOnly", "bin", "Release", "net10.0", "OnnxRuntimeOnly.dll")

                if not (File.Exists dll) then
                    failtestf "%s is not built (dotnet fsi build.fsx build)" dll

                let model = Path.Combine(dir, "demo.onnx")

                let code, out, err =
                    BuildTests.runProcess "dotnet" [ dll; model; images[1]; "0.3"; "128" ] TestUtil.repoRoot

                Expect.equal code 0 (out + err)
                Expect.stringContains out "input 128x128" "the long side at the given size"

                use detector =
                    Detector.Load(null, model, null, DetectorOptions(ImageSize = 128, ConfThreshold = 0.3), backend = InferenceBackend.OnnxRuntime)
                // the best (row, class) pair is the same in both: no NMS suppresses it
                let best = detector.Detect images[1] |> Seq.maxBy (fun d -> d.Confidence)
                let line = out.Split('\n').[1].Trim()

                let expected =
                    FormattableString.Invariant($"{best.ClassName} {best.Confidence:F3} ({best.X1:F0}, {best.Y1:F0})-({best.X2:F0}, {best.Y2:F0})")

                Expect.equal line expected "the first (best) detection"
            }

            test "CLI: --backend torchsharp without --cfg is bad input naming the option" {
                let dir, _, s, _ = demo.Force()

                let code, _, err =
                    BuildTests.yolospp
                        [
                            "detect"
                            "--weights"
                            Path.Combine(dir, "demo.safetensors")
                            "--source"
                            Path.Combine(s.Directory, "images", "val")
                        ]

                Expect.equal code 2 "bad input"
                Expect.stringContains err "--cfg" "names the option"
            }
        ]

let tests = testList "onnx" [ graphTests; backendTests ]
