/// The COCO evaluator beyond the golden case: edge cases, determinism, and the json reader's errors.
module YoloSpp.Tests.Evaluation.CocoEvalTests

open System
open System.Diagnostics
open Expecto
open TorchSharp
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Tests

let private box x y w h : CocoBox = { X = x; Y = y; W = w; H = h }

let private image id : CocoImage =
    {
        Id = id
        Width = 640
        Height = 480
        FileName = ""
    }

let private ann id img cat (b: CocoBox) crowd : CocoAnnotation =
    {
        Id = id
        ImageId = img
        CategoryId = cat
        Bbox = b
        Area = b.W * b.H
        IsCrowd = crowd
    }

let private det img cat (b: CocoBox) score : CocoDetection =
    {
        ImageId = img
        CategoryId = cat
        Bbox = b
        Score = score
    }

let private dataset (anns: CocoAnnotation list) =
    {
        Images = [| image 1L; image 2L |]
        Categories = [| { Id = 1L; Name = "a" }; { Id = 2L; Name = "b" }; { Id = 3L; Name = "c" } |]
        Annotations = Array.ofList anns
    }

// one small, one medium and one large box, categories 1 and 2
let private gtBoxes =
    [
        ann 1L 1L 1L (box 10.0 10.0 20.0 20.0) false
        ann 2L 1L 2L (box 100.0 100.0 50.0 50.0) false
        ann 3L 2L 1L (box 200.0 100.0 150.0 150.0) false
    ]

let private perfect =
    gtBoxes
    |> List.map (fun a -> det a.ImageId a.CategoryId a.Bbox 0.9)
    |> Array.ofList

/// A synthetic COCO set: `images` images, 20 categories, ~7 ground truths and `perImage` detections per image.
let syntheticCoco (images: int) (perImage: int) (seed: int) =
    let rng = Random seed
    let anns = ResizeArray()
    let dets = ResizeArray()

    for i in 1..images do
        let gts =
            [|
                for _ in 1 .. rng.Next(3, 12) ->
                    let w, h = rng.NextDouble() * 200.0 + 4.0, rng.NextDouble() * 200.0 + 4.0
                    box (rng.NextDouble() * 400.0) (rng.NextDouble() * 300.0) w h, int64 (rng.Next(1, 21))
            |]

        for b, c in gts do
            anns.Add(ann (int64 anns.Count + 1L) (int64 i) c b (rng.Next 50 = 0))

        for k in 0 .. perImage - 1 do
            let b, c = gts.[k % gts.Length]
            let jitter () = (rng.NextDouble() - 0.5) * 0.3

            let b =
                if k < gts.Length then
                    box (b.X + jitter () * b.W) (b.Y + jitter () * b.H) (b.W * (1.0 + jitter ())) (b.H * (1.0 + jitter ()))
                else
                    box (rng.NextDouble() * 500.0) (rng.NextDouble() * 400.0) (rng.NextDouble() * 100.0 + 2.0) (rng.NextDouble() * 100.0 + 2.0)

            dets.Add(det (int64 i) (if rng.Next 10 = 0 then int64 (rng.Next(1, 21)) else c) b (Math.Round(rng.NextDouble(), 3)))

    {
        Images = Array.init images (fun i -> image (int64 i + 1L))
        Categories =
            Array.init 20 (fun k ->
                {
                    Id = int64 k + 1L
                    Name = sprintf "c%d" (k + 1)
                })
        Annotations = anns.ToArray()
    },
    dets.ToArray()

