/// Box geometry of the reference (build_utils/utils.py): format conversions, clipping, rescaling from the
/// letterboxed network input back to the original image, and the IoU family. Pure: inputs are never mutated.
module YoloSpp.Geometry.Boxes

open System
open TorchSharp
open YoloSpp
open type TorchSharp.torch.TensorIndex

type Tensor = torch.Tensor

/// Which member of the IoU family `bboxIou` returns.
type IouKind =
    | Iou
    | GIoU
    | DIoU
    | CIoU

/// How a box's four numbers are laid out.
type BoxFormat =
    /// centre x, centre y, width, height
    | Xywh
    /// top-left x, top-left y, bottom-right x, bottom-right y
    | Xyxy

let private col (b: Tensor) (i: int) = b.index (Ellipsis, Single(int64 i))

/// [.., 4] (cx, cy, w, h) -> (x1, y1, x2, y2), as the reference's xywh2xyxy.
let xywh2xyxy (x: Tensor) : Tensor =
    let cx, cy, w, h = col x 0, col x 1, col x 2, col x 3
    torch.stack ([| cx - (w /. 2.0); cy - (h /. 2.0); cx +! (w /. 2.0); cy +! (h /. 2.0) |], -1)

/// [.., 4] (x1, y1, x2, y2) -> (cx, cy, w, h), as the reference's xyxy2xywh.
let xyxy2xywh (x: Tensor) : Tensor =
    let x1, y1, x2, y2 = col x 0, col x 1, col x 2, col x 3
    torch.stack ([| (x1 +! x2) /. 2.0; (y1 +! y2) /. 2.0; x2 - x1; y2 - y1 |], -1)

/// Clamps xyxy boxes [n, 4] to an image of height h and width w (x to [0, w], y to [0, h]); returns a new tensor.
let clipCoords (boxes: Tensor) (h: int, w: int) : Tensor =
    let x1 = col boxes 0 |> clampF 0.0 (float w)
    let y1 = col boxes 1 |> clampF 0.0 (float h)
    let x2 = col boxes 2 |> clampF 0.0 (float w)
    let y2 = col boxes 3 |> clampF 0.0 (float h)
    torch.stack ([| x1; y1; x2; y2 |], -1)

/// The letterbox transform that `scaleCoords` undoes: gain and (pad x, pad y).
type RatioPad =
    {
        Gain: float
        PadX: float
        PadY: float
    }

/// Rescales xyxy boxes [n, 4] from the network input (img1: height, width) to the original image (img0), as the
/// reference's scale_coords. Without `ratioPad` the gain is max(img1)/max(img0) and the padding is centred (the
/// path the evaluation loop takes); with it, its gain and pad are used. The result is clipped to img0.
let scaleCoords (img1Hw: int * int) (coords: Tensor) (img0Hw: int * int) (ratioPad: RatioPad option) : Tensor =
    let h1, w1 = img1Hw
    let h0, w0 = img0Hw

    let gain, padX, padY =
        match ratioPad with
        | None ->
            let g = float (max h1 w1) / float (max h0 w0)
            g, (float w1 - float w0 * g) / 2.0, (float h1 - float h0 * g) / 2.0
        | Some rp -> rp.Gain, rp.PadX, rp.PadY

    let x1 = (col coords 0 -. padX) /. gain
    let y1 = (col coords 1 -. padY) /. gain
    let x2 = (col coords 2 -. padX) /. gain
    let y2 = (col coords 3 -. padY) /. gain
    clipCoords (torch.stack ([| x1; y1; x2; y2 |], -1)) (h0, w0)

