/// Golden kind `autoanchor` (this repository's own, see tests/golden/LOCAL-KINDS.md): yolov5's anchor check metric
/// (check_anchors in utils/autoanchor.py) on seeded label boxes: best possible recall and anchors above threshold.
module YoloSpp.Tests.Golden.AutoanchorCases

open System.Text.Json
open Expecto
open YoloSpp.Data
open YoloSpp.Tests.Golden.Json

let private pairs (e: JsonElement) =
    items e |> Array.map (fun p -> let v = items p in number v[0], number v[1])

let run (_: string) (case: JsonElement) =
    let bpr, aat =
        Anchors.ratioMetric (num "thr" case) (pairs (prop "wh" case)) (pairs (prop "anchors" case))
    // float32 means of up to 400 counts: equal to a few ulps
    Expect.floatClose { absolute = 1e-6; relative = 1e-6 } bpr (num "bpr" case) "best possible recall"
    Expect.floatClose { absolute = 1e-6; relative = 1e-6 } aat (num "aat" case) "anchors above threshold"