let private expectError (result: Result<'T, string>) (parts: string list) =
    match result with
    | Ok _ -> failtestf "expected an error mentioning %A" parts
    | Error msg ->
        Expect.isFalse (msg.Contains '\n') "one line"

        for p in parts do
            Expect.stringContains msg p "message"

let private cocoTests =
    testList
        "cocoeval"
        [
            testCase "thresholds compare equal to numpy's linspace values"
            <| fun () ->
                Expect.equal CocoEval.iouThresholds.[0] 0.5 ".50"
                Expect.equal CocoEval.iouThresholds.[5] 0.75 ".75"
                Expect.equal CocoEval.iouThresholds.[9] 0.95 ".95"
                Expect.equal CocoEval.recallThresholds.Length 101 "101 recall points"
                Expect.equal CocoEval.recallThresholds.[100] 1.0 "last = stop"

            testCase "empty detections give 0 for every stat defined by the ground truth"
            <| fun () ->
                let r = CocoEval.evaluate (dataset gtBoxes) [||]
                Expect.sequenceEqual r.Stats (Array.create 12 0.0) "all zeros"

            testCase "perfect detections give AP 1"
            <| fun () ->
                let r = CocoEval.evaluate (dataset gtBoxes) perfect
                // with one true positive pycocotools' precision is 1/(1 + spacing(1)) = 1 - 2.2e-16, not 1
                for i, v in Array.indexed r.Stats do
                    Expect.floatClose { absolute = 1e-15; relative = 0.0 } v 1.0 (sprintf "stats[%d]" i)

                Expect.sequenceEqual (r.PerCategory |> Array.map (fun c -> Math.Round(c.Ap, 12))) [| 1.0; 1.0; -1.0 |] "category 3 has no ground truth"

            testCase "an area range without ground truth is -1 and prints -1.000"
            <| fun () ->
                let r = CocoEval.evaluate (dataset [ gtBoxes.Head ]) [| perfect.[0] |]
                Expect.equal r.Stats.[4] -1.0 "no medium ground truth"
                Expect.stringContains r.Summary "area=medium | maxDets=100 ] = -1.000" "summary"

            testCase "a category without ground truth is left out of the mean"
            <| fun () ->
                let extra =
                    [|
                        det 1L 3L (box 300.0 300.0 40.0 40.0) 0.99
                        det 2L 3L (box 0.0 0.0 40.0 40.0) 0.98
                    |]

                let r = CocoEval.evaluate (dataset gtBoxes) (Array.append perfect extra)
                Expect.equal r.Stats.[0] 1.0 "category 3 detections do not count"
                Expect.equal r.PerCategory.[2].Ap -1.0 "category 3 undefined"

            testCase "a detection on a crowd region is ignored, not a false positive"
            <| fun () ->
                let crowd = ann 9L 1L 1L (box 300.0 300.0 200.0 100.0) true
                // inside the crowd box: IoU over the detection's own area = 1
                let onCrowd = det 1L 1L (box 320.0 320.0 30.0 30.0) 0.95

                let r =
                    CocoEval.evaluate (dataset (crowd :: gtBoxes)) (Array.append [| onCrowd |] perfect)

                Expect.equal r.Stats.[0] 1.0 "ignored"
                let notCrowd = { crowd with IsCrowd = false }

                let r2 =
                    CocoEval.evaluate (dataset (notCrowd :: gtBoxes)) (Array.append [| onCrowd |] perfect)

                Expect.isLessThan r2.Stats.[0] 1.0 "a false positive once the region is a regular box"

            testCase "bbIou: crowd denominator is the detection area, no overlap gives 0"
            <| fun () ->
                Expect.equal (CocoEval.bbIou (box 0.0 0.0 10.0 10.0) (box 0.0 0.0 100.0 100.0) true) 1.0 "crowd"
                Expect.equal (CocoEval.bbIou (box 0.0 0.0 10.0 10.0) (box 0.0 0.0 100.0 100.0) false) 0.01 "regular"
                Expect.equal (CocoEval.bbIou (box 0.0 0.0 10.0 10.0) (box 10.0 0.0 10.0 10.0) false) 0.0 "touching"

            testCase "a lower-scored duplicate is a false positive"
            <| fun () ->
                let dup = det 1L 1L (box 10.5 10.0 20.0 20.0) 0.5
                let r = CocoEval.evaluate (dataset gtBoxes) (Array.append perfect [| dup |])
                // the duplicate ranks last: precision stays 1 up to full recall
                Expect.equal r.Stats.[0] 1.0 "AP unaffected"

                let r2 =
                    CocoEval.evaluate (dataset gtBoxes) (Array.append perfect [| { dup with Score = 0.95 } |])

                Expect.isLessThan r2.Stats.[0] 1.0 "ranked first it costs precision"

            testCase "json: ground truth and detections round-trip"
            <| fun () ->
                let gt = dataset gtBoxes
                let gt2 = CocoJson.parseGroundTruth "gt.json" (CocoJson.serializeGroundTruth gt)
                Expect.equal gt2 (Ok gt) "ground truth"

                let d2 =
                    CocoJson.parseDetections "dt.json" gt (CocoJson.serializeDetections perfect)

                Expect.equal d2 (Ok perfect) "detections"

            testCase "json: malformed input gives one-line errors naming file and problem"
            <| fun () ->
                let gt = dataset gtBoxes
                expectError (CocoJson.parseGroundTruth "gt.json" "{ images: [") [ "gt.json"; "not JSON" ]
                expectError (CocoJson.parseGroundTruth "gt.json" """{"images": [], "categories": []}""") [ "gt.json"; "missing field 'annotations'" ]

                expectError
                    (CocoJson.parseGroundTruth
                        "gt.json"
                        """{"images": [], "categories": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "area": 3, "iscrowd": 0}]}""")
                    [ "gt.json"; "annotations[0].bbox"; "expected 4 numbers"; "got 3" ]

                expectError
                    (CocoJson.parseGroundTruth "gt.json" """{"images": [{"id": 1, "width": 5}], "categories": [], "annotations": []}""")
                    [ "gt.json"; "images[0]"; "missing field 'height'" ]

                expectError
                    (CocoJson.parseDetections "dt.json" gt """[{"image_id": 7, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]""")
                    [ "dt.json"; "detection 0"; "image_id 7 is not an image of the ground truth" ]

                expectError
                    (CocoJson.parseDetections "dt.json" gt """[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4, 5], "score": 0.5}]""")
                    [ "dt.json"; "detection 0.bbox"; "expected 4 numbers"; "got 5" ]

                expectError
                    (CocoJson.parseDetections "dt.json" gt """[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}]""")
                    [ "dt.json"; "detection 0"; "missing field 'score'" ]

                expectError (CocoJson.parseDetections "dt.json" gt """{"image_id": 1}""") [ "dt.json"; "expected a JSON array" ]

            testCase "evaluation is deterministic across runs"
            <| fun () ->
                let gt, dets = syntheticCoco 300 20 3
                let a = CocoEval.evaluate gt dets
                let b = CocoEval.evaluate gt dets
                Expect.equal a.Stats b.Stats "same stats"
                Expect.equal a.Precision b.Precision "same precision"
        ]

let tests = cocoTests
