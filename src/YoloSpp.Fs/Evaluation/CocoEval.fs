/// The COCO bbox evaluation of pycocotools (cocoeval.py COCOeval with iouType='bbox': evaluate, accumulate,
/// summarize), reproduced number for number in float64 over plain arrays. Pure and deterministic: the work is
/// spread over (image, category) pairs and categories, each writing its own slot.
module YoloSpp.Evaluation.CocoEval

open System
open System.Collections.Generic
open System.Globalization
open System.Threading.Tasks

/// numpy.linspace(start, stop, num) with endpoint: start + i·step with step = (stop − start)/(num − 1), and the
/// last element set to stop exactly (numpy's formula, so thresholds compare equal to the reference's).
let internal linspace (start: float) (stop: float) (num: int) : float[] =
    let step = (stop - start) / float (num - 1)
    Array.init num (fun i -> if i = num - 1 then stop else float i * step + start)

/// IoU thresholds .50:.05:.95 (np.linspace(.5, .95, 10)).
let iouThresholds: float[] = linspace 0.5 0.95 10

/// Recall thresholds 0:.01:1 (np.linspace(0, 1, 101)).
let recallThresholds: float[] = linspace 0.0 1.0 101

/// Detections per image and category taken into account (sorted ascending, as pycocotools sorts them).
let maxDetections: int[] = [| 1; 10; 100 |]

/// Area ranges (label, lo, hi), inclusive at both ends: all, small (≤ 32²), medium (32²..96²), large (≥ 96²).
let areaRanges: (string * float * float)[] =
    [|
        "all", 0.0, 1e10
        "small", 0.0, 1024.0
        "medium", 1024.0, 9216.0
        "large", 9216.0, 1e10
    |]

/// np.spacing(1): the gap between 1.0 and the next double, added to the precision denominator.
let private spacing1 = 2.220446049250313e-16

/// maskApi.c bbIou of one detection and one ground-truth box: intersection over union, or over the detection's
/// area alone for a crowd region; 0 when the boxes do not overlap with positive width and height.
let bbIou (dt: CocoBox) (gt: CocoBox) (gtIsCrowd: bool) : float =
    let w = Math.Min(dt.W + dt.X, gt.W + gt.X) - Math.Max(dt.X, gt.X)

    if w <= 0.0 then
        0.0
    else
        let h = Math.Min(dt.H + dt.Y, gt.H + gt.Y) - Math.Max(dt.Y, gt.Y)

        if h <= 0.0 then
            0.0
        else
            let i = w * h
            let da = dt.W * dt.H
            let u = if gtIsCrowd then da else da + gt.W * gt.H - i
            i / u

/// numpy's pairwise summation of float64 (8 accumulators, blocks of 128), so means match np.mean to the bit.
let rec internal pairwiseSum (a: float[]) (start: int) (n: int) : float =
    if n < 8 then
        let mutable res = 0.0

        for i in start .. start + n - 1 do
            res <- res + a.[i]

        res
    elif n <= 128 then
        let r = Array.sub a start 8
        let mutable i = 8

        while i < n - n % 8 do
            for j in 0..7 do
                r.[j] <- r.[j] + a.[start + i + j]

            i <- i + 8

        let mutable res =
            ((r.[0] + r.[1]) + (r.[2] + r.[3])) + ((r.[4] + r.[5]) + (r.[6] + r.[7]))

        while i < n do
            res <- res + a.[start + i]
            i <- i + 1

        res
    else
        let n2 = n / 2
        let n2 = n2 - n2 % 8
        pairwiseSum a start n2 + pairwiseSum a (start + n2) (n - n2)

/// np.mean of the entries > −1, or −1 when there are none (summarize's rule for "undefined").
let private meanDefined (values: seq<float>) : float =
    let kept = values |> Seq.filter (fun v -> v > -1.0) |> Seq.toArray

    if kept.Length = 0 then
        -1.0
    else
        pairwiseSum kept 0 kept.Length / float kept.Length

/// evaluateImg of one (image, category) pair for every area range: the detections (score order, at most
/// maxDets[-1]) with their outcome per area and IoU threshold: 1 true positive, −1 false positive, 0 ignored.
type private PairEval =
    {
        Scores: float[]
        /// [A, T, D]
        Outcome: sbyte[]
        /// non-ignored ground truths per area
        NumPositives: int[]
    }

/// Stable order of indices by descending key (numpy argsort(-key, kind='mergesort')).
let private stableDescending (key: int -> float) (n: int) : int[] =
    let order = Array.init n id

    if n > 1 then
        let keys = Array.init n key
        Array.sortInPlaceWith (fun a b -> let c = compare keys.[b] keys.[a] in if c <> 0 then c else compare a b) order

    order

