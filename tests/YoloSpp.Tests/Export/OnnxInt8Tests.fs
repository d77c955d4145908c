/// Int8 export: the QDQ graph (int8 weights per output channel, uint8 activations, float32 heads), ONNX Runtime's
/// fusion of it into integer kernels, its predictions against float32's, the calibration images and the CLI.
module YoloSpp.Tests.Export.OnnxInt8Tests

open System
open System.IO
open Expecto
open Onnx
open TorchSharp
open YoloSpp
open YoloSpp.Export
open YoloSpp.Model
open YoloSpp.Tests
open YoloSpp.Tests.Export.OnnxTests

open YoloSpp.Platform

/// The every-layer network of OnnxTests with random BatchNorm statistics.
let private allLayers (dir: string) =
    let cfg = Path.Combine(dir, "all-layers.cfg")
    File.WriteAllText(cfg, allLayersCfg)
    torch.manual_seed 11L |> ignore
    let m = DarkNet.FromCfgFile cfg
    randomiseBatchNorm m 3L
    m

let private int8Options (calibration: torch.Tensor) reduceRange =
    OnnxExportOptions(Opset = 13, Int8 = OnnxInt8Options(Calibration = [ calibration ], ReduceRange = reduceRange))

let private initializers (model: ModelProto) =
    model.Graph.Initializer |> Seq.map (fun t -> t.Name, t) |> Map.ofSeq

/// The int8 values of a weight initializer, by output channel.
let private int8Rows (t: TensorProto) =
    let data = t.RawData.ToByteArray() |> Array.map sbyte
    let per = data.Length / int t.Dims[0]
    Array.chunkBySize per data

/// The op types of the graph ONNX Runtime runs (its optimised model, as OnnxRuntimeNetwork loads it).
let private optimisedOps (dir: string) (path: string) =
    let optimised = Path.Combine(dir, "optimised.onnx")

    use options =
        new Microsoft.ML.OnnxRuntime.SessionOptions(
            GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
            OptimizedModelFilePath = optimised,
            // not the warning that the optimised model is for this machine only: it is read once, here
            LogSeverityLevel = Microsoft.ML.OnnxRuntime.OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR
        )

    (use _ = new Microsoft.ML.OnnxRuntime.InferenceSession(path, options)
     ())

    let model = ModelProto.Parser.ParseFrom(File.ReadAllBytes optimised)
    model.Graph.Node |> Seq.map (fun n -> n.OpType) |> Seq.countBy id |> Map.ofSeq

let private count (ops: Map<string, int>) op =
    ops |> Map.tryFind op |> Option.defaultValue 0

