/// The reference's kmean_anchors (build_utils/utils.py): anchors for a cfg from a dataset's label boxes by k-means
/// on whitened (w, h), refined by a genetic search on the reference's fitness, with its printed report.
module YoloSpp.Data.Anchors

open System
open System.Globalization
open YoloSpp.Data.Labels

/// Label boxes (w, h) of the images, normalised to a letterbox whose long side is 1: `l[:, 3:5] * (s / s.max())`
/// with s = (w0, h0), the labels as the reference holds them (float32).
let labelWh (images: (int * int * LabelRow[]) seq) : (float * float)[] =
    [|
        for w0, h0, rows in images do
            let m = float (max w0 h0)
            let sw, sh = float w0 / m, float h0 / m

            for r in rows do
                yield float (float32 r.W) * sw, float (float32 r.H) * sh
    |]

/// The boxes in pixels at an image size drawn in [lo, hi] per box (repeated 10× when lo ≠ hi, as the reference's
/// multi-scale augmentation), keeping those over 2 px on both sides.
let pixelWh (rnd: Random) (lo: float, hi: float) (wh: (float * float)[]) : (float * float)[] =
    let reps = if lo = hi then 1 else 10

    [|
        for w, h in wh do
            for _ in 1..reps do
                let s = lo + (hi - lo) * rnd.NextDouble()
                yield w * s, h * s
    |]
    |> Array.filter (fun (w, h) -> w > 2.0 && h > 2.0)

/// wh_iou in float32: IoU of boxes and anchors sharing a corner, [boxes][anchors].
let internal whIou (wh: (float * float)[]) (k: (float * float)[]) : float32[][] =
    let k32 = k |> Array.map (fun (a, b) -> float32 a, float32 b)

    wh
    |> Array.map (fun (w, h) ->
        let w, h = float32 w, float32 h

        k32
        |> Array.map (fun (kw, kh) ->
            let inter = min w kw * min h kh
            inter / (w * h + kw * kh - inter)))

let private meanF (xs: float32 seq) =
    let a = Seq.toArray xs

    if a.Length = 0 then
        nan
    else
        Array.sumBy float a / float a.Length

/// yolov5's anchor check (utils/autoanchor.py, check_anchors' metric) for label sizes `wh` and anchors `k` in pixels:
/// a box fits an anchor when min(w/kw, kw/w, h/kh, kh/h) > 1/`thr` (thr 4.0: neither side off by more than 4×).
/// Returns the best possible recall (the share of boxes some anchor fits) and the anchors above threshold (fitting
/// anchors per box, averaged). Computed in float32, as the reference's tensors are.
let ratioMetric (thr: float) (wh: (float * float)[]) (k: (float * float)[]) : float * float =
    let t = 1.0f / float32 thr

    let fits =
        wh
        |> Array.map (fun (w, h) ->
            let w, h = float32 w, float32 h

            k
            |> Array.sumBy (fun (kw, kh) ->
                let rw, rh = w / float32 kw, h / float32 kh
                let x = min (min rw (1.0f / rw)) (min rh (1.0f / rh))
                if x > t then 1 else 0))

    if wh.Length = 0 then
        0.0, 0.0
    else
        let n = float wh.Length
        (fits |> Array.sumBy (fun c -> if c > 0 then 1.0 else 0.0)) / n, float (Array.sum fits) / n

/// The reference's fitness: mean over boxes of the best IoU, counted only above `thr`.
let fitness (thr: float) (wh: (float * float)[]) (k: (float * float)[]) : float =
    let t = float32 thr

    whIou wh k
    |> Array.map (Array.max >> fun m -> if m > t then m else 0.0f)
    |> meanF

/// Anchors sorted small to large by area, as the reference prints and returns them.
let internal sortByArea (k: (float * float)[]) = k |> Array.sortBy (fun (w, h) -> w * h)

