/// `yolospp bench`: timings of the parts a training or evaluation run spends its time in, each the median over
/// repeats after a warm-up: one training step, inference (unfused, conv+BN fused, ONNX Runtime), the loader (mosaic training
/// batches, letterboxed eval batches), NMS on a dense prediction, the COCO evaluator, and the RSS over the training
/// steps. Prints one `<name>: <median> <unit>` line per figure and writes the same figures to a JSON file.
module YoloSpp.Cli.BenchCommand

open System
open System.Diagnostics
open System.Globalization
open System.IO
open System.Text.Json
open Argu
open TorchSharp
open YoloSpp
open YoloSpp.IO
open YoloSpp.Model
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Training

type BenchArgs =
    | Cfg of path: string
    | Classes of int
    | Batch_Size of int
    | Img_Size of int
    | Repeats of int
    | Warmup of int
    | Train_Steps of int
    | Loader_Images of int
    | Nms_Boxes of int
    | Coco_Images of int
    | Threads of int
    | Only of names: string list
    | Output of path: string
    | Baseline of path: string
    | Bf16

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Cfg _ -> "Darknet cfg file, or a built-in topology: yolov3-spp (default), shapes-spp"
            | Classes _ -> "classes of a built-in topology (default 20)"
            | Batch_Size _ -> "training step and loader batch size (default 4)"
            | Img_Size _ -> "training step, inference and loader image size, a multiple of 32 (default 512)"
            | Repeats _ -> "timed repeats of inference, NMS and the COCO evaluator (default 5)"
            | Warmup _ -> "untimed runs before each figure (default 1; NMS at least 30, so that the JIT has optimised it as during an evaluation)"
            | Train_Steps _ -> "timed training steps; RSS growth is measured over them (default 50)"
            | Loader_Images _ -> "images in the generated loader dataset (default 64)"
            | Nms_Boxes _ -> "candidate boxes in the dense NMS prediction (default 10000)"
            | Coco_Images _ -> "images in the synthetic COCO evaluation (default 5000, ~20 detections each)"
            | Threads _ -> "torch intra-op threads (default: torch's, the number of cores)"
            | Only _ ->
                "run only these figures: train_step (with rss_growth), inference (with inference_fused, inference_onnxruntime and inference_onnxruntime_int8), loader, nms, cocoeval"
            | Output _ -> "JSON file for the figures (default runs/bench/bench-<time>.json)"
            | Baseline _ -> "a previous bench JSON: print each figure's ratio to it"
            | Bf16 -> "run the training step and inference with bfloat16 convolutions (float32 master weights)"

/// One measured figure: median, min and max over n runs.
type Figure =
    {
        Name: string
        Median: float
        Min: float
        Max: float
        Unit: string
        Runs: int
    }

let private median (xs: float[]) =
    let s = Array.sort xs

    if s.Length = 0 then nan
    elif s.Length % 2 = 1 then s.[s.Length / 2]
    else (s.[s.Length / 2 - 1] + s.[s.Length / 2]) / 2.0

let private figure name unit (xs: float[]) =
    {
        Name = name
        Median = median xs
        Min = Array.min xs
        Max = Array.max xs
        Unit = unit
        Runs = xs.Length
    }

/// Runs `f` warmup times untimed, then `repeats` times, each timed (seconds).
let private timed warmup repeats (f: unit -> unit) =
    for _ in 1..warmup do
        f ()

    [|
        for _ in 1..repeats ->
            let sw = Stopwatch.StartNew()
            f ()
            sw.Elapsed.TotalSeconds
    |]

let private rssBytes () =
    use p = Process.GetCurrentProcess()
    p.Refresh()
    float p.WorkingSet64

let private inv (x: float) =
    x.ToString("0.####", CultureInfo.InvariantCulture)

/// Random images and 3 boxes per image (class, centre and size drawn uniformly), as a loader would give them.
let private syntheticBatch (rnd: Random) (bs: int) (size: int) (nc: int) =
    let images = torch.rand (int64 bs, 3L, int64 size, int64 size)

    let rows =
        [|
            for i in 0 .. bs - 1 do
                for _ in 1..3 do
                    let w, h = 0.05 + 0.3 * rnd.NextDouble(), 0.05 + 0.3 * rnd.NextDouble()

                    yield!
                        [|
                            float32 i
                            float32 (rnd.Next nc)
                            float32 (w / 2.0 + (1.0 - w) * rnd.NextDouble())
                            float32 (h / 2.0 + (1.0 - h) * rnd.NextDouble())
                            float32 w
                            float32 h
                        |]
        |]

    images, torch.tensor(rows).view (-1L, 6L)

