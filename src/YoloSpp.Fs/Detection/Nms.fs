/// Non-maximum suppression of the reference (build_utils/utils.py non_max_suppression) over the eval-mode Darknet
/// output. Pure: the prediction is never mutated. The thresholds and the NMS kernel run in float32, as the reference
/// does on a float32 prediction.
module YoloSpp.Detection.Nms

open System
open TorchSharp
open YoloSpp

type Tensor = torch.Tensor

// TensorIndex is not opened: its `None` would shadow Option's.
type private TI = torch.TensorIndex

/// Settings of `nonMaxSuppression`; `NmsOptions.Default` holds the reference's defaults.
type NmsOptions =
    {
        /// keep rows with obj > ConfThres and classes with cls·obj > ConfThres (compared in float32)
        ConfThres: float
        /// suppress a box when its IoU with a kept box of the same class is > IouThres
        IouThres: float
        /// every (row, class) pair above ConfThres instead of the best class per row (only when nc > 1)
        MultiLabel: bool
        /// survivors kept per image, over all classes (the reference's max_num)
        MaxDet: int
        /// boxes need MinWh < w < MaxWh and MinWh < h < MaxWh (pixels, strict)
        MinWh: float
        /// upper box-size limit, and the per-class coordinate offset that makes one NMS class-aware
        MaxWh: float
        /// keep only these class indices (None: all)
        Classes: int[] option
        /// one NMS over all classes instead of per class
        Agnostic: bool
        /// merge-NMS (the reference's `merge`, off there): each kept box becomes the score-weighted mean of the
        /// candidates of its class whose IoU with it exceeds IouThres (when 1 < candidates < 3000)
        Merge: bool
    }

    /// The reference's defaults: conf 0.1, IoU 0.6, multi-label, 100 per image, 2 < wh < 4096.
    static member Default =
        {
            ConfThres = 0.1
            IouThres = 0.6
            MultiLabel = true
            MaxDet = 100
            MinWh = 2.0
            MaxWh = 4096.0
            Classes = None
            Agnostic = false
            Merge = false
        }

/// A float32 as a uint32 with the same order (−0 as +0; not for NaN).
let inline private sortable (x: float32) =
    let bits = BitConverter.SingleToInt32Bits(if x = 0.0f then 0.0f else x)

    if bits >= 0 then
        uint32 bits ||| 0x80000000u
    else
        ~~~(uint32 bits)

/// Areas of boxes (x1, y1, x2, y2) flattened, in float32.
let private areasOf (boxes: float32[]) =
    Array.init (boxes.Length / 4) (fun i -> (boxes.[4 * i + 2] - boxes.[4 * i]) * (boxes.[4 * i + 3] - boxes.[4 * i + 1]))

/// IoU of boxes i and j in float32, as torchvision's nms and the reference's box_iou compute it.
let inline private iouAt (boxes: float32[]) (areas: float32[]) (i: int) (j: int) =
    let w =
        max 0.0f (min boxes.[4 * i + 2] boxes.[4 * j + 2] - max boxes.[4 * i] boxes.[4 * j])

    let h =
        max
            0.0f
            (min boxes.[4 * i + 3] boxes.[4 * j + 3]
             - max boxes.[4 * i + 1] boxes.[4 * j + 1])

    let inter = w * h
    inter / (areas.[i] + areas.[j] - inter)