let tests =
    testList
        "onnx-int8"
        [
            test "every layer type: int8 weights per channel for the leaky convs, int32 biases, float32 heads" {
                withTempDir (fun dir ->
                    use m = allLayers dir
                    use calibration = input 3L 64L 96L
                    let model = OnnxExport.Build(m, int8Options calibration false)
                    let init = initializers model
                    let convs = m.Config.ModuleTypes |> Seq.filter ((=) "convolutional") |> Seq.length

                    let quantized =
                        init |> Map.filter (fun k _ -> k.EndsWith ".Conv2d.weight_quantized")

                    let float32 = init |> Map.filter (fun k _ -> k.EndsWith ".Conv2d.weight")
                    Expect.equal quantized.Count 3 "the three leaky convs are int8"
                    Expect.equal float32.Count 2 "the two heads' linear convs are float32"
                    Expect.equal (quantized.Count + float32.Count) convs "every conv is one or the other"

                    for KeyValue(name, t) in quantized do
                        Expect.equal t.DataType (int TensorProto.Types.DataType.Int8) (name + ": int8")
                        let p = name.Replace(".weight_quantized", "")
                        // symmetric per channel: each channel's largest weight maps to ±127
                        for c, row in Array.indexed (int8Rows t) do
                            Expect.equal (row |> Array.map (fun v -> abs (int v)) |> Array.max) 127 (sprintf "%s channel %d spans ±127" name c)

                        let bias = init[p + ".bias_quantized"]
                        Expect.equal bias.DataType (int TensorProto.Types.DataType.Int32) (p + ": int32 bias")
                        Expect.equal init[p + ".bias_scale"].Dims[0] t.Dims[0] (p + ": a bias scale per channel")

                    Expect.equal model.OpsetImport[0].Version 13L "opset 13"
                    let ops = model.Graph.Node |> Seq.countBy (fun n -> n.OpType) |> Map.ofSeq
                    Expect.isGreaterThan (count ops "QuantizeLinear") 5 "activations are quantized"
                    // the input at 1/255, zero point 0: exact for 8-bit images
                    let scale = init["images.scale"].RawData.ToByteArray()
                    Expect.equal (BitConverter.ToSingle(scale, 0)) (1f / 255f) "input scale 1/255"
                    Expect.equal (init["images.zero_point"].RawData.ToByteArray()) [| 0uy |] "input zero point 0")
            }

            test "--reduce-range: 7-bit weights, each channel's largest at ±63" {
                withTempDir (fun dir ->
                    use m = allLayers dir
                    use calibration = input 2L 64L 64L
                    let init = initializers (OnnxExport.Build(m, int8Options calibration true))

                    for KeyValue(name, t) in init |> Map.filter (fun k _ -> k.EndsWith ".weight_quantized") do
                        for c, row in Array.indexed (int8Rows t) do
                            Expect.equal (row |> Array.map (fun v -> abs (int v)) |> Array.max) 63 (sprintf "%s channel %d spans ±63" name c))
            }

            test "ONNX Runtime runs the int8 convs as QLinearConv, the shortcut as QLinearAdd, the route as QLinearConcat" {
                withTempDir (fun dir ->
                    use m = allLayers dir
                    use calibration = input 3L 64L 96L
                    let path = Path.Combine(dir, "int8.onnx")
                    OnnxExport.Export(m, path, int8Options calibration false)
                    let ops = optimisedOps dir path
                    Expect.equal (count ops "QLinearConv") 3 (sprintf "three integer convs in %A" ops)
                    Expect.equal (count ops "QLinearAdd") 1 (sprintf "the shortcut in %A" ops)
                    Expect.equal (count ops "QLinearConcat") 1 (sprintf "the two-way route in %A" ops)
                    Expect.equal (count ops "Conv") 2 (sprintf "the heads stay float32 in %A" ops))
            }

            test "yolov3-spp: ONNX Runtime runs every leaky conv in int8" {
                withTempDir (fun dir ->
                    torch.manual_seed 2L |> ignore
                    use m = new DarkNet(ModelCfg.Topology("yolov3-spp", 2))
                    randomiseBatchNorm m 9L
                    use calibration = input 1L 64L 64L
                    let path = Path.Combine(dir, "int8.onnx")
                    OnnxExport.Export(m, path, int8Options calibration false)
                    let ops = optimisedOps dir path
                    let convs = m.Config.ModuleTypes |> Seq.filter ((=) "convolutional") |> Seq.length
                    Expect.equal convs 76 "yolov3-spp's convs"
                    Expect.equal (count ops "QLinearConv") (convs - 3) (sprintf "integer convs in %A" ops)
                    Expect.equal (count ops "Conv") 3 (sprintf "the three heads stay float32 in %A" ops))
            }

            test "demo network: int8 heads follow float32's on shapes images (calibrated on the train list)" {
                let dir, cfg, s, _ = OnnxBackendTests.demo.Force()
                use m = DarkNet.FromCfgFile cfg
                ModelWeights.LoadExact(m, Path.Combine(dir, "demo.safetensors")) |> ignore
                use calibration = OnnxInt8Options.LoadCalibrationImages(s.DataFile, 128, 128, 8)
                let fixed128 = Nullable<struct (int * int)>(struct (128, 128))
                let f32 = Path.Combine(dir, "f32-128.onnx")
                let i8 = Path.Combine(dir, "int8-128.onnx")
                OnnxExport.Export(m, f32, OnnxExportOptions(ImageSize = fixed128, RawOutput = true))

                OnnxExport.Export(
                    m,
                    i8,
                    OnnxExportOptions(ImageSize = fixed128, RawOutput = true, Opset = 13, Int8 = OnnxInt8Options(Calibration = [ calibration ]))
                )

                use images =
                    OnnxInt8Options.LoadCalibrationImages(Path.Combine(s.Directory, "images", "val"), 128, 128)

                let raw (path: string) =
                    use session = new Microsoft.ML.OnnxRuntime.InferenceSession(path)

                    use value =
                        Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(images.contiguous().data<float32>().ToArray(), images.shape)

                    use run = new Microsoft.ML.OnnxRuntime.RunOptions()
                    use outputs = session.Run(run, [| "images" |], [| value |], [| "raw" |])
                    let shape = outputs[0].GetTensorTypeAndShape().Shape
                    let data: float32 array = outputs[0].GetTensorDataAsSpan<float32>().ToArray()
                    torch.tensor (data, System.ReadOnlySpan<int64>(shape))

                use a: torch.Tensor = raw f32
                use b: torch.Tensor = raw i8
                // the heads' logits against their spread over images and cells (with random weights the picture
                // itself moves them little): measured 2.4e-4 and 0.003; with every activation scale halved (clipping)
                // 0.020 and 0.17
                use centred = a - a.mean ([| 0L; 1L |], keepdim = true)
                let rel = (b - a).norm().ToDouble() / centred.norm().ToDouble()
                Expect.isLessThan rel 5e-3 "int8 logits within 0.5 % of float32's spread (L2)"
                Expect.isLessThan ((b - a).abs().max().ToDouble()) 0.03 "and within 0.03 everywhere"
            }

            test "calibration images: spread over the source, letterboxed with black, RGB / 255" {
                let _, _, s, images = OnnxBackendTests.demo.Force()

                use t =
                    OnnxInt8Options.LoadCalibrationImages(Path.Combine(s.Directory, "images", "val"), 96, 128, 3)

                Expect.sequenceEqual t.shape [| 3L; 3L; 96L; 128L |] "three of the six, at 96x128"
                Expect.isGreaterThanOrEqual (t.min().ToDouble()) 0.0 "at least 0"
                Expect.isLessThanOrEqual (t.max().ToDouble()) 1.0 "at most 1"
                // square pictures in a wide box: black bands left and right
                Expect.equal (t.narrow(3L, 0L, 1L).abs().max().ToDouble()) 0.0 "the left band is black"
                // images 0, 2 and 4 of the sorted six
                use third = OnnxInt8Options.LoadCalibrationImages(images[4], 96, 128, 1)
                Expect.equal ((t.narrow (0L, 2L, 1L) - third).abs().max().ToDouble()) 0.0 "the third is image 4"

                let missing = Path.Combine(s.Directory, "no-such-folder")

                let err =
                    TestUtil.throwsMessage<InvalidInputException> (fun () -> OnnxInt8Options.LoadCalibrationImages(missing, 64, 64) |> ignore)

                Expect.stringContains err "no-such-folder" "names the source"
            }

            test "bad int8 options are clear errors, and nothing is written" {
                withTempDir (fun dir ->
                    use m = allLayers dir
                    let path = Path.Combine(dir, "x.onnx")
                    use good = input 1L 64L 64L
                    use odd = input 1L 60L 64L

                    let fails (options: OnnxExportOptions) =
                        TestUtil.throwsMessage<ArgumentException> (fun () -> OnnxExport.Export(m, path, options))

                    let int8 (c: torch.Tensor list) = OnnxInt8Options(Calibration = c)
                    Expect.stringContains (fails (OnnxExportOptions(Opset = 13, Fuse = false, Int8 = int8 [ good ]))) "Fuse" "no unfolded BatchNorm"
                    Expect.stringContains (fails (OnnxExportOptions(Opset = 12, Int8 = int8 [ good ]))) "opset 13" "opset 13 or higher"
                    Expect.stringContains (fails (OnnxExportOptions(Opset = 13, Int8 = int8 []))) "calibration batch" "no calibration"
                    Expect.stringContains (fails (OnnxExportOptions(Opset = 13, Int8 = int8 [ good; odd ]))) "batch 1 is 60x64" "a size not a multiple of 32"

                    let fixedSize =
                        OnnxExportOptions(Opset = 13, ImageSize = Nullable<struct (int * int)>(struct (64, 96)), Int8 = int8 [ good ])

                    Expect.stringContains (fails fixedSize) "fixes 64x96" "not the fixed size"
                    Expect.isFalse (File.Exists path) "nothing written")
            }

            test "CLI: export --int8 calibrates on the train list; eval --backend onnxruntime reads the int8 model" {
                let dir, cfg, s, _ = OnnxBackendTests.demo.Force()
                let onnx = Path.Combine(dir, "cli-int8.onnx")
                let weights = Path.Combine(dir, "demo.safetensors")

                let export extra =
                    BuildTests.yolospp ([ "export"; "--cfg"; cfg; "--weights"; weights; "--output"; onnx ] @ extra)

                let code, _, err = export [ "--reduce-range" ]
                Expect.equal code 2 "--reduce-range alone is bad input"
                Expect.stringContains err "--int8" "names the option it needs"

                let code, out, err =
                    export [ "--int8"; s.DataFile; "--calibration-images"; "4"; "--img-size"; "128" ]

                Expect.equal code 0 err
                Expect.stringContains out "opset 13" "opset 13 by default"
                // the fixture's train list has one image: all of it
                Expect.stringContains out "int8 calibrated on 1 image," "reports the calibration"

                let code, out, err =
                    BuildTests.yolospp
                        [
                            "eval"
                            "--weights"
                            onnx
                            "--data"
                            s.DataFile
                            "--img-size"
                            "128"
                            "--backend"
                            "onnxruntime"
                            "--no-rect"
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "IoU=0.50:0.95 | area=   all | maxDets=100" "the COCO summary"
            }

            test "ONNX Runtime's int8 convs on odd shapes: 7-bit weights exact; full-range exact where the CPU has VNNI" {
                let describe (rs: Collections.Generic.IReadOnlyList<Int8ConvResult>) =
                    String.Join(
                        "; ",
                        rs
                        |> Seq.map (fun r -> sprintf "%O: %d of %d off, up to %d" r.Shape r.Mismatches r.Elements r.WorstSteps)
                    )

                let reduced = OnnxInt8Check.Run true
                Expect.equal reduced.Count OnnxInt8Check.Shapes.Count "every shape"

                for r in reduced do
                    Expect.isTrue r.Ok (sprintf "7-bit weights: %s" (describe reduced))

                let full = OnnxInt8Check.Run false

                if CpuInfo.HasVnni then
                    for r in full do
                        Expect.isTrue r.Ok (sprintf "full-range weights with VNNI: %s" (describe full))
                else
                    printfn "no VNNI: full-range weights %s" (describe full)
            }

            test "the int8 check's verdict: within one step, at most 1 % of the outputs off" {
                let s = OnnxInt8Check.Shapes[0]
                Expect.isTrue (Int8ConvResult(s, 1000, 0, 0).Ok) "exact"
                Expect.isTrue (Int8ConvResult(s, 1000, 10, 1).Ok) "1 % off by one step"
                Expect.isFalse (Int8ConvResult(s, 1000, 11, 1).Ok) "more than 1 % off"
                Expect.isFalse (Int8ConvResult(s, 1000, 1, 2).Ok) "one output two steps off"
            }
        ]
