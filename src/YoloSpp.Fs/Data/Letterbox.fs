/// The geometry of the reference's letterbox (resize keeping the aspect ratio, then pad): pure arithmetic; the
/// shell applies it to pixels.
module YoloSpp.Data.Letterbox

open System

/// The reference has two letterbox functions that differ in their `auto` multiple and in the ratio they
/// return for scale_fill.
type Variant =
    /// build_utils/datasets.py: pads to a multiple of 32 with `auto`; used by the dataset (auto = false).
    | Datasets
    /// build_utils/img_utils.py: pads to a multiple of 64 with `auto`; used by prediction (auto = true).
    | ImgUtils

    /// The stride the `auto` (minimum rectangle) padding rounds to.
    member this.AutoMultiple =
        match this with
        | Datasets -> 32
        | ImgUtils -> 64

/// Options of a letterbox.
type Options =
    {
        Variant: Variant
        /// pad only to the nearest multiple (minimum rectangle) instead of the full target
        Auto: bool
        /// stretch to the target without padding (ignored when Auto, as the reference's if/elif)
        ScaleFill: bool
        /// allow enlarging; when false the image is only ever shrunk
        ScaleUp: bool
    }

/// What a letterbox does to an image of size (h0, w0).
type Plan =
    {
        /// resized size before padding
        ResizedW: int
        ResizedH: int
        /// (w ratio, h ratio) as the reference returns it
        RatioW: float
        RatioH: float
        /// half padding (dw, dh) as the reference returns it
        PadW: float
        PadH: float
        Top: int
        Bottom: int
        Left: int
        Right: int
    }

    /// Padded output height.
    member this.OutH = this.ResizedH + this.Top + this.Bottom
    /// Padded output width.
    member this.OutW = this.ResizedW + this.Left + this.Right

/// Python's round(): half to even.
let private pyRound (x: float) =
    int (Math.Round(x, MidpointRounding.ToEven))

/// The letterbox plan for an image (h0, w0) and a target (newH, newW), exactly as the reference computes it.
let plan (o: Options) (h0: int, w0: int) (newH: int, newW: int) : Plan =
    if h0 <= 0 || w0 <= 0 then
        invalidArg "h0, w0" (sprintf "image size %dx%d must be positive" w0 h0)

    let r0 = min (float newH / float h0) (float newW / float w0)
    let r = if o.ScaleUp then r0 else min r0 1.0
    // at least one pixel (a side far shorter than the other would round to 0, which no resize accepts)
    let unpadW, unpadH = max 1 (pyRound (float w0 * r)), max 1 (pyRound (float h0 * r))
    let dw, dh = newW - unpadW, newH - unpadH

    let unpadW, unpadH, dw, dh, ratioW, ratioH =
        if o.Auto then
            let m = o.Variant.AutoMultiple
            // np.mod: non-negative for a positive modulus
            unpadW, unpadH, ((dw % m) + m) % m, ((dh % m) + m) % m, r, r
        elif o.ScaleFill then
            match o.Variant with
            // datasets.py indexes new_shape as (h, w) but shape as (w, h) here: harmless for square targets
            | Datasets -> newW, newH, 0, 0, float newH / float w0, float newW / float h0
            | ImgUtils -> newW, newH, 0, 0, float newW / float w0, float newH / float h0
        else
            unpadW, unpadH, dw, dh, r, r

    let dw, dh = float dw / 2.0, float dh / 2.0

    {
        ResizedW = unpadW
        ResizedH = unpadH
        RatioW = ratioW
        RatioH = ratioH
        PadW = dw
        PadH = dh
        Top = pyRound (dh - 0.1)
        Bottom = pyRound (dh + 0.1)
        Left = pyRound (dw - 0.1)
        Right = pyRound (dw + 0.1)
    }