/// torchvision's CPU nms kernel (csrc/ops/cpu/nms_kernel.cpp) over xyxy boxes [n·4] and scores [n], float32:
/// visit boxes by descending score (stable: equal scores keep index order), keep a box unless an already kept box
/// overlaps it with IoU > iouThres. IoU has no "+1" pixel convention; the float32 IoU is compared to the double
/// threshold, as the C++ does. Returns the kept indices in visiting order.
/// A kept box can only suppress boxes that intersect it (IoU 0 or NaN is never > a threshold ≥ 0), so for
/// iouThres ≥ 0 the later boxes are looked up in an x-sorted window instead of scanned one by one; the result is
/// the kernel's, at a cost that grows with the overlaps rather than with n² (class offsets keep classes apart).
/// (TorchSharp 0.107's torchvision.ops.nms is a managed loop of tensor ops that takes ~30 s on 10,000 boxes.)
let internal nmsKernel (boxes: float32[]) (scores: float32[]) (iouThres: float) : int[] =
    let n = scores.Length

    if boxes.Length <> 4 * n then
        invalidArg (nameof boxes) "boxes must hold 4 numbers per score"

    let order =
        if Array.exists Single.IsNaN scores then
            let order = Array.init n id
            Array.sortInPlaceWith (fun a b -> let c = compare scores.[b] scores.[a] in if c <> 0 then c else compare a b) order
            order
        else
            // one primitive sort of 64-bit keys: descending score in the high half, the index in the low half
            // (equal scores keep index order: the stable sort's result)
            let keys =
                Array.init n (fun i -> (uint64 (~~~(sortable scores.[i])) <<< 32) ||| uint64 (uint32 i))

            Array.Sort keys
            keys |> Array.map (fun k -> int (k &&& 0xFFFFFFFFUL))

    let areas = areasOf boxes

    let suppressed = Array.zeroCreate<bool> n
    let keep = ResizeArray<int>()

    let inline visit (i: int) (j: int) =
        let ovr = iouAt boxes areas i j

        if float ovr > iouThres then
            suppressed.[j] <- true

    if iouThres >= 0.0 && not (Array.exists Single.IsNaN boxes) then
        // boxes by x1 (ascending), again as one primitive sort of (x1, index) keys
        let byX =
            let keys =
                Array.init n (fun i -> (uint64 (sortable boxes.[4 * i]) <<< 32) ||| uint64 (uint32 i))

            Array.Sort keys
            keys |> Array.map (fun k -> int (k &&& 0xFFFFFFFFUL))

        let xs = byX |> Array.map (fun i -> float boxes.[4 * i])
        let posOf = Array.zeroCreate<int> n
        byX |> Array.iteri (fun p i -> posOf.[i] <- p)
        let mutable widest = 0.0

        for i in 0 .. n - 1 do
            widest <- max widest (float boxes.[4 * i + 2] - float boxes.[4 * i])
        // Boxes already visited in score order (kept or suppressed) can no longer be suppressed by anyone: they
        // leave the x-sorted list. next.[p] leads to the first position ≥ p still in it (union-find with path
        // compression; position n is the end), so a scan touches only boxes that are still undecided.
        let next = Array.init (n + 1) id

        let find (p: int) =
            let mutable r = p

            while next.[r] <> r do
                r <- next.[r]

            let mutable q = p

            while next.[q] <> r do
                let t = next.[q]
                next.[q] <- r
                q <- t

            r

        let remove (p: int) = next.[p] <- p + 1

        for oi in 0 .. n - 1 do
            let i = order.[oi]

            if not suppressed.[i] then
                keep.Add i
                remove posOf.[i]
                let x1, x2 = float boxes.[4 * i], float boxes.[4 * i + 2]
                // a box intersecting i has x1 < i's x2 and x2 > i's x1, hence x1 > i's x1 − widest (with slack)
                let lo = x1 - widest - 1e-6 * (abs x1 + widest) - 1e-6

                let start =
                    let mutable a, b = 0, n

                    while a < b do
                        let mid = (a + b) / 2
                        if xs.[mid] < lo then a <- mid + 1 else b <- mid

                    a

                let mutable p = find start

                while p < n && xs.[p] < x2 do
                    let j = byX.[p]
                    visit i j

                    if suppressed.[j] then
                        remove p

                    p <- find (p + 1)
    else
        for oi in 0 .. n - 1 do
            let i = order.[oi]

            if not suppressed.[i] then
                keep.Add i

                for oj in oi + 1 .. n - 1 do
                    let j = order.[oj]

                    if not suppressed.[j] then
                        visit i j

    keep.ToArray()

