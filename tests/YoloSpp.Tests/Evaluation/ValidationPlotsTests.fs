/// yolov5's validation pictures from a hand-made case: the confusion matrix's counts (CSV and the drawn cells), the
/// precision and recall at the best F1, the files `WritePlots` writes; and a training run's pictures, its recorded
/// best confidence and `detect --conf best`.
module YoloSpp.Tests.Evaluation.ValidationPlotsTests

open System
open System.IO
open Expecto
open SkiaSharp
open YoloSpp.Evaluation
open YoloSpp.Evaluation.Metrics
open YoloSpp.Tests

let private truth c x1 y1 x2 y2 : Truth =
    {
        Class = c
        X1 = x1
        Y1 = y1
        X2 = x2
        Y2 = y2
    }

let private pred x1 y1 x2 y2 conf c : Prediction =
    {
        X1 = x1
        Y1 = y1
        X2 = x2
        Y2 = y2
        Conf = conf
        Class = c
    }

/// Three images, classes cat (0) and dog (1): a cat found, a dog taken for a cat, a dog where there is nothing; a dog
/// found; a cat missed. [predicted][true]: cat row [1, 1, 0], dog row [0, 1, 1], background row [1, 0, 0].
let handMade () =
    let a, b = truth 0 10.0 10.0 60.0 60.0, truth 1 100.0 100.0 180.0 160.0

    ValidationMetrics.Compute(
        [ "cat"; "dog" ],
        [
            [| a; b |] :> Collections.Generic.IReadOnlyList<_>,
            [|
                pred 11.0 9.0 61.0 58.0 0.9 0
                pred 102.0 98.0 178.0 161.0 0.8 0
                pred 300.0 300.0 340.0 350.0 0.7 1
            |]
            :> Collections.Generic.IReadOnlyList<_>
            [| truth 1 20.0 30.0 90.0 100.0 |], [| pred 21.0 30.0 91.0 99.0 0.95 1 |]
            [| truth 0 200.0 10.0 260.0 70.0 |], [||]
        ]
    )

let tests =
    testList
        "validation pictures"
        [
            test "a hand-made confusion matrix has yolov5's counts, in the CSV and in the drawn cells" {
                let m = handMade ()
                let expected = [| [| 1.0; 1.0; 0.0 |]; [| 0.0; 1.0; 1.0 |]; [| 1.0; 0.0; 0.0 |] |]
                Expect.equal (m.Confusion |> Seq.map Seq.toArray |> Seq.toArray) expected "[predicted][true]"

                Expect.equal (m.ConfusionCsv()) "predicted\\true,cat,dog,background\ncat,1,1,0\ndog,0,1,1\nbackground,1,0,0\n" "CSV"

                // the chart: a cell with a count is dark blue, an empty one white (sampled off the centre, where the
                // count is written)
                let plot = Charts.ConfusionPlot(m, false)
                let w, h = Charts.ConfusionWidth 3, Charts.ConfusionHeight 3
                use bmp = SKBitmap.Decode(plot.GetImageBytes(w, h, ScottPlot.ImageFormat.Png))
                Expect.equal (bmp.Width, bmp.Height) (w, h) "size"

                for i in 0..2 do
                    for j in 0..2 do
                        let px = plot.GetPixel(ScottPlot.Coordinates(float j + 0.3, float (2 - i) + 0.3))
                        let c = bmp.GetPixel(int px.X, int px.Y)
                        let what = sprintf "cell (predicted %d, true %d) at %A: %A" i j px c

                        if expected.[i].[j] > 0.0 then
                            Expect.isTrue (c.Blue > 80uy && c.Red < 60uy) (what + " is dark blue")
                        else
                            Expect.isTrue (c.Red > 240uy && c.Green > 240uy && c.Blue > 240uy) (what + " is white")
            }
            test "precision and recall at the best F1, and the files WritePlots writes" {
                let m = handMade ()
                Expect.sequenceEqual m.Classes [ 0; 1 ] "classes with labels"
                // cat: 2 labels, one found (its other prediction is wrong) -> recall 0.5; dog: 2 labels, one found
                Expect.floatClose Accuracy.high m.ClassRecall.[0] 0.5 "cat recall"
                Expect.floatClose Accuracy.high m.ClassRecall.[1] 0.5 "dog recall"
                Expect.isTrue (m.BestConfidence > 0.0 && m.BestConfidence < 1.0) "a confidence"
                let dir = Directory.CreateTempSubdirectory "yolospp-plots-"

                try
                    let files = m.WritePlots dir.FullName

                    Expect.sequenceEqual
                        (files |> Seq.map Path.GetFileName)
                        [
                            "PR_curve.png"
                            "F1_curve.png"
                            "P_curve.png"
                            "R_curve.png"
                            "confusion_matrix.png"
                            "confusion_matrix_counts.png"
                            "confusion_matrix.csv"
                            "classes.csv"
                        ]
                        "the files"

                    for f in files |> Seq.filter (fun f -> f.EndsWith ".png") do
                        use b = SKBitmap.Decode f
                        Expect.isGreaterThan b.Width 800 (f + " width")

                    Expect.stringStarts
                        (File.ReadAllText(Path.Combine(dir.FullName, "classes.csv")))
                        "class,name,precision,recall,f1,ap50\n0,cat,"
                        "classes.csv"

                    Expect.isEmpty (Directory.GetFiles(dir.FullName, "*.tmp")) "no temp file left"
                finally
                    dir.Delete true
            }
        ]
