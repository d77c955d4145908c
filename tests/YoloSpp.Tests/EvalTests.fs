/// NMS and COCO evaluation: edge cases the golden files do not cover, the json reader's errors, and timings
/// (printed, not asserted).
module YoloSpp.Tests.EvalTests

open System
open System.Diagnostics
open Expecto
open TorchSharp
open YoloSpp.Detection
open YoloSpp.Evaluation

// ---------------------------------------------------------------- NMS

/// prediction [1, n, 5 + nc] from rows (cx, cy, w, h, obj, cls…)
let private prediction (rows: float32[] list) =
    let width = if rows.IsEmpty then 8 else rows.Head.Length
    torch.tensor(Array.concat rows).view (1L, int64 rows.Length, int64 width)

let private single =
    { Nms.NmsOptions.Default with
        MultiLabel = false
    }

let private rowsOf (t: torch.Tensor) =
    let a = t.data<float32>().ToArray()
    Array.init (a.Length / 6) (fun i -> a.[6 * i .. 6 * i + 5])

let private nmsTests =
    testList
        "nms"
        [
            testCase "empty input gives None per image"
            <| fun () ->
                let out = Nms.nonMaxSuppression Nms.NmsOptions.Default (torch.zeros (2L, 0L, 8L))
                Expect.equal out [| None; None |] "None for every image"

            testCase "all rows below the threshold give None"
            <| fun () ->
                let out =
                    Nms.nonMaxSuppression single (prediction [ [| 50.0f; 50.0f; 10.0f; 10.0f; 0.05f; 0.9f; 0.1f; 0.1f |] ])

                Expect.isNone out.[0] "obj 0.05 <= 0.1"

            testCase "obj equal to float32(conf_thres) is dropped"
            <| fun () ->
                let out =
                    Nms.nonMaxSuppression single (prediction [ [| 50.0f; 50.0f; 10.0f; 10.0f; 0.1f; 1.0f; 0.0f; 0.0f |] ])

                Expect.isNone out.[0] "strict >"

            testCase "box size limits are strict"
            <| fun () ->
                let out =
                    Nms.nonMaxSuppression
                        single
                        (prediction
                            [
                                [| 50.0f; 50.0f; 2.0f; 10.0f; 0.9f; 1.0f; 0.0f; 0.0f |]
                                [| 150.0f; 50.0f; 10.0f; 2.0001f; 0.8f; 1.0f; 0.0f; 0.0f |]
                            ])

                Expect.equal (out.[0] |> Option.map (fun t -> t.shape.[0])) (Some 1L) "w = 2 dropped, h = 2.0001 kept"

            testCase "equal class scores pick the first class"
            <| fun () ->
                let out =
                    Nms.nonMaxSuppression single (prediction [ [| 50.0f; 50.0f; 10.0f; 10.0f; 0.9f; 0.2f; 0.7f; 0.7f |] ])

                let r = rowsOf out.[0].Value
                Expect.equal r.[0].[5] 1.0f "class 1, not 2"
                Expect.equal r.[0].[4] (0.7f * 0.9f) "conf = cls * obj in float32"
                Expect.sequenceEqual r.[0].[0..3] [| 45.0f; 45.0f; 55.0f; 55.0f |] "xyxy"

            testCase "overlapping boxes of one class are suppressed, of two classes kept"
            <| fun () ->
                let rows =
                    [
                        [| 50.0f; 50.0f; 20.0f; 20.0f; 0.9f; 1.0f; 0.0f; 0.0f |]
                        [| 51.0f; 50.0f; 20.0f; 20.0f; 0.8f; 1.0f; 0.0f; 0.0f |]
                        [| 51.0f; 51.0f; 20.0f; 20.0f; 0.7f; 0.0f; 1.0f; 0.0f |]
                    ]

                let r = rowsOf (Nms.nonMaxSuppression single (prediction rows)).[0].Value
                Expect.equal (r |> Array.map (fun x -> x.[5])) [| 0.0f; 1.0f |] "one box per class, descending conf"

            testCase "multi-label keeps (row, class) pairs and the per-image cap"
            <| fun () ->
                let rows =
                    [
                        for i in 0..59 -> [| 30.0f * float32 i + 10.0f; 50.0f; 10.0f; 10.0f; 0.9f; 0.5f; 0.6f; 0.05f |]
                    ]

                let out = (Nms.nonMaxSuppression Nms.NmsOptions.Default (prediction rows)).[0].Value
                Expect.equal out.shape.[0] 100L "120 candidates capped at 100"
                let r = rowsOf out
                Expect.isTrue (r |> Array.pairwise |> Array.forall (fun (a, b) -> a.[4] >= b.[4])) "descending conf"

            testCase "the kernel keeps what TorchSharp's torchvision.ops.nms keeps"
            <| fun () ->
                // spread and clustered boxes, distinct and tied (quantised) scores, several thresholds
                for seed in 1..6 do
                    use _ = torch.NewDisposeScope()
                    let rng = Random seed
                    let n = 300
                    let clustered = seed % 2 = 0

                    let centres =
                        Array.init 8 (fun _ -> rng.NextDouble() * 200.0, rng.NextDouble() * 200.0)

                    let boxes =
                        Array.init n (fun _ ->
                            let x, y =
                                if clustered then
                                    let cx, cy = centres.[rng.Next 8] in float32 (cx + rng.NextDouble() * 8.0), float32 (cy + rng.NextDouble() * 8.0)
                                else
                                    float32 (rng.NextDouble() * 200.0), float32 (rng.NextDouble() * 200.0)

                            let w, h =
                                float32 (rng.NextDouble() * 60.0 + 1.0), float32 (rng.NextDouble() * 60.0 + 1.0)

                            [| x; y; x + w; y + h |])
                        |> Array.concat

                    let scores =
                        Array.init n (fun _ ->
                            if seed > 3 then
                                float32 (rng.Next 10) / 10.0f
                            else
                                float32 (rng.NextDouble()))

                    for thr in [ 0.0; 0.3; 0.5; 0.9 ] do
                        let ours = Nms.nmsKernel boxes scores thr |> Array.map int64

                        let theirs =
                            if seed <= 3 then
                                torchvision.ops.nms(torch.tensor(boxes).view (int64 n, 4L), torch.tensor (scores), thr).data<int64>().ToArray()
                            else
                                // tied scores: torchvision's unstable sort leaves their order open; ours keeps index
                                // order, so compare with the plain greedy loop over a stable descending sort
                                let order = List.init n id |> List.sortBy (fun i -> -scores.[i]) // List.sortBy is stable

                                let iou i j =
                                    let b k = boxes.[4 * i + k], boxes.[4 * j + k]
                                    let w = max 0.0f (min (fst (b 2)) (snd (b 2)) - max (fst (b 0)) (snd (b 0)))
                                    let h = max 0.0f (min (fst (b 3)) (snd (b 3)) - max (fst (b 1)) (snd (b 1)))

                                    let area k =
                                        (boxes.[4 * k + 2] - boxes.[4 * k]) * (boxes.[4 * k + 3] - boxes.[4 * k + 1])

                                    w * h / (area i + area j - w * h)

                                let kept = ResizeArray<int>()

                                for i in order do
                                    if kept |> Seq.forall (fun k -> not (float (iou k i) > thr)) then
                                        kept.Add i

                                kept |> Seq.map int64 |> Array.ofSeq

                        Expect.sequenceEqual ours theirs (sprintf "seed %d, IoU %g: same kept indices in the same order" seed thr)

            testCase "timing: NMS on 10,000 boxes (printed)"
            <| fun () ->
                let rng = Random 1
                let n = 10000

                let rows =
                    [
                        for _ in 1..n ->
                            Array.append
                                [|
                                    float32 (rng.NextDouble() * 512.0)
                                    float32 (rng.NextDouble() * 512.0)
                                    float32 (rng.NextDouble() * 60.0 + 3.0)
                                    float32 (rng.NextDouble() * 60.0 + 3.0)
                                    float32 (rng.NextDouble() * 0.9 + 0.1001)
                                |]
                                (Array.init 20 (fun _ -> float32 (rng.NextDouble())))
                    ]

                let p = prediction rows
                Nms.nonMaxSuppression single p |> ignore
                let sw = Stopwatch.StartNew()
                let out = Nms.nonMaxSuppression { single with MaxDet = n } p
                sw.Stop()
                printfn "TIMING nms: %d boxes (nc 20, single label) -> %d kept in %.1f ms" n out.[0].Value.shape.[0] sw.Elapsed.TotalMilliseconds
        ]

// ---------------------------------------------------------------- COCO evaluation

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

let private evalTests =
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

            testCase "timing: 5,000 images x 20 detections (printed)"
            <| fun () ->
                let gt, dets = syntheticCoco 5000 20 11
                CocoEval.evaluate gt (Array.truncate 2000 dets) |> ignore
                let cpu0 = Process.GetCurrentProcess().TotalProcessorTime
                let sw = Stopwatch.StartNew()
                let r = CocoEval.evaluate gt dets
                sw.Stop()
                let cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0

                printfn
                    "TIMING cocoeval: %d images, %d ground truths, %d detections in %.0f ms wall, %.0f ms process CPU (AP %.4f)"
                    gt.Images.Length
                    gt.Annotations.Length
                    dets.Length
                    sw.Elapsed.TotalMilliseconds
                    cpu.TotalMilliseconds
                    r.Stats.[0]
        ]

let tests = testList "eval" [ nmsTests; evalTests ]