/// (a) and (f): SGD training steps (forward, the core's loss, backward, step) and the process RSS after each.
let private benchTrain (cfg: DarknetConfig) computeType bs size warmup steps (log: string -> unit) =
    use model = new DarkNet(cfg)
    model.train ()
    model.ComputeType <- computeType
    let nc = model.NumClasses
    let hyp = HyperParameters.Default.AdjustedFor(nc, size)

    let trainable =
        model.parameters () |> Seq.filter (fun p -> p.requires_grad) |> Array.ofSeq

    use optimizer =
        new Sgd(trainable, hyp.Lr0, momentum = hyp.Momentum, weightDecay = hyp.WeightDecay, nesterov = true)

    let loss = YoloLoss.For(model, hyp)
    let scaler = LossScaler(false)
    let rnd = Random 0
    let images, targets = syntheticBatch rnd bs size nc
    // the trainer's own step (Engine.TrainStep): forward, loss, backward, SGD step
    let step () =
        Engine.TrainStep(model, optimizer, loss, scaler, images, targets, 1.0, 1, true)
        |> ignore

    for k in 1..warmup do
        step ()
        log (sprintf "train_step warm-up %d/%d" k warmup)

    let times = Array.zeroCreate<float> steps
    let rss = Array.zeroCreate<float> steps

    for k in 0 .. steps - 1 do
        let sw = Stopwatch.StartNew()
        step ()
        times.[k] <- sw.Elapsed.TotalSeconds
        rss.[k] <- rssBytes ()
        log (sprintf "train_step %d/%d: %.3f s, RSS %.0f MiB" (k + 1) steps times.[k] (rss.[k] / 1048576.0))

    images.Dispose()
    targets.Dispose()
    let growth = 100.0 * (rss.[steps - 1] - rss.[0]) / rss.[0]

    [
        figure "train_step" "s" times
        {
            Name = "rss_growth"
            Median = growth
            Min = growth
            Max = growth
            Unit = "%"
            Runs = steps
        }
        figure "rss_train" "MiB" (rss |> Array.map (fun b -> b / 1048576.0))
    ]

/// (b): batch-1 inference in eval mode (decoded detections included), unfused, with conv+BN folded, and through
/// ONNX Runtime on the exported model.
let private benchInference (cfg: DarknetConfig) computeType size warmup repeats =
    use model = new DarkNet(cfg)
    model.eval ()
    model.ComputeType <- computeType
    use x = torch.rand (1L, 3L, int64 size, int64 size)

    let run (m: DarkNet) () =
        use _ = torch.NewDisposeScope()
        use _ = torch.no_grad ()
        m.forward(x).Detections |> ignore

    use fused = model.Fuse()
    fused.ComputeType <- computeType
    // interleaved (plain, fused, plain, ...) so that a drift in the machine's speed hits both alike
    for _ in 1..warmup do
        run model ()
        run fused ()

    // ONNX Runtime on the exported model (float32 only), with as many threads as TorchSharp, in float32 and in int8
    // (calibrated on random images: the figure is a speed, the weights are random too)
    let exportOrt (int8: bool) =
        let path =
            Path.Combine(Path.GetTempPath(), sprintf "yolospp-bench-%s.onnx" (Guid.NewGuid().ToString("N")))

        let calibration =
            if int8 then
                [ for _ in 1..2 -> torch.rand (2L, 3L, int64 size, int64 size) ]
            else
                []

        try
            let options =
                YoloSpp.Export.OnnxExportOptions(
                    ImageSize = Nullable<struct (int * int)>(struct (size, size)),
                    Opset = (if int8 then YoloSpp.Export.OnnxExport.MinInt8Opset else 12),
                    Int8 =
                        (if int8 then
                             YoloSpp.Export.OnnxInt8Options(Calibration = calibration)
                         else
                             null)
                )

            YoloSpp.Export.OnnxExport.Export(model, path, options)
            YoloSpp.Export.OnnxRuntimeNetwork.Load(path, torch.get_num_threads ())
        finally
            File.Delete path

            for t in calibration do
                t.Dispose()

    let onnx =
        if computeType.HasValue then
            []
        else
            [
                "inference_onnxruntime", exportOrt false
                "inference_onnxruntime_int8", exportOrt true
            ]

    use _ =
        { new IDisposable with
            member _.Dispose() =
                for _, o in onnx do
                    o.Dispose()
        }

    let runOnnx (o: YoloSpp.Export.OnnxRuntimeNetwork) () =
        use _ = torch.NewDisposeScope()
        o.Predict x |> ignore

    let plain, folded = Array.zeroCreate<float> repeats, Array.zeroCreate<float> repeats

    for k in 0 .. repeats - 1 do
        plain.[k] <- (timed 0 1 (run model)).[0]
        folded.[k] <- (timed 0 1 (run fused)).[0]

    // ONNX Runtime after libtorch, not interleaved: its pool's threads spin for a while after each run and took a
    // core from the libtorch run that followed (the demo's fused inference measured 7.5 ms instead of 3.5 ms)
    let ort =
        [
            for name, o in onnx do
                for _ in 1..warmup do
                    runOnnx o ()

                figure name "s" [| for _ in 1..repeats -> (timed 0 1 (runOnnx o)).[0] |]
        ]

    [ figure "inference" "s" plain; figure "inference_fused" "s" folded ] @ ort

