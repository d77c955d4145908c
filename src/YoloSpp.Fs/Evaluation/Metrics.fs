/// The validation metrics of yolov5 (v7.0 `utils/metrics.py` and `val.py`), as the pictures of a run show them:
/// matching predictions to labels at ten IoU thresholds, precision, recall and F1 against the confidence and the
/// precision–recall curve per class (`ap_per_class`), and the confusion matrix with its background row and column
/// (`ConfusionMatrix`). Pure functions over arrays, in float64, numpy's arithmetic where it decides a value.
module YoloSpp.Evaluation.Metrics

open System

/// A label: class and box corners in pixels.
type Truth =
    {
        Class: int
        X1: float
        Y1: float
        X2: float
        Y2: float
    }

/// A prediction: box corners in pixels, confidence and class.
type Prediction =
    {
        X1: float
        Y1: float
        X2: float
        Y2: float
        Conf: float
        Class: int
    }

/// The ten IoU thresholds of val.py: torch.linspace(0.5, 0.95, 10) in float32.
let iouThresholds: float[] =
    CocoEval.iouThresholds |> Array.map (fun t -> float (float32 t))

/// box_iou of yolov5 (eps 1e-7): [labels, predictions].
let private boxIou (labels: Truth[]) (preds: Prediction[]) : float[,] =
    Array2D.init labels.Length preds.Length (fun i j ->
        let a, b = labels.[i], preds.[j]

        let inter =
            max 0.0 (min a.X2 b.X2 - max a.X1 b.X1)
            * max 0.0 (min a.Y2 b.Y2 - max a.Y1 b.Y1)

        inter
        / ((a.X2 - a.X1) * (a.Y2 - a.Y1) + (b.X2 - b.X1) * (b.Y2 - b.Y1) - inter + 1e-7))

/// The matches (label, prediction, IoU) above a rule, in torch.where's order (label-major), reduced as yolov5 does:
/// sorted by IoU descending (numpy's `argsort()[::-1]`), one per prediction (np.unique's first occurrence), then,
/// when `resort`, sorted by IoU again, and one per label.
let private uniqueMatches (resort: bool) (matches: (int * int * float)[]) =
    if matches.Length <= 1 then
        matches
    else
        let byIouDescending (m: (int * int * float)[]) =
            // a stable ascending sort reversed: equal IoUs come last-first, as argsort()[::-1] of a short array
            m |> Array.sortBy (fun (_, _, iou) -> iou) |> Array.rev

        let firstPer (key: int * int * float -> int) (m: (int * int * float)[]) =
            m
            |> Array.indexed
            |> Array.groupBy (snd >> key)
            |> Array.sortBy fst
            |> Array.map (fun (_, group) -> snd (Array.minBy fst group))

        let perPrediction = byIouDescending matches |> firstPer (fun (_, d, _) -> d)

        let ordered =
            if resort then
                byIouDescending perPrediction
            else
                perPrediction

        firstPer (fun (l, _, _) -> l) ordered

/// val.py's process_batch: for each prediction, whether it is a true positive at each IoU threshold (same class,
/// IoU ≥ threshold, each label matched once, highest IoU first). [predictions][thresholds].
let matchPredictions (thresholds: float[]) (labels: Truth[]) (preds: Prediction[]) : bool[][] =
    let correct = Array.init preds.Length (fun _ -> Array.zeroCreate thresholds.Length)

    if labels.Length > 0 && preds.Length > 0 then
        let iou = boxIou labels preds

        for t in 0 .. thresholds.Length - 1 do
            let matches =
                [|
                    for l in 0 .. labels.Length - 1 do
                        for d in 0 .. preds.Length - 1 do
                            if iou.[l, d] >= thresholds.[t] && labels.[l].Class = preds.[d].Class then
                                l, d, iou.[l, d]
                |]

            for _, d, _ in uniqueMatches false matches do
                correct.[d].[t] <- true

    correct

/// np.interp(x, xp, fp, left, right) for increasing `xp` (ties allowed: the last of equal xp wins), as numpy's C
/// loop computes it.
let internal interp (x: float[]) (xp: float[]) (fp: float[]) (left: float) (right: float) : float[] =
    let n = xp.Length

    // numpy's binary_search_with_guess: the j with xp[j] <= v < xp[j + 1]; -1 below, n above
    let search (v: float) =
        if v < xp.[0] then
            -1
        elif v > xp.[n - 1] then
            n
        else
            let mutable lo, hi = 0, n

            while lo < hi do
                let mid = (lo + hi) / 2

                if xp.[mid] <= v then lo <- mid + 1 else hi <- mid

            lo - 1

    x
    |> Array.map (fun v ->
        if Double.IsNaN v then
            v
        else
            match search v with
            | -1 -> left
            | j when j = n -> right
            | j when j = n - 1 -> fp.[j]
            | j when xp.[j] = v -> fp.[j]
            | j ->
                let slope = (fp.[j + 1] - fp.[j]) / (xp.[j + 1] - xp.[j])
                let r = slope * (v - xp.[j]) + fp.[j]

                if Double.IsNaN r then
                    let r2 = slope * (v - xp.[j + 1]) + fp.[j + 1]

                    if Double.IsNaN r2 && fp.[j] = fp.[j + 1] then
                        fp.[j]
                    else
                        r2
                else
                    r)

