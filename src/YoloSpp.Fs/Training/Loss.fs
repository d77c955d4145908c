/// The YOLOv3 loss of the reference (build_utils/utils.py compute_loss, smooth_BCE, FocalLoss) as composable
/// tensor functions. Pure: nothing is mutated that the caller can see.
module YoloSpp.Training.Loss

open TorchSharp
open YoloSpp
open type TorchSharp.torch.TensorIndex

type Tensor = torch.Tensor

/// An element-wise criterion: (logits, targets) -> per-element loss.
type Criterion = Tensor -> Tensor -> Tensor

/// Label-smoothed BCE targets (positive, negative) of "Bag of Tricks" (arXiv 1902.04103); the reference calls
/// it with eps = 0.
let smoothBce (eps: float) = 1.0 - 0.5 * eps, 0.5 * eps

/// BCEWithLogitsLoss(pos_weight, reduction='none'). The pos_weight is always passed (1.0 included), as the
/// reference does, because libtorch uses a different (equally valid) formula without it.
let bceWithLogits (posWeight: float) : Criterion =
    fun logits targets ->
        use pw =
            torch.tensor ([| posWeight |], dtype = logits.dtype, device = logits.device)

        torch.nn.functional.binary_cross_entropy_with_logits (logits, targets, reduction = torch.nn.Reduction.None, pos_weights = pw)

/// The reference's FocalLoss wrapper (arXiv 1708.02002): loss * alpha_t * (1 - p_t)^gamma.
let focal (gamma: float) (alpha: float) (inner: Criterion) : Criterion =
    fun logits targets ->
        let loss = inner logits targets
        let prob = torch.sigmoid logits
        let pT = targets * prob +! (1.0 .- targets) * (1.0 .- prob)
        let alphaFactor = targets *. alpha +! (1.0 .- targets) *. (1.0 - alpha)
        let modulating = powS (1.0 .- pT) gamma
        loss * (alphaFactor * modulating)

/// Mean reduction of a criterion.
let mean (c: Criterion) : Tensor -> Tensor -> Tensor = fun l t -> (c l t).mean ()

/// The hyperparameters the loss reads (already adjusted for nc and image size, see Hyp.adjustForDataset).
type LossHyp =
    {
        /// box loss gain (hyp giou)
        Giou: float
        /// objectness loss gain (hyp obj)
        Obj: float
        /// class loss gain (hyp cls)
        Cls: float
        /// class BCE positive weight (hyp cls_pw)
        ClsPw: float
        /// objectness BCE positive weight (hyp obj_pw)
        ObjPw: float
        /// anchor-match threshold (hyp iou_t)
        IouT: float
        /// focal loss gamma, 0 = plain BCE (hyp fl_gamma)
        FlGamma: float
    }

/// What a yolo model contributes to the loss: per layer its anchors in grid units, and the class count.
type YoloSpec = { AnchorVecs: Tensor[]; Nc: int }

/// The three loss terms, each already multiplied by its gain, and their sum (what is back-propagated).
type LossParts =
    {
        Box: Tensor
        Obj: Tensor
        Cls: Tensor
        Total: Tensor
    }

