/// Golden kind `cocoeval`: pycocotools' 12 bbox stats (abs 1e-12) and its printed summary table (exact text).
/// The case's `gt` and `detections` go through the COCO json reader, so the reader is exercised too.
module YoloSpp.Tests.Golden.CocoEvalCases

open System.Text.Json
open Expecto
open YoloSpp.Evaluation
open YoloSpp.Tests.Golden.Json

let run (case: JsonElement) =
    let source = sprintf "cocoeval_%s" (str "case" case)

    let gt =
        match CocoJson.parseGroundTruth source ((prop "gt" case).GetRawText()) with
        | Ok gt -> gt
        | Error e -> failtest e

    let detections =
        match CocoJson.parseDetections source gt ((prop "detections" case).GetRawText()) with
        | Ok d -> d
        | Error e -> failtest e

    let result = CocoEval.evaluate gt detections
    let expected = items (prop "stats" case) |> Array.map number
    Expect.equal result.Stats.Length expected.Length "stats: count"

    for i in 0 .. expected.Length - 1 do
        if abs (result.Stats.[i] - expected.[i]) > 1e-12 then
            failtestf "stats[%d]: expected %.17g, got %.17g" i expected.[i] result.Stats.[i]

    match tryProp "summary_text" case with
    | Some s -> Expect.equal result.Summary (s.GetString()) "summary_text"
    | None -> ()