/// IoU family of paired boxes box1[i] with box2[i] ([n, 4] each, or broadcastable), the reference's bbox_iou.
/// The 1e-16 epsilons sit exactly where the reference puts them (added to box1's area in the union, to the
/// enclosing area, and to the squared diagonal), so identical boxes give CIoU = NaN as there (alpha = 0/0).
/// Differentiable w.r.t. both inputs; CIoU's alpha is computed without gradient, as in the reference.
let bboxIou (kind: IouKind) (format: BoxFormat) (box1: Tensor) (box2: Tensor) : Tensor =
    let b1x1, b1y1, b1x2, b1y2, b2x1, b2y1, b2x2, b2y2 =
        match format with
        | Xyxy -> col box1 0, col box1 1, col box1 2, col box1 3, col box2 0, col box2 1, col box2 2, col box2 3
        | Xywh ->
            let c1x, c1y, c1w, c1h = col box1 0, col box1 1, col box1 2, col box1 3
            let c2x, c2y, c2w, c2h = col box2 0, col box2 1, col box2 2, col box2 3

            c1x - (c1w /. 2.0),
            c1y - (c1h /. 2.0),
            c1x +! (c1w /. 2.0),
            c1y +! (c1h /. 2.0),
            c2x - (c2w /. 2.0),
            c2y - (c2h /. 2.0),
            c2x +! (c2w /. 2.0),
            c2y +! (c2h /. 2.0)

    let inter =
        (torch.min (b1x2, b2x2) - torch.max (b1x1, b2x1) |> clampMin 0.0)
        * (torch.min (b1y2, b2y2) - torch.max (b1y1, b2y1) |> clampMin 0.0)
    // widths and heights recomputed from the corners, as the reference does
    let w1, h1 = b1x2 - b1x1, b1y2 - b1y1
    let w2, h2 = b2x2 - b2x1, b2y2 - b2y1
    let union = (w1 * h1 +. 1e-16) +! w2 * h2 - inter
    let iou = inter / union

    match kind with
    | Iou -> iou
    | GIoU
    | DIoU
    | CIoU ->
        let cw = torch.max (b1x2, b2x2) - torch.min (b1x1, b2x1)
        let ch = torch.max (b1y2, b2y2) - torch.min (b1y1, b2y1)

        match kind with
        | GIoU ->
            let cArea = cw * ch +. 1e-16
            iou - (cArea - union) / cArea
        | _ ->
            let c2 = square cw +! square ch +. 1e-16

            let rho2 =
                square ((b2x1 +! b2x2) - (b1x1 +! b1x2)) /. 4.0
                +! square ((b2y1 +! b2y2) - (b1y1 +! b1y2)) /. 4.0

            match kind with
            | DIoU -> iou - rho2 / c2
            | _ ->
                let v =
                    (4.0 / (Math.PI ** 2.0)) .* square (torch.atan (w2 / h2) - torch.atan (w1 / h1))

                let alpha =
                    use _ = torch.no_grad ()
                    v / ((1.0 .- iou) +! v)

                iou - (rho2 / c2 +! v * alpha.detach ())

/// IoU of widths/heights as if the boxes shared a corner: wh1 [n, 2], wh2 [m, 2] -> [n, m]; the reference's
/// wh_iou (no epsilon). Used to match targets to anchors by shape.
let whIou (wh1: Tensor) (wh2: Tensor) : Tensor =
    let a = wh1.unsqueeze (1) // [n, 1, 2]
    let b = wh2.unsqueeze (0) // [1, m, 2]
    let inter = torch.min(a, b).prod (2)
    inter / (wh1.prod(1).unsqueeze (1) +! wh2.prod(1).unsqueeze (0) - inter)

/// Pairwise IoU of xyxy boxes: box1 [N, 4], box2 [M, 4] -> [N, M] (the reference's box_iou, no epsilon).
let boxIou (box1: Tensor) (box2: Tensor) : Tensor =
    let area (b: Tensor) =
        (col b 2 - col b 0) * (col b 3 - col b 1)

    let a1 = area box1
    let a2 = area box2
    let b1 = box1.unsqueeze (1)
    let b2 = box2.unsqueeze (0)

    let lt =
        torch.max (b1.index (Ellipsis, Slice(0L, 2L)), b2.index (Ellipsis, Slice(0L, 2L)))

    let rb =
        torch.min (b1.index (Ellipsis, Slice(2L, 4L)), b2.index (Ellipsis, Slice(2L, 4L)))

    let inter = (rb - lt |> clampMin 0.0).prod (2)
    inter / (a1.unsqueeze (1) +! a2.unsqueeze (0) - inter)