/// compute_ap of yolov5: the precision envelope of (recall, precision) with sentinels, integrated with the trapezoid
/// rule over 101 recall points (COCO's interpolation). Returns (AP, envelope precision, recall with sentinels).
let computeAp (recall: float[]) (precision: float[]) : float * float[] * float[] =
    let mrec = Array.concat [ [| 0.0 |]; recall; [| 1.0 |] ]
    let mpre = Array.concat [ [| 1.0 |]; precision; [| 0.0 |] ]

    for i in mpre.Length - 2 .. -1 .. 0 do
        mpre.[i] <- max mpre.[i] mpre.[i + 1]

    let x = CocoEval.linspace 0.0 1.0 101
    let y = interp x mrec mpre mpre.[0] mpre.[mpre.Length - 1]
    // np.trapz: (diff(x) * (y[1:] + y[:-1]) / 2).sum(), summed pairwise as numpy does
    let parts =
        Array.init 100 (fun i -> (x.[i + 1] - x.[i]) * (y.[i + 1] + y.[i]) / 2.0)

    CocoEval.pairwiseSum parts 0 parts.Length, mpre, mrec

/// smooth of yolov5: a box filter over a fraction `f` of the points, the ends padded with the end values.
let smooth (y: float[]) (f: float) : float[] =
    let nf = int (Math.Round(float y.Length * f * 2.0, MidpointRounding.ToEven)) / 2 + 1
    let pad = nf / 2

    let yp =
        Array.concat [ Array.create pad y.[0]; y; Array.create pad y.[y.Length - 1] ]

    let w = 1.0 / float nf

    Array.init (yp.Length - nf + 1) (fun k ->
        let mutable s = 0.0

        for j in 0 .. nf - 1 do
            s <- s + yp.[k + j] * w

        s)

/// What `apPerClass` computes: per class that has labels (`Classes`, ascending), AP at each IoU threshold, and
/// precision, recall and F1 against 1,000 confidences (`Px`, 0 to 1), the precision envelope at IoU 0.5 against
/// 1,000 recalls (`PrCurve`, on the same `Px`); the confidence of the best mean F1 (`BestIndex`, after smoothing) and
/// the values there.
type ApResult =
    {
        Classes: int[]
        /// [class][threshold]
        Ap: float[][]
        Px: float[]
        /// [class][1000]
        PCurve: float[][]
        RCurve: float[][]
        F1Curve: float[][]
        PrCurve: float[][]
        BestIndex: int
        /// per class, at BestIndex
        P: float[]
        R: float[]
        F1: float[]
        Tp: float[]
        Fp: float[]
    }

    /// The confidence of the best mean F1 (Px at BestIndex).
    member r.BestConfidence = r.Px.[r.BestIndex]