/// Objectness target of one layer: zeros, and at every positive's cell (1 - gr) + gr * clamp(giou, 0).
/// Rows sharing a cell: the last row (anchor-major order) wins, as the reference's sequential index_put.
/// Duplicates are resolved explicitly so the result is deterministic on every device.
let objectnessTarget (gr: float) (pi: Tensor) (lt: Targets.LayerTargets) (giou: Tensor) : Tensor =
    let tobj = torch.zeros_like (pi.index (Ellipsis, Single 4L))

    if lt.Count > 0 then
        use _ = torch.no_grad ()
        let s = pi.shape
        let n = int64 lt.Count
        let lin = mulI (mulI (mulI lt.B s.[1] +! lt.A) s.[2] +! lt.Gj) s.[3] +! lt.Gi
        // sort by (cell, row) descending: the first row of each cell's run is its last write
        let struct (key, _) =
            (mulI lin n +! arangeN n torch.int64 pi.device).sort (descending = true)

        let cell, row = divFloorI key n, remI key n

        let first =
            torch.cat (
                [|
                    torch.ones ([| 1L |], dtype = torch.bool, device = pi.device)
                    cell.narrow(0L, 1L, n - 1L).ne (cell.narrow (0L, 0L, n - 1L))
                |],
                0L
            )

        let winners = row.index (torch.TensorIndex.Tensor first)

        let value =
            ((1.0 - gr) .+ (gr .* (giou.detach () |> clampMin 0.0))).to_type (tobj.dtype)

        let at (t: Tensor) =
            t.index (torch.TensorIndex.Tensor winners)

        tobj.index_put_ (at value, at lt.B, at lt.A, at lt.Gj, at lt.Gi) |> ignore

    tobj

/// compute_loss of the reference: p are the raw yolo outputs [bs, na, ny, nx, nc + 5] (strides 32, 16, 8),
/// targets [nt, 6] = (image, class, x, y, w, h) normalised, gr the objectness-target GIoU ratio (model.gr).
let computeLoss (hyp: LossHyp) (gr: float) (model: YoloSpec) (p: Tensor[]) (targets: Tensor) : LossParts =
    let dtype, device = p.[0].dtype, p.[0].device
    let layers = Targets.buildTargets hyp.IouT model.Nc model.AnchorVecs p targets
    let cp, cn = smoothBce 0.0

    let wrap (c: Criterion) =
        if hyp.FlGamma > 0.0 then focal hyp.FlGamma 0.25 c else c

    let bceCls = mean (wrap (bceWithLogits hyp.ClsPw))
    let bceObj = mean (wrap (bceWithLogits hyp.ObjPw))
    let mutable lbox = torch.zeros ([| 1L |], dtype = dtype, device = device)
    let mutable lobj = torch.zeros ([| 1L |], dtype = dtype, device = device)
    let mutable lcls = torch.zeros ([| 1L |], dtype = dtype, device = device)

    for i in 0 .. p.Length - 1 do
        let pi, lt = p.[i], layers.[i]

        let giou =
            if lt.Count > 0 then
                let ps =
                    pi.index (torch.TensorIndex.Tensor lt.B, torch.TensorIndex.Tensor lt.A, torch.TensorIndex.Tensor lt.Gj, torch.TensorIndex.Tensor lt.Gi)

                let pxy = ps.index(Colon, Slice(0L, 2L)).sigmoid ()
                let pwh = (ps.index(Colon, Slice(2L, 4L)).exp () |> clampMax 1e3) * lt.Anchors
                let pbox = torch.cat ([| pxy; pwh |], 1L)

                let giou =
                    YoloSpp.Geometry.Boxes.bboxIou YoloSpp.Geometry.Boxes.GIoU YoloSpp.Geometry.Boxes.Xywh pbox lt.Tbox

                lbox <- lbox +! (1.0 .- giou).mean ()

                if model.Nc > 1 then
                    let logits = ps.index (Colon, Slice(5L))

                    let t =
                        (fullLike cn logits).scatter (1L, lt.Tcls.unsqueeze (1), fullOf [| int64 lt.Count; 1L |] cp dtype device)

                    lcls <- lcls +! bceCls logits t

                giou
            else
                torch.empty ([| 0L |], dtype = dtype, device = device)

        let tobj = objectnessTarget gr pi lt giou
        lobj <- lobj +! bceObj (pi.index (Ellipsis, Single 4L)) tobj

    let lbox = (lbox *. hyp.Giou).squeeze ()
    let lobj = (lobj *. hyp.Obj).squeeze ()
    let lcls = (lcls *. hyp.Cls).squeeze ()

    {
        Box = lbox
        Obj = lobj
        Cls = lcls
        Total = lbox +! lobj +! lcls
    }