/// (c): loader throughput on a generated shapes set at the bench size: mosaic training batches (HSV, affine,
/// flips) and letterboxed evaluation batches; one warm-up epoch, then the median epoch.
let private benchLoader bs size images warmup repeats =
    let dir = Directory.CreateTempSubdirectory "yolospp-bench-"

    try
        let summary =
            ShapesDataset.Generate(ShapesOptions(dir.FullName, Train = images, Val = images, Size = size, Seed = 1))

        let data = DataFiles.Load summary.DataFile
        let nc = summary.ClassNames.Count

        let rate (source: string) (o: DataOptions) =
            let loader = YoloDataLoader(YoloDataset.Open(source, nc, o))
            let mutable epoch = 0

            let times =
                timed warmup repeats (fun () ->
                    for b in loader.Epoch epoch do
                        b.Dispose()

                    epoch <- epoch + 1)

            times |> Array.map (fun t -> float images / t)

        let hyp = HyperParameters.Default

        let train =
            rate data.Train (DataOptions(ImageSize = size, BatchSize = bs, Augment = true, Mosaic = true, Shuffle = true, Hyp = hyp))

        let eval =
            rate data.Valid (DataOptions(ImageSize = size, BatchSize = bs, Hyp = hyp))

        [ figure "loader_train" "img/s" train; figure "loader_eval" "img/s" eval ]
    finally
        try
            dir.Delete true
        with _ ->
            ()

/// (d): the reference's non_max_suppression on one image's dense prediction at the bench size: `boxes` rows pass
/// the confidence threshold, clustered around 40 objects of 20 classes as a trained detector's output is.
let private benchNms size boxes warmup repeats =
    let nc = 20
    let rows = 3 * ([ 32; 16; 8 ] |> List.sumBy (fun s -> (size / s) * (size / s)))
    let rows = max rows boxes
    let rnd = Random 0

    let objects =
        Array.init 40 (fun _ ->
            20.0 + rnd.NextDouble() * float (size - 40),
            20.0 + rnd.NextDouble() * float (size - 40),
            16.0 + rnd.NextDouble() * float size / 3.0,
            16.0 + rnd.NextDouble() * float size / 3.0,
            rnd.Next nc)

    let data = Array.zeroCreate<float32> (rows * (5 + nc))

    for r in 0 .. rows - 1 do
        let o = r * (5 + nc)
        let cx, cy, w, h, c = objects.[rnd.Next objects.Length]
        let j () = 1.0 + 0.15 * (rnd.NextDouble() - 0.5)
        data.[o] <- float32 (cx * j ())
        data.[o + 1] <- float32 (cy * j ())
        data.[o + 2] <- float32 (w * j ())
        data.[o + 3] <- float32 (h * j ())
        // the first `boxes` rows pass obj > conf; the rest are background
        data.[o + 4] <-
            if r < boxes then
                float32 (0.05 + 0.95 * rnd.NextDouble())
            else
                0.0005f

        data.[o + 5 + c] <- 0.9f

    use prediction = torch.tensor(data).view (1L, int64 rows, int64 (5 + nc))

    let options =
        { Nms.NmsOptions.Default with
            ConfThres = 0.001
            IouThres = 0.6
        }

    let times =
        timed warmup repeats (fun () ->
            Nms.nonMaxSuppression options prediction
            |> Array.iter (Option.iter (fun t -> t.Dispose())))

    [ figure "nms" "ms" (times |> Array.map (fun t -> 1000.0 * t)) ]

