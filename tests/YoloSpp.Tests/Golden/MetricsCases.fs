/// Golden kinds `ap_per_class` and `confusion_matrix` (this repository's own, see tests/golden/LOCAL-KINDS.md):
/// yolov5 v7.0's val.py matching, ap_per_class curves and ConfusionMatrix on crafted detections and labels.
module YoloSpp.Tests.Golden.MetricsCases

open System.Text.Json
open Expecto
open YoloSpp.Evaluation
open YoloSpp.Evaluation.Metrics
open YoloSpp.Tests.Golden.Json

let private floats (e: JsonElement) = items e |> Array.map number
let private rows (e: JsonElement) = items e |> Array.map floats

/// Labels (class, x1, y1, x2, y2) and predictions (x1, y1, x2, y2, conf, class) of each image.
let private images (case: JsonElement) =
    [|
        for im in items (prop "images" case) do
            let labels: Truth[] =
                rows (prop "labels" im)
                |> Array.map (fun r ->
                    {
                        Class = Operators.int r.[0]
                        X1 = r.[1]
                        Y1 = r.[2]
                        X2 = r.[3]
                        Y2 = r.[4]
                    })

            let preds: Prediction[] =
                rows (prop "detections" im)
                |> Array.map (fun r ->
                    {
                        X1 = r.[0]
                        Y1 = r.[1]
                        X2 = r.[2]
                        Y2 = r.[3]
                        Conf = r.[4]
                        Class = Operators.int r.[5]
                    })

            im, labels, preds
    |]

let private close (what: string) (tol: float) (actual: float[]) (expected: float[]) =
    Expect.equal actual.Length expected.Length (what + ": length")

    for i in 0 .. actual.Length - 1 do
        if abs (actual.[i] - expected.[i]) > tol then
            failtestf "%s[%d]: %.17g, expected %.17g" what i actual.[i] expected.[i]

/// The matching per image (exact), then the curves, AP and the values at the best F1 (1e-9).
let runApPerClass (case: JsonElement) =
    let all = images case

    for n, (im, labels, preds) in Array.indexed all do
        let expected =
            items (prop "correct" im)
            |> Array.map (fun r -> items r |> Array.map (fun b -> b.GetBoolean()))

        Expect.equal (matchPredictions iouThresholds labels preds) expected (sprintf "image %d: correct" n)

    let tp = all |> Array.collect (fun (_, l, p) -> matchPredictions iouThresholds l p)
    let preds = all |> Array.collect (fun (_, _, p) -> p)

    let targets =
        all |> Array.collect (fun (_, l, _) -> l |> Array.map (fun t -> t.Class))

    let r =
        apPerClass tp (preds |> Array.map (fun p -> p.Conf)) (preds |> Array.map (fun p -> p.Class)) targets

    Expect.equal r.Classes (items (prop "classes" case) |> Array.map (fun c -> c.GetInt32())) "classes"
    Expect.equal r.BestIndex (int "best_index" case) "best F1 index"

    for ci in 0 .. r.Classes.Length - 1 do
        let c = r.Classes.[ci]
        close (sprintf "AP class %d" c) 1e-9 r.Ap.[ci] (rows (prop "ap" case)).[ci]
        close (sprintf "P curve class %d" c) 1e-9 r.PCurve.[ci] (rows (prop "p_curve" case)).[ci]
        close (sprintf "R curve class %d" c) 1e-9 r.RCurve.[ci] (rows (prop "r_curve" case)).[ci]
        close (sprintf "F1 curve class %d" c) 1e-9 r.F1Curve.[ci] (rows (prop "f1_curve" case)).[ci]
        close (sprintf "PR curve class %d" c) 1e-9 r.PrCurve.[ci] (rows (prop "pr_curve" case)).[ci]

    for name, actual in [ "p", r.P; "r", r.R; "f1", r.F1; "tp", r.Tp; "fp", r.Fp ] do
        close name 1e-9 actual (floats (prop name case))

/// The matrix over every image, exactly (counts).
let runConfusionMatrix (case: JsonElement) =
    let nc = int "nc" case

    let m =
        images case
        |> Array.fold (fun m (_, labels, preds) -> confusionAdd nc (num "conf" case) (num "iou_thres" case) m labels preds) (confusionEmpty nc)

    Expect.equal m (rows (prop "matrix" case)) "matrix [predicted][true]"
