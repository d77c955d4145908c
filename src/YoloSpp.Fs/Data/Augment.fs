/// The geometry of the reference's dataset (build_utils/datasets.py): load_image's resize, label ↔ pixel boxes,
/// load_mosaic's tile placement, random_affine's matrix and box transform with its candidate filter, augment_hsv's
/// lookup tables, and the rect-batch shapes. Pure: random draws come in as values; the shell draws them in the
/// reference's order and moves the pixels.
module internal YoloSpp.Data.Augment

open System
open YoloSpp.Data.Labels

/// A box in pixels (corners), with its class.
[<Struct>]
type PixelBox =
    {
        Class: int
        X1: float
        Y1: float
        X2: float
        Y2: float
    }

/// load_image's resize: r = imgSize / max(h0, w0); the new size is (int(h0 r), int(w0 r)) (Python's int truncates).
/// Returns (h, w) and r; r = 1 means no resize.
let loadSize (imgSize: int) (h0: int, w0: int) : (int * int) * float =
    let r = float imgSize / float (max h0 w0)

    if r = 1.0 then
        (h0, w0), r
    else
        // at least one pixel: the reference's int() gives 0 for a side far shorter than the other (a 10000x20 image
        // at 64 px), which cv2.resize rejects; one pixel keeps such an image usable, and changes nothing else
        (max 1 (int (float h0 * r)), max 1 (int (float w0 * r))), r

/// Normalised label rows → pixel corner boxes, as __getitem__ does after letterbox:
/// x1 = ratioW * w * (cx - bw/2) + padW (w, h the size before padding, ratio and pad from letterbox).
let toPixels (rows: LabelRow[]) (w: int, h: int) (ratioW: float, ratioH: float) (padW: float, padH: float) =
    rows
    |> Array.map (fun r ->
        {
            Class = r.Class
            X1 = ratioW * float w * (r.Cx - r.W / 2.0) + padW
            Y1 = ratioH * float h * (r.Cy - r.H / 2.0) + padH
            X2 = ratioW * float w * (r.Cx + r.W / 2.0) + padW
            Y2 = ratioH * float h * (r.Cy + r.H / 2.0) + padH
        })

/// Pixel boxes of an image of size (width, height) → normalised rows (xyxy2xywh, then / width and / height).
let toNormalised (width: int, height: int) (boxes: PixelBox[]) : LabelRow[] =
    boxes
    |> Array.map (fun b ->
        {
            Class = b.Class
            Cx = (b.X1 + b.X2) / 2.0 / float width
            Cy = (b.Y1 + b.Y2) / 2.0 / float height
            W = (b.X2 - b.X1) / float width
            H = (b.Y2 - b.Y1) / float height
        })

/// The left-right flip of normalised rows (cx → 1 - cx).
let flipLr (rows: LabelRow[]) =
    rows |> Array.map (fun r -> { r with Cx = 1.0 - r.Cx })

/// A rectangle [X1, X2) × [Y1, Y2) in integer pixels.
[<Struct>]
type Rect = { X1: int; Y1: int; X2: int; Y2: int }

/// load_mosaic's placement of tile i (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of size (h, w)
/// around the centre (xc, yc) on a 2s × 2s canvas: (destination on the canvas, source in the tile). The
/// bottom-left source uses max(xc, w) for x2b as the reference does; the copy is the same because the widths agree.
let mosaicTile (s: int) (xc: int, yc: int) (i: int) (h: int, w: int) : Rect * Rect =
    match i with
    | 0 ->
        let a =
            {
                X1 = max (xc - w) 0
                Y1 = max (yc - h) 0
                X2 = xc
                Y2 = yc
            }

        a,
        {
            X1 = w - (a.X2 - a.X1)
            Y1 = h - (a.Y2 - a.Y1)
            X2 = w
            Y2 = h
        }
    | 1 ->
        let a =
            {
                X1 = xc
                Y1 = max (yc - h) 0
                X2 = min (xc + w) (s * 2)
                Y2 = yc
            }

        a,
        {
            X1 = 0
            Y1 = h - (a.Y2 - a.Y1)
            X2 = min w (a.X2 - a.X1)
            Y2 = h
        }
    | 2 ->
        let a =
            {
                X1 = max (xc - w) 0
                Y1 = yc
                X2 = xc
                Y2 = min (s * 2) (yc + h)
            }

        a,
        {
            X1 = w - (a.X2 - a.X1)
            Y1 = 0
            X2 = w
            Y2 = min (a.Y2 - a.Y1) h
        }
    | 3 ->
        let a =
            {
                X1 = xc
                Y1 = yc
                X2 = min (xc + w) (s * 2)
                Y2 = min (s * 2) (yc + h)
            }

        a,
        {
            X1 = 0
            Y1 = 0
            X2 = min w (a.X2 - a.X1)
            Y2 = min (a.Y2 - a.Y1) h
        }
    | _ -> invalidArg "i" "a mosaic has tiles 0..3"

