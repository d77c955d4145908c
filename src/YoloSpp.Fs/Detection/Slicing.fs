/// Sliced inference for small objects in large images (as SAHI does it): the image cut into overlapping tiles, and
/// the detections of every tile (and of the whole image) merged into one list. Pure: plain arrays in, arrays out.
module YoloSpp.Detection.Slicing

open System

/// A tile of the image in pixels: [X1, X2) × [Y1, Y2).
[<Struct>]
type Tile = { X1: int; Y1: int; X2: int; Y2: int }

/// One detection in image pixels.
[<Struct>]
type Box =
    {
        X1: float
        Y1: float
        X2: float
        Y2: float
        Score: float
        Class: int
    }

/// How two boxes are compared when the tiles' detections are merged.
type Match =
    /// intersection over the smaller box's area (SAHI's IOS): a part lying inside a whole matches it fully
    | Ios = 0
    /// intersection over union
    | Iou = 1

/// How the detections of the tiles become one list.
type Merge =
    /// non-maximum suppression per class: a lower-scored box that matches a kept one is dropped
    | Nms = 0
    /// SAHI's greedy non-maximum merging per class: a lower-scored box that matches a kept one is merged into it
    /// (their union, the higher score)
    | Nmm = 1

/// The tiles of a width × height image, as SAHI's get_slice_bboxes: tiles of size × size from the top-left corner,
/// each `int(overlap · size)` pixels over the one before; a tile that would leave the image is moved back inside it
/// (so the last row and column end at the image's edges). An image smaller than a tile is one tile of its own size
/// on that side.
let tiles (width: int) (height: int) (size: int) (overlap: float) : Tile[] =
    if width < 1 || height < 1 then
        invalidArg (nameof width) (sprintf "image %dx%d" width height)

    if size < 1 then
        invalidArg (nameof size) (sprintf "tile size %d must be >= 1" size)

    if not (overlap >= 0.0 && overlap < 1.0) then
        invalidArg (nameof overlap) (sprintf "overlap %g must be in [0, 1)" overlap)

    let step = size - int (overlap * float size)

    let starts (extent: int) =
        [|
            let mutable start = 0
            let mutable finished = false

            while not finished do
                let stop = start + size

                if stop >= extent then
                    yield max 0 (extent - size)
                    finished <- true
                else
                    yield start
                    start <- start + step
        |]

    [|
        for y in starts height do
            for x in starts width ->
                {
                    X1 = x
                    Y1 = y
                    X2 = min width (x + size)
                    Y2 = min height (y + size)
                }
    |]

let private area (b: Box) =
    max 0.0 (b.X2 - b.X1) * max 0.0 (b.Y2 - b.Y1)

let private intersection (a: Box) (b: Box) =
    max 0.0 (min a.X2 b.X2 - max a.X1 b.X1)
    * max 0.0 (min a.Y2 b.Y2 - max a.Y1 b.Y1)

/// Intersection over union of two boxes (0 when both are empty).
let internal iou (a: Box) (b: Box) =
    let i = intersection a b
    let u = area a + area b - i
    if u > 0.0 then i / u else 0.0

/// Intersection over the smaller box's area, SAHI's IOS (0 when a box is empty).
let internal ios (a: Box) (b: Box) =
    let m = min (area a) (area b)
    if m > 0.0 then intersection a b / m else 0.0

/// The detections of all tiles as one list, by descending score: per class (or over all classes when `agnostic`),
/// the highest-scored box is kept and every remaining box that matches it (its IOS or IoU with the kept box above
/// the threshold) is dropped (NMS) or merged into it (NMM: one after another as SAHI does, each also matching the
/// growing union); then the next highest remaining box. Ties in score keep the input order. With IOS, the part of an
/// object cut by a tile edge matches the whole object the neighbouring tile saw, so the object is found once.
let merge (kind: Merge) (metric: Match) (threshold: float) (agnostic: bool) (boxes: Box[]) : Box[] =
    let matches a b =
        (if metric = Match.Iou then iou a b else ios a b) > threshold

    let order =
        boxes
        |> Array.mapi (fun i b -> i, b)
        |> Array.sortWith (fun (i, a) (j, b) ->
            let c = compare b.Score a.Score
            if c <> 0 then c else compare i j)
        |> Array.map snd

    let taken = Array.zeroCreate order.Length
    let out = ResizeArray()

    for k in 0 .. order.Length - 1 do
        if not taken.[k] then
            taken.[k] <- true
            let keep = order.[k]
            let mutable merged = keep

            for j in k + 1 .. order.Length - 1 do
                let other = order.[j]

                if not taken.[j] && (agnostic || other.Class = keep.Class) then
                    match kind with
                    | Merge.Nms ->
                        if matches keep other then
                            taken.[j] <- true
                    | _ ->
                        // matched against the kept box, merged into the union so far
                        if matches keep other then
                            taken.[j] <- true

                            if matches merged other then
                                merged <-
                                    { merged with
                                        X1 = min merged.X1 other.X1
                                        Y1 = min merged.Y1 other.Y1
                                        X2 = max merged.X2 other.X2
                                        Y2 = max merged.Y2 other.Y2
                                    }

            out.Add merged

    out.ToArray()

/// A detection of a tile (in the tile's pixels) in the image's pixels.
let internal toImage (tile: Tile) (b: Box) : Box =
    { b with
        X1 = b.X1 + float tile.X1
        Y1 = b.Y1 + float tile.Y1
        X2 = b.X2 + float tile.X1
        Y2 = b.Y2 + float tile.Y1
    }
