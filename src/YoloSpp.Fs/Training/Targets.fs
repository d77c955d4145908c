/// Target assignment of the reference (build_utils/utils.py build_targets): which anchor of which yolo layer,
/// in which grid cell, is responsible for each ground-truth box. Pure.
module YoloSpp.Training.Targets

open System
open TorchSharp
open YoloSpp
open type TorchSharp.torch.TensorIndex

type Tensor = torch.Tensor

/// The positives of one yolo layer, row i of every field describing the same (target, anchor) pair.
type LayerTargets =
    {
        /// class index of each positive, int64 [n]
        Tcls: Tensor
        /// (x offset in cell, y offset in cell, w, h) in grid units [n, 4]
        Tbox: Tensor
        /// image index in the batch, int64 [n]
        B: Tensor
        /// anchor index within the layer, int64 [n]
        A: Tensor
        /// grid row, int64 [n]
        Gj: Tensor
        /// grid column, int64 [n]
        Gi: Tensor
        /// the matched anchor's (w, h) in grid units [n, 2]
        Anchors: Tensor
    }

    /// Number of positives.
    member this.Count = int this.B.shape.[0]

/// Checks a targets tensor [nt, 6] = (image, class, x, y, w, h) against the class count; raises an
/// ArgumentException naming the first bad class index and nc.
let validateTargets (nc: int) (targets: Tensor) =
    if targets.dim () <> 2L || targets.shape.[1] <> 6L then
        raise (ArgumentException(sprintf "targets must be [nt, 6] (image, class, x, y, w, h), got %A" targets.shape))

    if targets.shape.[0] > 0L then
        let cls = targets.index (Colon, Single 1L)
        let bad = (cls |> ltS 0.0).logical_or (cls |> geS (float nc))

        if bad.any().item<bool> () then
            let i = bad.nonzero().index(Single 0L, Single 0L).item<int64> ()
            let c = cls.index(Single i).to_type(torch.float64).item<float> ()
            raise (ArgumentException(sprintf "target row %d has class %g, out of range for nc = %d" i c nc))

/// build_targets for one yolo layer: `anchorVec` [na, 2] in grid units, `pShape` the layer's raw output shape
/// [bs, na, ny, nx, no], `targets` [nt, 6] normalised.
let buildLayerTargets (iouT: float) (anchorVec: Tensor) (pShape: int64[]) (targets: Tensor) : LayerTargets =
    let ny, nx = pShape.[2], pShape.[3]
    let na = anchorVec.shape.[0]
    let nt = targets.shape.[0]

    let gain =
        torch.tensor ([| 1.0; 1.0; float nx; float ny; float nx; float ny |], dtype = targets.dtype, device = targets.device)

    let t0 = targets * gain

    let a, t =
        if nt > 0L then
            // shape-only match, strictly greater than iou_t; no best-anchor fallback, no neighbour cells
            let j =
                YoloSpp.Geometry.Boxes.whIou anchorVec (t0.index (Colon, Slice(4L, 6L)))
                |> gtS iouT

            let at = (arangeN na torch.int64 targets.device).view(na, 1L).repeat (1L, nt)
            // boolean mask over [na, nt]: anchor-major order (all targets of anchor 0, then anchor 1, ...)
            at.index (torch.TensorIndex.Tensor j), t0.repeat(na, 1L, 1L).index (torch.TensorIndex.Tensor j)
        else
            torch.empty ([| 0L |], dtype = torch.int64, device = targets.device), t0

    let b = t.index(Colon, Single 0L).to_type (torch.int64)
    let c = t.index(Colon, Single 1L).to_type (torch.int64)
    let gxy = t.index (Colon, Slice(2L, 4L))
    let gwh = t.index (Colon, Slice(4L, 6L))
    let gij = gxy.to_type (torch.int64) // truncation, as .long()
    // edge clamp before tbox, as the reference's in-place clamp_: a centre at x = 1.0 lands in cell nx-1 with
    // offset 1.0
    let gi = gij.index (Colon, Single 0L) |> clampI 0L (nx - 1L)
    let gj = gij.index (Colon, Single 1L) |> clampI 0L (ny - 1L)
    let tbox = torch.cat ([| gxy - torch.stack ([| gi; gj |], 1L); gwh |], 1L)

    {
        Tcls = c
        Tbox = tbox
        B = b
        A = a
        Gj = gj
        Gi = gi
        Anchors = anchorVec.index (torch.TensorIndex.Tensor a)
    }

/// build_targets over all yolo layers: `anchorVecs.[i]` and `p.[i]` belong to the same layer (strides 32, 16, 8).
/// `iouT` is hyp iou_t; a class index outside [0, nc) is an ArgumentException naming it and nc.
let buildTargets (iouT: float) (nc: int) (anchorVecs: Tensor[]) (p: Tensor[]) (targets: Tensor) : LayerTargets[] =
    if anchorVecs.Length <> p.Length then
        raise (ArgumentException(sprintf "%d anchor sets for %d yolo outputs" anchorVecs.Length p.Length))

    validateTargets nc targets
    Array.map2 (fun (av: Tensor) (pi: Tensor) -> buildLayerTargets iouT av pi.shape targets) anchorVecs p
