/// ONNX export: the exported graph computes the port's eval output (ONNX Runtime), carries its metadata, rejects
/// bad options and passes onnx.checker. The backends' detections: OnnxBackendTests.
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

let withTempDir (f: string -> unit) =
    let d = (Directory.CreateTempSubdirectory "yolospp-onnx-").FullName

    try
        f d
    finally
        try
            Directory.Delete(d, true)
        with _ ->
            ()

/// Every BatchNorm's running statistics drawn at random, so that folding them is not the identity.
let randomiseBatchNorm (model: DarkNet) (seed: int64) =
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

let input (bs: int64) (h: int64) (w: int64) =
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
let checkAgainstEval (model: DarkNet) (options: OnnxExportOptions) (x: torch.Tensor) =
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
let allLayersCfg =
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
let pythonOnnx =
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

let checker (python: string) (path: string) =
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

let tests = testList "onnx" [ graphTests ]