/// The candidate rows of one image after the class step: xyxy box, conf, class index.
[<Struct>]
type private Candidate =
    {
        X1: float32
        Y1: float32
        X2: float32
        Y2: float32
        Conf: float32
        Cls: int
    }

/// Steps 4–5 of the reference on rows [m, 5 + nc] (float32, row-major). With `filter`, steps 1–2 are applied
/// here first (obj > conf_thres, min_wh < w, h < max_wh, float32 compares); without, the rows have passed them.
let private candidates (options: NmsOptions, nc: int, rows: ReadOnlySpan<float32>, m: int, filter: bool) : Candidate[] =
    let width = 5 + nc
    let conf = float32 options.ConfThres
    let minWh, maxWh = float32 options.MinWh, float32 options.MaxWh
    let multiLabel = options.MultiLabel && nc > 1
    let out = ResizeArray<Candidate>(if multiLabel then 16 else m)

    for r in 0 .. m - 1 do
        let o = r * width

        let cx, cy, w, h, obj =
            rows.[o], rows.[o + 1], rows.[o + 2], rows.[o + 3], rows.[o + 4]

        if not filter || (obj > conf && w > minWh && w < maxWh && h > minWh && h < maxWh) then
            // xywh2xyxy in float32, as the reference's tensor ops
            let x1, y1, x2, y2 = cx - w / 2.0f, cy - h / 2.0f, cx + w / 2.0f, cy + h / 2.0f

            if multiLabel then
                for k in 0 .. nc - 1 do
                    let c = rows.[o + 5 + k] * obj

                    if c > conf then
                        out.Add
                            {
                                X1 = x1
                                Y1 = y1
                                X2 = x2
                                Y2 = y2
                                Conf = c
                                Cls = k
                            }
            else
                // max(1): the first index wins ties
                let mutable best = rows.[o + 5] * obj
                let mutable bestK = 0

                for k in 1 .. nc - 1 do
                    let c = rows.[o + 5 + k] * obj

                    if c > best then
                        best <- c
                        bestK <- k

                if best > conf then
                    out.Add
                        {
                            X1 = x1
                            Y1 = y1
                            X2 = x2
                            Y2 = y2
                            Conf = best
                            Cls = bestK
                        }

    match options.Classes with
    | None -> out.ToArray()
    | Some keepClasses -> out.ToArray() |> Array.filter (fun c -> Array.contains c.Cls keepClasses)

/// The reference's merge step: iou = box_iou(boxes[i], boxes) > iou_thres over the class-offset boxes, weights =
/// iou · scores, x[i, :4] = weights @ x[:, :4] / weights.sum(1) (float32, as its tensors), written into `data`.
let private mergeBoxes (iouThres: float) (boxes: float32[]) (cands: Candidate[]) (kept: int[]) (data: float32[]) =
    let thres = float32 iouThres

    let areas = areasOf boxes

    kept
    |> Array.iteri (fun r i ->
        let mutable sx1, sy1, sx2, sy2, sw = 0.0, 0.0, 0.0, 0.0, 0.0

        for j in 0 .. cands.Length - 1 do
            if iouAt boxes areas i j > thres then
                let c = cands.[j]
                let s = float c.Conf
                sx1 <- sx1 + s * float c.X1
                sy1 <- sy1 + s * float c.Y1
                sx2 <- sx2 + s * float c.X2
                sy2 <- sy2 + s * float c.Y2
                sw <- sw + s

        data.[6 * r] <- float32 (sx1 / sw)
        data.[6 * r + 1] <- float32 (sy1 / sw)
        data.[6 * r + 2] <- float32 (sx2 / sw)
        data.[6 * r + 3] <- float32 (sy2 / sw))