let private evaluatePair (gts: CocoAnnotation[]) (dts: CocoDetection[]) : PairEval =
    let nT, nA = iouThresholds.Length, areaRanges.Length
    let maxDet = maxDetections.[maxDetections.Length - 1]

    let order =
        stableDescending (fun i -> dts.[i].Score) dts.Length |> Array.truncate maxDet

    let d = order.Length
    let g = gts.Length
    // computeIoU: [D, G] with the ground truths in their stored order
    let ious = Array.zeroCreate<float> (d * g)

    for di in 0 .. d - 1 do
        for gi in 0 .. g - 1 do
            ious.[di * g + gi] <- bbIou dts.[order.[di]].Bbox gts.[gi].Bbox gts.[gi].IsCrowd

    let dtArea = Array.init d (fun di -> let b = dts.[order.[di]].Bbox in b.W * b.H)
    let outcome = Array.zeroCreate<sbyte> (nA * nT * d)
    let numPositives = Array.zeroCreate<int> nA
    let gtOrder = Array.zeroCreate<int> g
    let gtIg = Array.zeroCreate<bool> g
    let crowd = Array.zeroCreate<bool> g
    let gtMatched = Array.zeroCreate<bool> g

    for a in 0 .. nA - 1 do
        let _, lo, hi = areaRanges.[a]
        // ground truths with ignored ones last, each group in stored order (numpy's stable argsort of _ignore)
        let mutable pos = 0

        for ignoredPass in [| false; true |] do
            for gi in 0 .. g - 1 do
                let gt = gts.[gi]
                let ignored = gt.IsCrowd || gt.Area < lo || gt.Area > hi

                if ignored = ignoredPass then
                    gtOrder.[pos] <- gi
                    gtIg.[pos] <- ignored
                    crowd.[pos] <- gt.IsCrowd
                    pos <- pos + 1

            if not ignoredPass then
                numPositives.[a] <- pos

        for t in 0 .. nT - 1 do
            Array.Clear gtMatched
            let thr = min iouThresholds.[t] (1.0 - 1e-10)

            for di in 0 .. d - 1 do
                let mutable best = thr
                let mutable m = -1
                let mutable gi = 0

                while gi < g do
                    // a matched non-crowd ground truth is taken; once a regular match exists, ignored ones end the scan
                    if gtMatched.[gi] && not crowd.[gi] then
                        gi <- gi + 1
                    elif m > -1 && not gtIg.[m] && gtIg.[gi] then
                        gi <- g
                    else
                        let iou = ious.[di * g + gtOrder.[gi]]

                        if iou >= best then
                            best <- iou
                            m <- gi

                        gi <- gi + 1
                // pycocotools stores the matched ground truth's id and reads id 0 as "unmatched"
                let matched = m > -1 && gts.[gtOrder.[m]].Id <> 0L

                if m > -1 then
                    gtMatched.[m] <- true

                let ignored =
                    (m > -1 && gtIg.[m]) || (not matched && (dtArea.[di] < lo || dtArea.[di] > hi))

                outcome.[(a * nT + t) * d + di] <-
                    if ignored then 0y
                    elif matched then 1y
                    else -1y

    {
        Scores = order |> Array.map (fun i -> dts.[i].Score)
        Outcome = outcome
        NumPositives = numPositives
    }

