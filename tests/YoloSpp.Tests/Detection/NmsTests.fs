/// NMS edge cases the golden files do not cover (thresholds, ties, caps, class offsets) and torchvision's kernel on random boxes.
module YoloSpp.Tests.Detection.NmsTests

open System
open System.Diagnostics
open Expecto
open TorchSharp
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Tests

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

let tests =
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
        ]