/// ap_per_class of yolov5: `tp` [predictions][thresholds] from `matchPredictions`, their confidences and classes,
/// and the classes of every label.
let apPerClass (tp: bool[][]) (conf: float[]) (predClass: int[]) (targetClass: int[]) : ApResult =
    let eps = 1e-16

    let nThr =
        if tp.Length > 0 then
            tp.[0].Length
        else
            iouThresholds.Length
    // np.argsort(-conf): a stable sort keeps tied confidences in input order (numpy's quicksort need not)
    let order = Array.init conf.Length id |> Array.sortBy (fun i -> -conf.[i])

    let tp, conf, predClass =
        order |> Array.map (fun i -> tp.[i]), order |> Array.map (fun i -> conf.[i]), order |> Array.map (fun i -> predClass.[i])

    let counts = targetClass |> Array.countBy id |> Array.sortBy fst
    let classes = counts |> Array.map fst
    let px = CocoEval.linspace 0.0 1.0 1000
    let negPx = px |> Array.map (fun v -> -v)
    let nc = classes.Length
    let ap = Array.init nc (fun _ -> Array.zeroCreate nThr)
    let p = Array.init nc (fun _ -> Array.zeroCreate 1000)
    let r = Array.init nc (fun _ -> Array.zeroCreate 1000)
    let pr = Array.init nc (fun _ -> Array.zeroCreate 1000)

    for ci in 0 .. nc - 1 do
        let c, nl = counts.[ci]

        let idx =
            [|
                for k in 0 .. predClass.Length - 1 do
                    if predClass.[k] = c then
                        k
            |]

        if idx.Length > 0 && nl > 0 then
            let negConf = idx |> Array.map (fun k -> -conf.[k])

            let curves j =
                let mutable tpc, fpc = 0.0, 0.0

                [|
                    for k in idx do
                        if tp.[k].[j] then tpc <- tpc + 1.0 else fpc <- fpc + 1.0
                        tpc / (float nl + eps), tpc / (tpc + fpc)
                |]
                |> Array.unzip

            for j in 0 .. nThr - 1 do
                let recall, precision = curves j

                if j = 0 then
                    r.[ci] <- interp negPx negConf recall 0.0 recall.[recall.Length - 1]
                    p.[ci] <- interp negPx negConf precision 1.0 precision.[precision.Length - 1]

                let a, mpre, mrec = computeAp recall precision
                ap.[ci].[j] <- a

                if j = 0 then
                    pr.[ci] <- interp px mrec mpre mpre.[0] mpre.[mpre.Length - 1]

    let f1 =
        Array.init nc (fun ci -> Array.init 1000 (fun k -> 2.0 * p.[ci].[k] * r.[ci].[k] / (p.[ci].[k] + r.[ci].[k] + eps)))

    let meanF1 =
        Array.init 1000 (fun k -> CocoEval.pairwiseSum (Array.init nc (fun ci -> f1.[ci].[k])) 0 nc / float nc)

    let best =
        if nc = 0 then
            0
        else
            let s = smooth meanF1 0.1
            // argmax: the first of equal maxima
            s
            |> Array.indexed
            |> Array.fold (fun (bi, bv) (i, v) -> if v > bv then (i, v) else (bi, bv)) (0, s.[0])
            |> fst

    let at (curve: float[][]) = curve |> Array.map (fun c -> c.[best])
    let pB, rB = at p, at r

    let tpB =
        Array.init nc (fun ci -> Math.Round(rB.[ci] * float (snd counts.[ci]), MidpointRounding.ToEven))

    let fpB =
        Array.init nc (fun ci -> Math.Round(tpB.[ci] / (pB.[ci] + eps) - tpB.[ci], MidpointRounding.ToEven))

    {
        Classes = classes
        Ap = ap
        Px = px
        PCurve = p
        RCurve = r
        F1Curve = f1
        PrCurve = pr
        BestIndex = best
        P = pB
        R = rB
        F1 = at f1
        Tp = tpB
        Fp = fpB
    }

/// The confusion matrix of yolov5 ([predicted][true], `nc + 1` square: the last row and column are background).
/// Predictions below `conf` are ignored; a label and a prediction match at IoU > `iouThreshold` (whatever their
/// classes), each once, highest IoU first. Returns the matrix with one image's counts added.
let confusionAdd (nc: int) (conf: float) (iouThreshold: float) (matrix: float[][]) (labels: Truth[]) (preds: Prediction[]) =
    let m = matrix |> Array.map Array.copy

    if preds.Length = 0 then
        // yolov5 is given no detections: every label is a missed object
        for t in labels do
            m.[nc].[t.Class] <- m.[nc].[t.Class] + 1.0
    else
        let preds = preds |> Array.filter (fun d -> d.Conf > conf)
        let iou = boxIou labels preds

        let matches =
            uniqueMatches
                true
                [|
                    for l in 0 .. labels.Length - 1 do
                        for d in 0 .. preds.Length - 1 do
                            if iou.[l, d] > iouThreshold then
                                l, d, iou.[l, d]
                |]

        for i, t in Array.indexed labels do
            match matches |> Array.filter (fun (l, _, _) -> l = i) with
            | [| (_, d, _) |] -> m.[preds.[d].Class].[t.Class] <- m.[preds.[d].Class].[t.Class] + 1.0
            | _ -> m.[nc].[t.Class] <- m.[nc].[t.Class] + 1.0

        if matches.Length > 0 then
            for i, d in Array.indexed preds do
                if not (matches |> Array.exists (fun (_, j, _) -> j = i)) then
                    m.[d.Class].[nc] <- m.[d.Class].[nc] + 1.0

    m

/// An empty confusion matrix for `nc` classes.
let confusionEmpty (nc: int) : float[][] =
    Array.init (nc + 1) (fun _ -> Array.zeroCreate (nc + 1))