/// One image of the batch: its rows [N, 5 + nc] -> None or [n, 6] (x1, y1, x2, y2, conf, cls) in descending conf.
let private suppressImage (options: NmsOptions) (nc: int) (prediction: Tensor) (image: int) : Tensor option =
    use _ = torch.NewDisposeScope()
    let x = prediction.index(TI.Single(int64 image)).to_type (torch.float32)
    // steps 1–2: obj > conf_thres (float32 compare), min_wh < w, h < max_wh (strict); on the CPU inside the
    // candidates pass (one pass in managed code beats five tensor ops and a masked copy), elsewhere on the device
    let cands =
        if x.device_type = DeviceType.CPU then
            // read the rows where they are: no copy of the prediction (x stays alive in this scope)
            let c = x.contiguous ()

            let all =
                Runtime.InteropServices.MemoryMarshal.Cast<byte, float32>(Span<byte>.op_Implicit c.bytes)

            candidates (options, nc, all, all.Length / (5 + nc), true)
        else
            let wh = x.index (TI.Colon, TI.Slice(2L, 4L))

            let keep =
                x.index(TI.Colon, TI.Single 4L).gt(sc options.ConfThres).logical_and (wh.gt(sc options.MinWh).logical_and(wh.lt (sc options.MaxWh)).all (1L))

            let rows = x.index(TI.Tensor keep).cpu().contiguous ()
            candidates (options, nc, ReadOnlySpan<float32>(toFloat32Array rows), int rows.shape.[0], false)

    if cands.Length = 0 then
        None
    else
        let offset = float32 options.MaxWh
        let boxes = Array.zeroCreate<float32> (4 * cands.Length)

        for k in 0 .. cands.Length - 1 do
            let c = cands.[k]
            // class offset in float32: boxes + cls * max_wh
            let o = if options.Agnostic then 0.0f else float32 c.Cls * offset
            boxes.[4 * k] <- c.X1 + o
            boxes.[4 * k + 1] <- c.Y1 + o
            boxes.[4 * k + 2] <- c.X2 + o
            boxes.[4 * k + 3] <- c.Y2 + o

        let kept = nmsKernel boxes (cands |> Array.map (fun c -> c.Conf)) options.IouThres
        let kept = Array.truncate options.MaxDet kept
        let data = Array.zeroCreate<float32> (6 * kept.Length)

        kept
        |> Array.iteri (fun r i ->
            let c = cands.[i]
            data.[6 * r] <- c.X1
            data.[6 * r + 1] <- c.Y1
            data.[6 * r + 2] <- c.X2
            data.[6 * r + 3] <- c.Y2
            data.[6 * r + 4] <- c.Conf
            data.[6 * r + 5] <- float32 c.Cls)

        if options.Merge && cands.Length > 1 && cands.Length < 3000 then
            mergeBoxes options.IouThres boxes cands kept data

        let out = torch.tensor(data).view(int64 kept.Length, 6L).``to`` (x.device)
        Some(out.MoveToOuterDisposeScope())

/// non_max_suppression of the reference: prediction [bs, N, 5 + nc] (eval-mode layout: cx, cy, w, h in pixels,
/// obj and class probabilities already sigmoid-ed) -> per image None (nothing kept) or a float32 tensor [n, 6] of
/// rows (x1, y1, x2, y2, conf, cls) in descending conf, on the prediction's device. Class-aware through the
/// reference's coordinate offset cls·MaxWh; at most MaxDet rows per image; `Merge` is the reference's merge-NMS. The
/// reference's 10-second time limit is not reproduced. `Classes` filters on the chosen class of each row.
let nonMaxSuppression (options: NmsOptions) (prediction: Tensor) : Tensor option[] =
    if prediction.dim () <> 3L || prediction.shape.[2] < 6L then
        invalidArg (nameof prediction) (sprintf "expected [bs, N, 5 + nc] with nc >= 1, got %A" prediction.shape)

    let nc = int prediction.shape.[2] - 5
    Array.init (int prediction.shape.[0]) (suppressImage options nc prediction)