/// (e): pycocotools' evaluate/accumulate/summarize on `images` images with 3-8 objects of 20 categories and
/// ~20 detections each (jittered truths and false positives).
let private benchCoco images warmup repeats =
    let rnd = Random 0

    let box () =
        let w, h = 8.0 + rnd.NextDouble() * 200.0, 8.0 + rnd.NextDouble() * 200.0

        {
            X = rnd.NextDouble() * (640.0 - w)
            Y = rnd.NextDouble() * (480.0 - h)
            W = w
            H = h
        }

    let gts = ResizeArray<CocoAnnotation>()
    let dts = ResizeArray<CocoDetection>()

    for i in 1..images do
        let objects = [| for _ in 1 .. 3 + rnd.Next 6 -> box (), int64 (1 + rnd.Next 20) |]

        for b, c in objects do
            gts.Add
                {
                    Id = int64 (gts.Count + 1)
                    ImageId = int64 i
                    CategoryId = c
                    Bbox = b
                    Area = b.W * b.H
                    IsCrowd = false
                }

        for k in 1..20 do
            let b, c =
                if k <= objects.Length * 2 then
                    let b, c = objects.[(k - 1) % objects.Length]
                    let j () = 1.0 + 0.2 * (rnd.NextDouble() - 0.5)

                    { b with
                        X = b.X * j ()
                        Y = b.Y * j ()
                        W = b.W * j ()
                        H = b.H * j ()
                    },
                    c
                else
                    box (), int64 (1 + rnd.Next 20)

            dts.Add
                {
                    ImageId = int64 i
                    CategoryId = c
                    Bbox = b
                    Score = rnd.NextDouble()
                }

    let gt =
        {
            Images =
                [|
                    for i in 1..images ->
                        {
                            Id = int64 i
                            Width = 640
                            Height = 480
                            FileName = ""
                        }
                |]
            Categories = [| for c in 1..20 -> { Id = int64 c; Name = string c } |]
            Annotations = gts.ToArray()
        }

    let dt = dts.ToArray()

    [
        figure "cocoeval" "s" (timed warmup repeats (fun () -> CocoEval.evaluate gt dt |> ignore))
    ]

let private writeJson (path: string) (settings: (string * obj) list) (figures: Figure list) =
    let doc =
        dict
            [
                "settings", box (dict settings)
                "figures",
                box (
                    dict
                        [
                            for f in figures ->
                                f.Name,
                                box
                                    {|
                                        median = f.Median
                                        min = f.Min
                                        max = f.Max
                                        unit = f.Unit
                                        runs = f.Runs
                                    |}
                        ]
                )
            ]

    let dir = Path.GetDirectoryName(Path.GetFullPath path)
    Directory.CreateDirectory dir |> ignore
    AtomicFile.WriteAllText(path, JsonSerializer.Serialize(doc, JsonSerializerOptions(WriteIndented = true)))

let private readBaseline (path: string) =
    use doc = JsonDocument.Parse(File.ReadAllText path)

    match doc.RootElement.TryGetProperty "figures" with
    | true, figs ->
        [
            for p in figs.EnumerateObject() -> p.Name, p.Value.GetProperty("median").GetDouble()
        ]
        |> Map.ofList
    | _ -> failwithf "%s: not a bench JSON file (no \"figures\")" path

let private known = [ "train_step"; "inference"; "loader"; "nms"; "cocoeval" ]