/// A tile's labels on the mosaic canvas: pixel boxes offset by (padw, padh) = (x1a - x1b, y1a - y1b), then
/// clipped to [0, 2s] as the reference does once all four tiles are in.
let mosaicLabels (s: int) (dst: Rect, src: Rect) (h: int, w: int) (rows: LabelRow[]) : PixelBox[] =
    let padw, padh = float (dst.X1 - src.X1), float (dst.Y1 - src.Y1)
    let clip v = Math.Clamp(v, 0.0, float (2 * s))

    toPixels rows (w, h) (1.0, 1.0) (padw, padh)
    |> Array.map (fun b ->
        { b with
            X1 = clip b.X1
            Y1 = clip b.Y1
            X2 = clip b.X2
            Y2 = clip b.Y2
        })

/// The random values random_affine draws, in its order: angle a ∈ U(-degrees, degrees), scale s ∈ U(1-scale,
/// 1+scale), translations tx, ty ∈ U(-translate, translate) (fractions), shears in degrees ∈ U(-shear, shear).
type AffineDraw =
    {
        Angle: float
        Scale: float
        Tx: float
        Ty: float
        ShearX: float
        ShearY: float
    }

/// The identity draw (no rotation, scale 1, no translation or shear).
let identityDraw =
    {
        Angle = 0.0
        Scale = 1.0
        Tx = 0.0
        Ty = 0.0
        ShearX = 0.0
        ShearY = 0.0
    }

/// random_affine's matrix M = S @ T @ R (3×3, row-major) for an input of (height, width) and a border: R is
/// cv2.getRotationMatrix2D about the image centre (positive angle = anticlockwise), T translates by
/// tx·height + border, ty·width + border (the reference multiplies x by shape[0] and y by shape[1]; equal on the
/// square mosaic), S shears x by tan(shearX) and y by tan(shearY).
let affineMatrix (d: AffineDraw) (height: int, width: int) (border: int) : float[] =
    let a = d.Angle * Math.PI / 180.0
    let alpha, beta = d.Scale * Math.Cos a, d.Scale * Math.Sin a
    let cx, cy = float width / 2.0, float height / 2.0

    let r =
        [|
            alpha
            beta
            (1.0 - alpha) * cx - beta * cy
            -beta
            alpha
            beta * cx + (1.0 - alpha) * cy
            0.0
            0.0
            1.0
        |]

    let t =
        [|
            1.0
            0.0
            d.Tx * float height + float border
            0.0
            1.0
            d.Ty * float width + float border
            0.0
            0.0
            1.0
        |]

    let sh =
        [|
            1.0
            Math.Tan(d.ShearX * Math.PI / 180.0)
            0.0
            Math.Tan(d.ShearY * Math.PI / 180.0)
            1.0
            0.0
            0.0
            0.0
            1.0
        |]

    let mul (p: float[]) (q: float[]) =
        Array.init 9 (fun k -> let i, j = k / 3, k % 3 in p[i * 3] * q[j] + p[i * 3 + 1] * q[3 + j] + p[i * 3 + 2] * q[6 + j])

    mul sh (mul t r)

/// Whether random_affine warps the pixels at all: `border != 0 or (M != I).any()`.
let needsWarp (m: float[]) (border: int) =
    border <> 0
    || m
       |> Array.mapi (fun k v -> v <> (if k % 4 = 0 then 1.0 else 0.0))
       |> Array.exists id