/// accumulate() for one category: fills precision [T, R, K, A, M] and recall [T, K, A, M] at category k.
let private accumulateCategory (pairs: PairEval[]) (k: int) (nK: int) (precision: float[]) (recall: float[]) =
    let nT, nR, nA, nM =
        iouThresholds.Length, recallThresholds.Length, areaRanges.Length, maxDetections.Length

    if pairs.Length > 0 then
        for m in 0 .. nM - 1 do
            let maxDet = maxDetections.[m]
            // concatenation over images (ascending id) of each image's first maxDet detections
            let n = pairs |> Array.sumBy (fun p -> min maxDet p.Scores.Length)
            let scores = Array.zeroCreate<float> n
            let pairOf = Array.zeroCreate<int> n
            let detOf = Array.zeroCreate<int> n
            let mutable c = 0

            for p in 0 .. pairs.Length - 1 do
                for di in 0 .. min maxDet pairs.[p].Scores.Length - 1 do
                    scores.[c] <- pairs.[p].Scores.[di]
                    pairOf.[c] <- p
                    detOf.[c] <- di
                    c <- c + 1

            let order = stableDescending (fun i -> scores.[i]) n
            let nd = n
            let rc = Array.zeroCreate<float> nd
            let pr = Array.zeroCreate<float> nd
            let q = Array.zeroCreate<float> nR

            for a in 0 .. nA - 1 do
                let npig = pairs |> Array.sumBy (fun p -> p.NumPositives.[a])

                if npig > 0 then
                    for t in 0 .. nT - 1 do
                        let mutable tp = 0
                        let mutable fp = 0

                        for i in 0 .. nd - 1 do
                            let s = order.[i]
                            let pe = pairs.[pairOf.[s]]
                            let o = pe.Outcome.[(a * nT + t) * pe.Scores.Length + detOf.[s]]

                            if o = 1y then
                                tp <- tp + 1
                            elif o = -1y then
                                fp <- fp + 1

                            rc.[i] <- float tp / float npig
                            pr.[i] <- float tp / (float fp + float tp + spacing1)

                        recall.[((t * nK + k) * nA + a) * nM + m] <- if nd > 0 then rc.[nd - 1] else 0.0
                        // precision envelope, made monotone from the right
                        let mutable i = nd - 1

                        while i > 0 do
                            if pr.[i] > pr.[i - 1] then
                                pr.[i - 1] <- pr.[i]

                            i <- i - 1
                        // searchsorted(rc, recThrs, side='left'); thresholds beyond the last recall keep q = 0
                        Array.Clear q
                        let mutable i = 0
                        let mutable r = 0

                        while r < nR do
                            while i < nd && rc.[i] < recallThresholds.[r] do
                                i <- i + 1

                            if i >= nd then
                                r <- nR
                            else
                                q.[r] <- pr.[i]
                                r <- r + 1

                        for r in 0 .. nR - 1 do
                            precision.[(((t * nR + r) * nK + k) * nA + a) * nM + m] <- q.[r]

/// Python's '{:0.3f}'.format(x): the exact binary value rounded half to even (.NET rounds the digit string half up).
let private format3 (x: float) : string =
    let s = Math.Abs(x).ToString("F25", CultureInfo.InvariantCulture)
    let dot = s.IndexOf '.'
    let head = s.Substring(0, dot + 4)
    let tail = s.Substring(dot + 4)

    let up =
        match tail.[0] with
        | c when c > '5' -> true
        | '5' ->
            tail.Substring(1).TrimEnd('0') <> ""
            || (int head.[head.Length - 1] - int '0') % 2 = 1
        | _ -> false

    let v =
        Decimal.Parse(head, CultureInfo.InvariantCulture) + (if up then 0.001m else 0m)

    let body = v.ToString("F3", CultureInfo.InvariantCulture)
    if x < 0.0 && body <> "0.000" then "-" + body else body

/// One line of pycocotools' summarize table.
let private summaryLine (ap: bool) (iouStr: string) (area: string) (maxDets: int) (value: float) =
    let title = if ap then "Average Precision" else "Average Recall"
    let kind = if ap then "(AP)" else "(AR)"
    sprintf " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %s" title kind iouStr area maxDets (format3 value)