/// The two lines print_results writes: best possible recall and anchors above thr; the IoU means and the anchors
/// as "w,h" (Python's round, half to even), ready for a cfg.
let report (n: int) (imgSize: int * int) (thr: float) (wh: (float * float)[]) (k: (float * float)[]) : string list =
    let k = sortByArea k
    let t = float32 thr
    let iou = whIou wh k
    let best = iou |> Array.map Array.max
    let all = Array.concat iou

    let f3 (x: float) =
        (YoloSpp.PyFloat.round 3 x).ToString("F3", CultureInfo.InvariantCulture)

    let f2 (x: float) =
        (YoloSpp.PyFloat.round 2 x).ToString("F2", CultureInfo.InvariantCulture)

    let bpr = best |> Array.map (fun m -> if m > t then 1.0f else 0.0f) |> meanF

    let aat =
        (all |> Array.map (fun v -> if v > t then 1.0f else 0.0f) |> meanF) * float n

    let r (x: float) =
        int (Math.Round(x, MidpointRounding.ToEven))

    let lo, hi = imgSize

    [
        sprintf "%s iou_thr: %s best possible recall, %s anchors > thr" (f2 thr) (f3 bpr) (f2 aat)
        sprintf
            "n=%d, img_size=(%d, %d), IoU_all=%s/%s-mean/best, IoU>thr=%s-mean: %s"
            n
            lo
            hi
            (f3 (meanF all))
            (f3 (meanF best))
            (f3 (all |> Seq.filter (fun v -> v > t) |> meanF))
            (String.Join(",  ", k |> Array.map (fun (w, h) -> sprintf "%d,%d" (r w) (r h))))
    ]

/// scipy.cluster.vq.kmeans(obs, n, iter): `iter` runs from n distinct random observations, each Lloyd's
/// iterations until the mean distance changes by at most 1e-5 (codes left without points are dropped); the
/// codebook of the lowest mean distance wins.
let kmeans (rnd: Random) (obs: (float * float)[]) (n: int) (iter: int) : (float * float)[] =
    if obs.Length < n then
        invalidArg (nameof obs) (sprintf "%d boxes cannot make %d anchors" obs.Length n)

    let nearest (code: (float * float)[]) (x, y) =
        code
        |> Array.mapi (fun i (cx, cy) -> i, sqrt ((x - cx) * (x - cx) + (y - cy) * (y - cy)))
        |> Array.minBy snd

    let run (start: (float * float)[]) =
        let mutable code = start
        let mutable prev = infinity
        let mutable diff = infinity
        let mutable dist = infinity

        while diff > 1e-5 do
            let assigned = obs |> Array.map (nearest code)
            dist <- assigned |> Array.averageBy snd

            code <-
                [|
                    for i in 0 .. code.Length - 1 do
                        let members =
                            Array.zip obs assigned
                            |> Array.filter (fun (_, (j, _)) -> j = i)
                            |> Array.map fst

                        if members.Length > 0 then
                            yield Array.averageBy fst members, Array.averageBy snd members
                |]

            diff <- prev - dist
            prev <- dist

        code, dist

    [ 1..iter ]
    |> List.map (fun _ ->
        let idx = Array.init obs.Length id
        // a random sample of n distinct observations
        for i in 0 .. n - 1 do
            let j = i + rnd.Next(obs.Length - i)
            let t = idx[i]
            idx[i] <- idx[j]
            idx[j] <- t

        run (Array.init n (fun i -> obs[idx[i]])))
    |> List.minBy snd
    |> fst

let private gauss (rnd: Random) =
    let u1 = 1.0 - rnd.NextDouble()
    let u2 = rnd.NextDouble()
    sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2)

/// kmean_anchors: k-means on the boxes whitened by their standard deviation, then `gen` generations of mutation
/// (each anchor side × (1 + 0.1·U·N(0, 1)) with probability 0.9, clipped to [0.3, 3], anchors ≥ 2 px), keeping a
/// mutant when its fitness is higher. `improved` sees each better set. Returns the anchors sorted by area.
let kmeanAnchors (rnd: Random) (wh: (float * float)[]) (n: int) (thr: float) (gen: int) (improved: (float * float)[] -> unit) : (float * float)[] =
    let std (xs: float[]) =
        let m = Array.average xs
        sqrt (xs |> Array.averageBy (fun x -> (x - m) * (x - m)))

    let sw, sh = std (Array.map fst wh), std (Array.map snd wh)
    let white = wh |> Array.map (fun (w, h) -> w / sw, h / sh)

    let mutable k =
        kmeans rnd white n 30 |> Array.map (fun (w, h) -> w * sw, h * sh) |> sortByArea

    let mutable f = fitness thr wh k

    for _ in 1..gen do
        let mutable v = Array.create (2 * k.Length) 1.0

        while v |> Array.forall (fun x -> x = 1.0) do
            let scale = rnd.NextDouble()

            v <-
                Array.init (2 * k.Length) (fun _ ->
                    let hit = if rnd.NextDouble() < 0.9 then 1.0 else 0.0
                    Math.Clamp(hit * scale * gauss rnd * 0.1 + 1.0, 0.3, 3.0))

        let kg =
            k
            |> Array.mapi (fun i (w, h) -> max 2.0 (w * v[2 * i]), max 2.0 (h * v[2 * i + 1]))

        let fg = fitness thr wh kg

        if fg > f then
            f <- fg
            k <- kg
            improved k

    sortByArea k
