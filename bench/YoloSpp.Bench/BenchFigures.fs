/// The figures `yolospp bench` measures, one function each: the training step with the RSS over it, inference
/// (unfused, conv+BN fused, ONNX Runtime in float32 and int8), the loader, NMS and the COCO evaluator, each the
/// median over repeats after a warm-up.
module YoloSpp.Bench.BenchFigures

open System
open System.Diagnostics
open System.Globalization
open System.IO
open TorchSharp
open YoloSpp
open YoloSpp.IO
open YoloSpp.Model
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Training

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

let median (xs: float[]) =
    let s = Array.sort xs

    if s.Length = 0 then nan
    elif s.Length % 2 = 1 then s.[s.Length / 2]
    else (s.[s.Length / 2 - 1] + s.[s.Length / 2]) / 2.0

let figure name unit (xs: float[]) =
    {
        Name = name
        Median = median xs
        Min = Array.min xs
        Max = Array.max xs
        Unit = unit
        Runs = xs.Length
    }

/// Runs `f` warmup times untimed, then `repeats` times, each timed (seconds).
let timed warmup repeats (f: unit -> unit) =
    for _ in 1..warmup do
        f ()

    [|
        for _ in 1..repeats ->
            let sw = Stopwatch.StartNew()
            f ()
            sw.Elapsed.TotalSeconds
    |]

let rssBytes () =
    use p = Process.GetCurrentProcess()
    p.Refresh()
    float p.WorkingSet64

let inv (x: float) =
    x.ToString("0.####", CultureInfo.InvariantCulture)

/// Random images and 3 boxes per image (class, centre and size drawn uniformly), as a loader would give them.
let syntheticBatch (rnd: Random) (bs: int) (size: int) (nc: int) =
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

/// A network in train mode with the trainer's SGD (nesterov) and loss for the default hyperparameters, and one
/// synthetic batch; `run` gets the trainer's own step (Engine.TrainStep: forward, loss, backward, SGD step), which
/// writes the seconds of its parts into the array it is given (or not, for null).
let private withTrainingStep (cfg: DarknetConfig) computeType bs size (run: (float[] -> unit) -> 'a) =
    use model = new DarkNet(cfg)
    model.train ()
    model.ComputeType <- computeType
    let hyp = HyperParameters.Default.AdjustedFor(model.NumClasses, size)

    let trainable =
        model.parameters () |> Seq.filter (fun p -> p.requires_grad) |> Array.ofSeq

    use optimizer =
        new Sgd(trainable, hyp.Lr0, momentum = hyp.Momentum, weightDecay = hyp.WeightDecay, nesterov = true)

    let loss = YoloLoss.For(model, hyp)
    let scaler = LossScaler(false)
    let images, targets = syntheticBatch (Random 0) bs size model.NumClasses

    try
        run (fun phases ->
            Engine.TrainStep(model, optimizer, loss, scaler, images, targets, 1.0, 1, true, null, null, phases)
            |> ignore)
    finally
        images.Dispose()
        targets.Dispose()

/// (a) and (f): SGD training steps (forward, the core's loss, backward, step) and the process RSS after each.
let benchTrain (cfg: DarknetConfig) computeType bs size warmup steps (log: string -> unit) =
    withTrainingStep cfg computeType bs size (fun trainStep ->
        for k in 1..warmup do
            trainStep null
            log (sprintf "train_step warm-up %d/%d" k warmup)

        let times = Array.zeroCreate<float> steps
        let rss = Array.zeroCreate<float> steps

        for k in 0 .. steps - 1 do
            let sw = Stopwatch.StartNew()
            trainStep null
            times.[k] <- sw.Elapsed.TotalSeconds
            rss.[k] <- rssBytes ()
            log (sprintf "train_step %d/%d: %.3f s, RSS %.0f MiB" (k + 1) steps times.[k] (rss.[k] / 1048576.0))

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
        ])

/// The training step's parts, split as Engine.TrainStep times them: forward, loss (values read back), backward, and
/// the optimizer step with zero_grad, each the median over the steps, and their per-step sum.
let benchTrainPhases (cfg: DarknetConfig) computeType bs size warmup steps (log: string -> unit) =
    withTrainingStep cfg computeType bs size (fun trainStep ->
        let phases = Array.zeroCreate<float> 4

        for k in 1..warmup do
            trainStep phases
            log (sprintf "train_phases warm-up %d/%d" k warmup)

        let times =
            [|
                for k in 1..steps ->
                    trainStep phases
                    log (sprintf "train_phases %d/%d" k steps)
                    Array.copy phases
            |]

        [
            for i, name in Array.indexed [| "train_forward"; "train_loss"; "train_backward"; "train_optimizer" |] do
                yield figure name "s" (times |> Array.map (fun t -> t.[i]))
            yield figure "train_phases_sum" "s" (times |> Array.map Array.sum)
        ])

/// (b): batch-1 inference in eval mode (decoded detections included), unfused, with conv+BN folded, and through
/// ONNX Runtime on the exported model.
let benchInference (cfg: DarknetConfig) computeType size warmup repeats =
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
            YoloSpp.Detection.OnnxRuntimeNetwork.Load(path, torch.get_num_threads ())
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

    let runOnnx (o: YoloSpp.Detection.OnnxRuntimeNetwork) () =
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
let benchLoader bs size images warmup repeats =
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
let benchNms size boxes warmup repeats =
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
let benchCoco images warmup repeats =
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
