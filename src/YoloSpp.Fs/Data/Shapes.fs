/// The pure geometry of the synthetic shapes dataset (the README's "The shapes dataset"): class names, the vertices of the
/// rotated shapes, their tight boxes, the overlap rule and COCO's size buckets, and the seed of each image's RNG.
/// The shell (ShapesDataset.cs) draws what these functions describe.
module internal YoloSpp.Data.Shapes

open System

/// Every kind of shape the generator draws: the five of the default set (label order), then the four of the
/// `symbols` set (a second dataset with other classes, to fine-tune a model trained on the first).
type ShapeKind =
    | Circle = 0
    | Square = 1
    | Triangle = 2
    | Star = 3
    | Ring = 4
    | Cross = 5
    | Arrow = 6
    | Hexagon = 7
    | Diamond = 8

/// Class names of the default set in label order, as written to shapes.names.
[<CompiledName("ClassNames")>]
let classNames = [| "circle"; "square"; "triangle"; "star"; "ring" |]

/// The kinds of a class set in label order: 0 the default five, 1 the symbols (cross, arrow, hexagon, diamond).
[<CompiledName("Kinds")>]
let kinds (set: int) : ShapeKind[] =
    match set with
    | 0 ->
        [|
            ShapeKind.Circle
            ShapeKind.Square
            ShapeKind.Triangle
            ShapeKind.Star
            ShapeKind.Ring
        |]
    | 1 -> [| ShapeKind.Cross; ShapeKind.Arrow; ShapeKind.Hexagon; ShapeKind.Diamond |]
    | _ -> invalidArg (nameof set) (sprintf "unknown class set %d" set)

/// The class names of a class set in label order.
[<CompiledName("NamesOf")>]
let namesOf (set: int) : string[] =
    kinds set |> Array.map (fun k -> (string k).ToLowerInvariant())

/// COCO's object size buckets (pycocotools' areaRng): small < 32², medium 32²..96², large > 96² pixels.
type SizeBucket =
    | Small = 0
    | Medium = 1
    | Large = 2

/// An axis-aligned box in pixels, corners (X1, Y1) top-left and (X2, Y2) bottom-right.
[<Struct>]
type PixelBox =
    {
        X1: float
        Y1: float
        X2: float
        Y2: float
    }

    member b.Width = b.X2 - b.X1
    member b.Height = b.Y2 - b.Y1
    member b.Area = max 0.0 b.Width * max 0.0 b.Height

/// The seed of the RNG of image `index` of a split (0 train, 1 val) under a dataset seed: a SplitMix64 finaliser
/// over the three numbers, so neighbouring images get unrelated streams and any image can be drawn on its own (in
/// parallel, or again in a test) without drawing the ones before it.
[<CompiledName("ImageSeed")>]
let imageSeed (seed: int) (split: int) (index: int) : int =
    let mix (z: uint64) =
        let z = (z ^^^ (z >>> 30)) * 0xbf58476d1ce4e5b9UL
        let z = (z ^^^ (z >>> 27)) * 0x94d049bb133111ebUL
        z ^^^ (z >>> 31)

    let golden = 0x9e3779b97f4a7c15UL
    let h = mix (uint64 (uint32 seed) + golden)
    let h = mix (h ^^^ (uint64 (uint32 split) + 2UL * golden))
    let h = mix (h ^^^ (uint64 (uint32 index) + 3UL * golden))
    // System.Random(int) takes any int but folds negatives; keep it non-negative so every seed is distinct
    int (h &&& 0x7fffffffUL)

/// The vertices (x0, y0, x1, y1, ...) of a regular polygon of `sides` corners on a circle of `radius` around
/// (cx, cy), the first corner at angle `rotation` (radians, clockwise in image coordinates).
[<CompiledName("RegularPolygon")>]
let regularPolygon (sides: int) (cx: float) (cy: float) (radius: float) (rotation: float) : float[] =
    [|
        for k in 0 .. sides - 1 do
            let a = rotation + 2.0 * Math.PI * float k / float sides
            yield cx + radius * cos a
            yield cy + radius * sin a
    |]

/// The 10 vertices (x0, y0, ...) of a five-pointed star: tips on a circle of `radius`, the notches between them on
/// a circle of `radius * innerRatio`, the first tip at angle `rotation`.
[<CompiledName("Star")>]
let star (cx: float) (cy: float) (radius: float) (innerRatio: float) (rotation: float) : float[] =
    [|
        for k in 0..9 do
            let a = rotation + Math.PI * float k / 5.0
            let r = if k % 2 = 0 then radius else radius * innerRatio
            yield cx + r * cos a
            yield cy + r * sin a
    |]

/// Points (u, v) of a shape's own frame (|u|, |v| <= 1) scaled by `radius`, rotated by `rotation` and moved to
/// (cx, cy), as x0, y0, x1, y1, ...
let private place (uv: (float * float) list) (cx: float) (cy: float) (radius: float) (rotation: float) : float[] =
    let c, s = cos rotation, sin rotation

    uv
    |> List.collect (fun (u, v) -> [ cx + radius * (u * c - v * s); cy + radius * (u * s + v * c) ])
    |> Array.ofList

/// The 12 vertices of a plus-shaped cross reaching `radius` from (cx, cy), its arms `2 * arm * radius` wide.
[<CompiledName("Cross")>]
let cross (cx: float) (cy: float) (radius: float) (arm: float) (rotation: float) : float[] =
    let a = arm

    place
        [
            -a, -1.0
            a, -1.0
            a, -a
            1.0, -a
            1.0, a
            a, a
            a, 1.0
            -a, 1.0
            -a, a
            -1.0, a
            -1.0, -a
            -a, -a
        ]
        cx
        cy
        radius
        rotation