/// Runs the command; returns the exit code (2 for bad input).
let run (args: ParseResults<BenchArgs>) : int =
    let cfgName = args.GetResult(Cfg, "yolov3-spp")
    let classes = args.GetResult(Classes, 20)
    let bs = args.GetResult(Batch_Size, 4)
    let size = args.GetResult(Img_Size, 512)
    let repeats = args.GetResult(Repeats, 5)
    let warmup = args.GetResult(Warmup, 1)
    let steps = args.GetResult(Train_Steps, 50)
    let only = args.GetResult(Only, known)

    let problems =
        [
            yield!
                (match YoloSpp.Model.Cfg.checkImageSize "--img-size" size with
                 | Error e -> [ e ]
                 | Ok _ -> [])
            if bs < 1 then
                sprintf "--batch-size %d must be at least 1" bs
            if repeats < 1 then
                sprintf "--repeats %d must be at least 1" repeats
            if warmup < 0 then
                sprintf "--warmup %d must be at least 0" warmup
            if steps < 2 then
                sprintf "--train-steps %d must be at least 2 (RSS growth compares the first and last)" steps
            for o in only do
                if not (List.contains o known) then
                    sprintf "--only: unknown figure '%s' (known: %s)" o (String.Join(", ", known))
        ]

    if not problems.IsEmpty then
        for p in problems do
            eprintfn "%s" p

        2
    else
        Errors.run (fun () ->
            Backend.Initialize()
            args.TryGetResult Threads |> Option.iter torch.set_num_threads
            let cfg = ModelCfg.LoadOrTopology(cfgName, classes)
            let baseline = args.TryGetResult Baseline |> Option.map readBaseline

            let computeType =
                if args.Contains Bf16 then
                    Nullable torch.ScalarType.BFloat16
                else
                    Nullable()

            let output =
                args.GetResult(
                    Output,
                    Path.Combine("runs", "bench", sprintf "bench-%s.json" (DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)))
                )

            let log (s: string) =
                if not Console.IsErrorRedirected then
                    eprintf "\r%-70s" s

            let settings: (string * obj) list =
                [
                    "cfg", box cfgName
                    "classes", box classes
                    "batch_size", box bs
                    "img_size", box size
                    "repeats", box repeats
                    "warmup", box warmup
                    "train_steps", box steps
                    "compute", box (if args.Contains Bf16 then "bfloat16" else "float32")
                    "threads", box (torch.get_num_threads ())
                    "cores", box Environment.ProcessorCount
                    "host_memory", box HostMemory.Description
                    "os", box Runtime.InteropServices.RuntimeInformation.OSDescription
                    "date", box (DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture))
                ]

            printfn
                "bench: %s, batch %d, %d px, %s, %d threads, %d cores; medians of %d runs (training: %d steps) after %d warm-up"
                cfgName
                bs
                size
                (if args.Contains Bf16 then
                     "bfloat16 convolutions"
                 else
                     "float32")
                (torch.get_num_threads ())
                Environment.ProcessorCount
                repeats
                steps
                warmup

            let figures = ResizeArray<Figure>()

            let show (fs: Figure list) =
                if not Console.IsErrorRedirected then
                    eprintf "\r%-70s\r" ""

                for f in fs do
                    figures.Add f

                    let ratio =
                        match baseline |> Option.bind (Map.tryFind f.Name) with
                        | Some b when b <> 0.0 -> sprintf "   (%.2fx baseline %s)" (f.Median / b) (inv b)
                        | _ -> ""

                    printfn "%s: %s %s   [min %s, max %s, n %d]%s" f.Name (inv f.Median) f.Unit (inv f.Min) (inv f.Max) f.Runs ratio

            // the training step first: the int8 export's calibration (inference) leaves a larger heap behind, and
            // the yolov3-spp step measured 4 % slower after it
            if List.contains "train_step" only then
                show (benchTrain cfg computeType bs size warmup steps log)

            if List.contains "inference" only then
                show (benchInference cfg computeType size warmup repeats)
            // NMS runs once per image in an evaluation: warm it up as many times so that the JIT has tiered up, as it has there
            if List.contains "nms" only then
                show (benchNms size (args.GetResult(Nms_Boxes, 10000)) (max warmup 30) (max repeats 20))

            if List.contains "cocoeval" only then
                show (benchCoco (args.GetResult(Coco_Images, 5000)) warmup repeats)

            if List.contains "loader" only then
                show (benchLoader bs size (args.GetResult(Loader_Images, 64)) warmup repeats)
            // how much faster the loader produces training images than a training step consumes them
            let find n =
                figures |> Seq.tryFind (fun f -> f.Name = n)

            match find "loader_train", find "train_step" with
            | Some l, Some t ->
                let r = l.Median / (float bs / t.Median)

                show
                    [
                        {
                            Name = "loader_vs_train"
                            Median = r
                            Min = r
                            Max = r
                            Unit = "x"
                            Runs = 1
                        }
                    ]
            | _ -> ()

            writeJson output settings (List.ofSeq figures)
            printfn "json: %s" (Path.GetFullPath output)
            0)