/// pycocotools COCOeval(gt, dt, 'bbox') evaluate → accumulate → summarize. Images and categories are those of the
/// ground truth (sorted by id); detections of other categories are left out, as pycocotools does. An empty
/// detection list is allowed (the trainer's empty COCO()): every defined stat is then 0.
/// Raises ArgumentException for a detection on an image that is not in the ground truth (pycocotools' loadRes
/// assertion).
let evaluate (gt: CocoDataset) (detections: CocoDetection[]) : CocoResult =
    let imgIds = gt.Images |> Array.map (fun i -> i.Id) |> Array.distinct |> Array.sort

    let catIds =
        gt.Categories |> Array.map (fun c -> c.Id) |> Array.distinct |> Array.sort

    let nI, nK = imgIds.Length, catIds.Length
    let imgIndex = Dictionary<int64, int>()
    imgIds |> Array.iteri (fun i id -> imgIndex.[id] <- i)
    let catIndex = Dictionary<int64, int>()
    catIds |> Array.iteri (fun k id -> catIndex.[id] <- k)
    // per (category, image) key = k·I + i, lists in stored order (pycocotools' getAnnIds/loadAnns order)
    let gtsBy = Dictionary<int64, ResizeArray<CocoAnnotation>>()
    let dtsBy = Dictionary<int64, ResizeArray<int>>()

    let add (d: Dictionary<int64, ResizeArray<'T>>) key (v: 'T) =
        match d.TryGetValue key with
        | true, l -> l.Add v
        | _ -> d.[key] <- ResizeArray [ v ]

    for a in gt.Annotations do
        match imgIndex.TryGetValue a.ImageId, catIndex.TryGetValue a.CategoryId with
        | (true, i), (true, k) -> add gtsBy (int64 k * int64 nI + int64 i) a
        | _ -> ()

    detections
    |> Array.iteri (fun n det ->
        match imgIndex.TryGetValue det.ImageId with
        | false, _ -> invalidArg (nameof detections) (sprintf "detection %d: image_id %d is not an image of the ground truth" n det.ImageId)
        | true, i ->
            match catIndex.TryGetValue det.CategoryId with
            | true, k -> add dtsBy (int64 k * int64 nI + int64 i) n
            | _ -> ())

    let keys =
        Seq.append gtsBy.Keys dtsBy.Keys |> Seq.distinct |> Seq.toArray |> Array.sort

    let evals = Array.zeroCreate<PairEval> keys.Length

    Parallel.For(
        0,
        keys.Length,
        fun p ->
            let key = keys.[p]

            let gts =
                match gtsBy.TryGetValue key with
                | true, l -> l.ToArray()
                | _ -> [||]

            let dtIdx =
                match dtsBy.TryGetValue key with
                | true, l -> l.ToArray()
                | _ -> [||]

            evals.[p] <- evaluatePair gts (dtIdx |> Array.map (fun n -> detections.[n]))
    )
    |> ignore
    // keys ascend category-major, image-minor: each category's pairs are a contiguous run in image order
    let byCategory = Array.init nK (fun _ -> ResizeArray<PairEval>())

    keys
    |> Array.iteri (fun p key -> byCategory.[int (key / int64 nI)].Add evals.[p])

    let nT, nR, nA, nM =
        iouThresholds.Length, recallThresholds.Length, areaRanges.Length, maxDetections.Length

    let precision = Array.create (nT * nR * nK * nA * nM) -1.0
    let recall = Array.create (nT * nK * nA * nM) -1.0

    Parallel.For(0, nK, fun k -> accumulateCategory (byCategory.[k].ToArray()) k nK precision recall)
    |> ignore
    // summarize
    let area name =
        areaRanges |> Array.findIndex (fun (l, _, _) -> l = name)

    let mIndex md = Array.IndexOf(maxDetections, md)

    let tIndices (iouThr: float option) =
        match iouThr with
        | None -> [| 0 .. nT - 1 |]
        | Some v ->
            [|
                for t in 0 .. nT - 1 do
                    if iouThresholds.[t] = v then
                        t
            |]

    let summarize (ap: bool) (iouThr: float option) (areaName: string) (maxDets: int) =
        let a, m, ts = area areaName, mIndex maxDets, tIndices iouThr

        let values =
            if ap then
                seq {
                    for t in ts do
                        for r in 0 .. nR - 1 do
                            for k in 0 .. nK - 1 -> precision.[(((t * nR + r) * nK + k) * nA + a) * nM + m]
                }
            else
                seq {
                    for t in ts do
                        for k in 0 .. nK - 1 -> recall.[((t * nK + k) * nA + a) * nM + m]
                }

        let value = meanDefined values

        let iouStr =
            match iouThr with
            | None -> String.Format(CultureInfo.InvariantCulture, "{0:0.00}:{1:0.00}", iouThresholds.[0], iouThresholds.[nT - 1])
            | Some v -> v.ToString("0.00", CultureInfo.InvariantCulture)

        value, summaryLine ap iouStr areaName maxDets value

    let md = maxDetections

    let rows =
        [|
            summarize true None "all" md.[2]
            summarize true (Some 0.5) "all" md.[2]
            summarize true (Some 0.75) "all" md.[2]
            summarize true None "small" md.[2]
            summarize true None "medium" md.[2]
            summarize true None "large" md.[2]
            summarize false None "all" md.[0]
            summarize false None "all" md.[1]
            summarize false None "all" md.[2]
            summarize false None "small" md.[2]
            summarize false None "medium" md.[2]
            summarize false None "large" md.[2]
        |]

    let names = Dictionary<int64, string>()

    for c in gt.Categories do
        if not (names.ContainsKey c.Id) then
            names.[c.Id] <- c.Name

    let aAll, m100 = area "all", mIndex md.[2]

    let perCategory =
        catIds
        |> Array.mapi (fun k id ->
            let ap ts =
                meanDefined (
                    seq {
                        for t in ts do
                            for r in 0 .. nR - 1 -> precision.[(((t * nR + r) * nK + k) * nA + aAll) * nM + m100]
                    }
                )

            {
                CategoryId = id
                Name = names.[id]
                Ap = ap (tIndices None)
                Ap50 = ap (tIndices (Some 0.5))
            })

    {
        Stats = rows |> Array.map fst
        Summary = rows |> Array.map (fun (_, line) -> line + "\n") |> String.concat ""
        PerCategory = perCategory
        Precision = precision
        Recall = recall
    }