/// The 7 vertices of an arrow from -radius to +radius along its axis: a shaft of half-width `shaft * radius`, then
/// from 0.2 · radius a head of half-width 0.6 · radius.
[<CompiledName("Arrow")>]
let arrow (cx: float) (cy: float) (radius: float) (shaft: float) (rotation: float) : float[] =
    place
        [
            -1.0, -shaft
            0.2, -shaft
            0.2, -0.6
            1.0, 0.0
            0.2, 0.6
            0.2, shaft
            -1.0, shaft
        ]
        cx
        cy
        radius
        rotation

/// The 4 vertices of a rhombus: its long diagonal 2 · radius, its short one 2 · aspect · radius.
[<CompiledName("Diamond")>]
let diamond (cx: float) (cy: float) (radius: float) (aspect: float) (rotation: float) : float[] =
    place [ 0.0, -1.0; aspect, 0.0; 0.0, 1.0; -aspect, 0.0 ] cx cy radius rotation

/// The tight box of a polygon's vertices (x0, y0, x1, y1, ...): a filled polygon's pixels reach exactly its extreme
/// vertices, so this is the box of the drawn shape, not of the circle around it.
[<CompiledName("PolygonBox")>]
let polygonBox (xy: float[]) : PixelBox =
    if xy.Length < 2 || xy.Length % 2 <> 0 then
        invalidArg (nameof xy) "expected x, y pairs"

    let xs = Array.init (xy.Length / 2) (fun i -> xy[2 * i])
    let ys = Array.init (xy.Length / 2) (fun i -> xy[2 * i + 1])

    {
        X1 = Array.min xs
        Y1 = Array.min ys
        X2 = Array.max xs
        Y2 = Array.max ys
    }

/// The box of a disc (circle, or ring: the outer circle) of `radius` around (cx, cy).
[<CompiledName("CircleBox")>]
let circleBox (cx: float) (cy: float) (radius: float) : PixelBox =
    {
        X1 = cx - radius
        Y1 = cy - radius
        X2 = cx + radius
        Y2 = cy + radius
    }

/// A box clipped to a width x height image.
[<CompiledName("ClipTo")>]
let clipTo (width: int) (height: int) (b: PixelBox) : PixelBox =
    let cx v = Math.Clamp(v, 0.0, float width)
    let cy v = Math.Clamp(v, 0.0, float height)

    {
        X1 = cx b.X1
        Y1 = cy b.Y1
        X2 = cx b.X2
        Y2 = cy b.Y2
    }

/// A box clipped to a size x size image (the label of an object that leaves the image).
[<CompiledName("Clip")>]
let clip (size: int) (b: PixelBox) : PixelBox = clipTo size size b

/// The area the two boxes share.
[<CompiledName("Intersection")>]
let intersection (a: PixelBox) (b: PixelBox) : float =
    let w = min a.X2 b.X2 - max a.X1 b.X1
    let h = min a.Y2 b.Y2 - max a.Y1 b.Y1
    if w <= 0.0 || h <= 0.0 then 0.0 else w * h

/// Intersection over union of two boxes (0 when both are empty).
[<CompiledName("Iou")>]
let iou (a: PixelBox) (b: PixelBox) : float =
    let i = intersection a b
    let u = a.Area + b.Area - i
    if u <= 0.0 then 0.0 else i / u

/// Whether a new object's box may join the boxes already drawn: IoU with each at most `maxIou` (0.35 by the
/// generator's specification), and no earlier object more than `maxCovered` hidden under it. The second rule exists because
/// the new object is drawn on top: a small earlier object inside a large new one has a low IoU yet would vanish
/// while keeping its label.
[<CompiledName("Fits")>]
let fits (maxIou: float) (maxCovered: float) (placed: PixelBox seq) (candidate: PixelBox) : bool =
    placed
    |> Seq.forall (fun p ->
        iou p candidate <= maxIou
        && (p.Area <= 0.0 || intersection p candidate / p.Area <= maxCovered))

/// COCO's size bucket of a box in pixels (by its area, as pycocotools' areaRng).
[<CompiledName("SizeBucketOf")>]
let sizeBucket (b: PixelBox) : SizeBucket =
    let a = b.Area

    if a < 32.0 * 32.0 then SizeBucket.Small
    elif a <= 96.0 * 96.0 then SizeBucket.Medium
    else SizeBucket.Large

/// The label row of a box in a width x height image (x normalised by the width, y by the height).
[<CompiledName("LabelRowOf")>]
let labelRowOf (cls: int) (width: int) (height: int) (b: PixelBox) : string =
    let w, h = float width, float height

    let f (v: float) =
        v.ToString("F6", Globalization.CultureInfo.InvariantCulture)

    sprintf "%d %s %s %s %s" cls (f ((b.X1 + b.X2) / 2.0 / w)) (f ((b.Y1 + b.Y2) / 2.0 / h)) (f (b.Width / w)) (f (b.Height / h))

/// A label row of the YOLO layout: `class cx cy w h`, normalised by the image size, 6 decimals, invariant culture.
[<CompiledName("LabelRow")>]
let labelRow (cls: int) (size: int) (b: PixelBox) : string = labelRowOf cls size size b