/// The inverse of an affine 3×3 matrix (its top two rows), for sampling the source of each output pixel.
let invertAffine (m: float[]) : float[] =
    let det = m[0] * m[4] - m[1] * m[3]
    let a, b, c, d = m[4] / det, -m[1] / det, -m[3] / det, m[0] / det
    [| a; b; -(a * m[2] + b * m[5]); c; d; -(c * m[2] + d * m[5]); 0.0; 0.0; 1.0 |]

/// random_affine's box transform: the 4 corners of each box through M, their enclosing box clipped to the output
/// (width, height), kept when the reference's candidate rule holds: w > 4 and h > 4 px, area / (area0 · s) > 0.2,
/// aspect max(w/h, h/w) < 10 (with its 1e-16 guards), s being the drawn scale.
let transformBoxes (m: float[]) (scale: float) (width: int, height: int) (boxes: PixelBox[]) : PixelBox[] =
    boxes
    |> Array.choose (fun b ->
        let corners = [| b.X1, b.Y1; b.X2, b.Y2; b.X1, b.Y2; b.X2, b.Y1 |]
        let xs = corners |> Array.map (fun (x, y) -> m[0] * x + m[1] * y + m[2])
        let ys = corners |> Array.map (fun (x, y) -> m[3] * x + m[4] * y + m[5])
        let x1 = Math.Clamp(Array.min xs, 0.0, float width)
        let x2 = Math.Clamp(Array.max xs, 0.0, float width)
        let y1 = Math.Clamp(Array.min ys, 0.0, float height)
        let y2 = Math.Clamp(Array.max ys, 0.0, float height)
        let w, h = x2 - x1, y2 - y1
        let area0 = (b.X2 - b.X1) * (b.Y2 - b.Y1)
        let ar = max (w / (h + 1e-16)) (h / (w + 1e-16))

        if w > 4.0 && h > 4.0 && w * h / (area0 * scale + 1e-16) > 0.2 && ar < 10.0 then
            Some
                {
                    Class = b.Class
                    X1 = x1
                    Y1 = y1
                    X2 = x2
                    Y2 = y2
                }
        else
            None)

/// augment_hsv's lookup tables for gains r = U(-1, 1)·[h, s, v] + 1 over OpenCV's 8-bit HSV (H in [0, 180)):
/// hue (x·rh) mod 180, saturation and value clip(x·r, 0, 255), each truncated to a byte as numpy's astype.
let hsvLuts (rh: float, rs: float, rv: float) : byte[] * byte[] * byte[] =
    let hue = Array.init 256 (fun x -> byte (int ((float x * rh) % 180.0)))

    let clip r =
        Array.init 256 (fun x -> byte (int (Math.Clamp(float x * r, 0.0, 255.0))))

    hue, clip rs, clip rv

/// The rect-batch shapes of the reference (rect=True): images sorted by aspect ratio h/w (a stable sort here;
/// numpy's argsort is not stable, so ties may order differently), batch i = sorted images [i·bs, (i+1)·bs); its
/// shape factor is [maxi, 1] when every ratio < 1 (landscape), [1, 1/mini] when every ratio > 1 (portrait), else
/// [1, 1]; the shape is ceil(factor · imgSize / 32 + pad) · 32 as (h, w). Returns the order and the shapes.
let rectShapes (sizes: (int * int)[]) (batchSize: int) (imgSize: int) (pad: float) : int[] * (int * int)[] =
    let ratios = sizes |> Array.map (fun (h, w) -> float h / float w)
    // a stable sort (List.sortBy is; Array.sortBy is not)
    let order =
        List.init sizes.Length id |> List.sortBy (fun i -> ratios[i]) |> Array.ofList

    let nb = (sizes.Length + batchSize - 1) / batchSize

    let shapes =
        Array.init nb (fun b ->
            let ar =
                order[b * batchSize .. min sizes.Length ((b + 1) * batchSize) - 1]
                |> Array.map (fun i -> ratios[i])

            let mini, maxi = Array.min ar, Array.max ar

            let fh, fw =
                if maxi < 1.0 then maxi, 1.0
                elif mini > 1.0 then 1.0, 1.0 / mini
                else 1.0, 1.0

            let side f =
                int (Math.Ceiling(f * float imgSize / float YoloSpp.Model.Cfg.GridStride + pad))
                * YoloSpp.Model.Cfg.GridStride

            side fh, side fw)

    order, shapes
