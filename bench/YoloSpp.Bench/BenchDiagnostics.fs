/// The opt-in `diagnostics` figures: what a training run's pictures cost.
module YoloSpp.Bench.BenchDiagnostics

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
open YoloSpp.Bench.BenchFigures

/// What the run's pictures cost: the validation metrics every evaluation computes (yolov5's matching, curves and
/// confusion matrix; the demo's validation set: 200 images, 5 classes, 100 detections each as the evaluation's conf
/// 0.01 keeps them), results.png redrawn after every epoch (30 epochs), and the end-of-run curves and matrix.
let benchDiagnostics warmup repeats =
    let rnd = Random 1
    let images, nc = 200, 5

    let box () =
        let w, h = 8.0 + rnd.NextDouble() * 60.0, 8.0 + rnd.NextDouble() * 60.0

        {
            X = rnd.NextDouble() * (160.0 - w)
            Y = rnd.NextDouble() * (160.0 - h)
            W = w
            H = h
        }

    let gts = ResizeArray<CocoAnnotation>()
    let dts = ResizeArray<CocoDetection>()

    for i in 1..images do
        let objects = [| for _ in 1 .. 1 + rnd.Next 6 -> box (), int64 (rnd.Next nc) |]

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

        for k in 1..100 do
            let b, c =
                if k <= objects.Length then
                    let b, c = objects.[k - 1]

                    { b with
                        X = b.X + rnd.NextDouble() * 3.0
                    },
                    c
                else
                    box (), int64 (rnd.Next nc)

            dts.Add
                {
                    ImageId = int64 i
                    CategoryId = c
                    Bbox = b
                    Score =
                        if k <= objects.Length then
                            0.5 + rnd.NextDouble() / 2.0
                        else
                            rnd.NextDouble() * 0.3
                }

    let gt =
        {
            Images =
                [|
                    for i in 1..images ->
                        {
                            Id = int64 i
                            Width = 160
                            Height = 160
                            FileName = ""
                        }
                |]
            Categories = [| for c in 0 .. nc - 1 -> { Id = int64 c; Name = string c } |]
            Annotations = gts.ToArray()
        }

    let names = [| for c in 0 .. nc - 1 -> sprintf "class%d" c |]
    let dir = Directory.CreateTempSubdirectory "yolospp-bench-plots-"

    try
        let metrics () =
            YoloSpp.Evaluation.ValidationMetrics.FromCoco(names, gt, dts)

        use log = new YoloSpp.Training.TrainingLog(dir.FullName, "results.txt")

        for e in 0..29 do
            let stats = Array.init 12 (fun k -> 0.01 * float (e + k))

            log.Add(YoloSpp.Training.EpochRecord(e, stats, YoloSpp.Training.LossValues(3.0, 2.0, 1.0, 6.0), 0.001, Precision = 0.5, Recall = 0.4))

        let m = metrics ()

        [
            figure "validation_metrics" "s" (timed warmup repeats (fun () -> metrics () |> ignore))
            figure "results_png" "s" (timed warmup repeats (fun () -> log.Plot()))
            figure "validation_plots" "s" (timed warmup repeats (fun () -> m.WritePlots(dir.FullName) |> ignore))
        ]
    finally
        dir.Delete true
