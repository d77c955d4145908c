/// What a COCO ground truth and detection list may hold that pycocotools evaluates without a word but that changes
/// the numbers: boxes of negative size, annotations of images or categories the file does not list, ids used twice,
/// images without a size, detections of unknown categories. Pure: the problems as one-line messages naming the file
/// and the entry; the runner prints them as warnings, or refuses under --strict.
module YoloSpp.Evaluation.CocoLint

open System.Collections.Generic

/// Problems shown per kind before the rest are counted.
[<Literal>]
let ShownPerKind = 5

/// The ids that occur more than once, in first-occurrence order.
let private duplicates (ids: int64 seq) =
    let seen = HashSet<int64>()
    let dup = HashSet<int64>()

    [
        for id in ids do
            if not (seen.Add id) && dup.Add id then
                yield id
    ]

/// Up to `ShownPerKind` messages of one kind, then a count of the rest.
let private capped (source: string) (what: string) (items: string list) =
    match items with
    | [] -> []
    | _ ->
        let shown = List.truncate ShownPerKind items

        [
            for i in shown -> sprintf "%s: %s" source i
            if items.Length > shown.Length then
                yield sprintf "%s: ... and %d more %s" source (items.Length - shown.Length) what
        ]

/// The ground truth's problems.
let groundTruth (source: string) (gt: CocoDataset) : string list =
    let images = HashSet<int64>(gt.Images |> Seq.map (fun i -> i.Id))
    let categories = HashSet<int64>(gt.Categories |> Seq.map (fun c -> c.Id))
    let anns = List.ofArray (Array.indexed gt.Annotations)

    [
        yield!
            capped
                source
                "duplicate image ids"
                [
                    for id in duplicates (gt.Images |> Seq.map (fun i -> i.Id)) -> sprintf "image id %d is used twice" id
                ]
        yield!
            capped
                source
                "duplicate category ids"
                [
                    for id in duplicates (gt.Categories |> Seq.map (fun c -> c.Id)) -> sprintf "category id %d is used twice" id
                ]
        yield!
            capped
                source
                "duplicate annotation ids"
                [
                    for id in duplicates (gt.Annotations |> Seq.map (fun a -> a.Id)) ->
                        sprintf "annotation id %d is used twice (pycocotools keeps one of them)" id
                ]
        yield!
            capped
                source
                "images without a size"
                [
                    for i, img in Array.indexed gt.Images do
                        if img.Width <= 0 || img.Height <= 0 then
                            yield sprintf "images[%d] (id %d): size %dx%d is not positive" i img.Id img.Width img.Height
                ]
        yield!
            capped
                source
                "boxes of negative size"
                [
                    for i, a in anns do
                        if a.Bbox.W < 0.0 || a.Bbox.H < 0.0 then
                            yield sprintf "annotations[%d] (id %d): bbox %gx%g has a negative size" i a.Id a.Bbox.W a.Bbox.H
                ]
        yield!
            capped
                source
                "annotations of unknown images"
                [
                    for i, a in anns do
                        if not (images.Contains a.ImageId) then
                            yield sprintf "annotations[%d] (id %d): image_id %d is not in images (never evaluated)" i a.Id a.ImageId
                ]
        yield!
            capped
                source
                "annotations of unknown categories"
                [
                    for i, a in anns do
                        if not (categories.Contains a.CategoryId) then
                            yield sprintf "annotations[%d] (id %d): category_id %d is not in categories (never evaluated)" i a.Id a.CategoryId
                ]
    ]

/// The detection list's problems against its ground truth (unknown images are already refused when it is read).
let detections (source: string) (gt: CocoDataset) (dt: CocoDetection[]) : string list =
    let categories = HashSet<int64>(gt.Categories |> Seq.map (fun c -> c.Id))

    [
        yield!
            capped
                source
                "detections of unknown categories"
                [
                    for i, d in Array.indexed dt do
                        if not (categories.Contains d.CategoryId) then
                            yield sprintf "detection %d: category_id %d is not a category of the ground truth (never evaluated)" i d.CategoryId
                ]
        yield!
            capped
                source
                "detections of negative size"
                [
                    for i, d in Array.indexed dt do
                        if d.Bbox.W < 0.0 || d.Bbox.H < 0.0 then
                            yield sprintf "detection %d: bbox %gx%g has a negative size" i d.Bbox.W d.Bbox.H
                ]
    ]
