/// COCO instances ↔ YOLO labels, pure: `coco2yolo` (ultralytics' convert_coco rules: crowd boxes skipped, [x, y, w, h]
/// → normalised centre and size, boxes without area skipped, repeated rows dropped) with category ids mapped to
/// contiguous class indices in id order, and `yolo2coco` (1-based image, annotation and category ids, every class a
/// category, so that the two round-trip and ultralytics' `category_id - 1` reads the same classes).
module internal YoloSpp.Data.CocoConvert

open System
open YoloSpp
open YoloSpp.Data.Labels
open YoloSpp.Evaluation

/// One image of a converted COCO file, in the file's order.
type ConvertedImage =
    {
        /// `file_name` as the json gives it (may hold sub-folders)
        FileName: string
        Width: int
        Height: int
        /// its objects; empty for an image without annotations (it is still listed)
        Rows: LabelRow[]
        /// the JSON path of the image entry, for messages
        JsonPath: string
    }

/// What `toYolo` gives: the class names (categories in id order), the images, and what was left out or changed.
type Conversion =
    {
        Names: string[]
        /// category id → class index, in id order
        CategoryIds: int64[]
        Images: ConvertedImage[]
        /// `iscrowd` annotations (skipped, as ultralytics does)
        Crowd: int
        /// boxes with zero or negative width or height (skipped)
        Empty: int
        /// rows repeating an earlier row of the same image (dropped)
        Duplicate: int
        /// boxes reaching outside their image, clipped to it (YOLO rows must lie in [0, 1])
        Clipped: int
    }

/// Converts a parsed instances file; `file` names it in errors (with the JSON path of each fault): duplicate image or
/// category ids, an image without a positive size, an annotation on an unknown image or category.
let toYolo (file: string) (gt: CocoDataset) : Result<Conversion, SourceError list> =
    let errors = ResizeArray<SourceError>()

    let err (reason: string) =
        errors.Add
            {
                File = file
                Line = 0
                Reason = reason
            }

    let firstIndex (ids: int64[]) (what: string) =
        let seen = Collections.Generic.Dictionary<int64, int>()

        ids
        |> Array.iteri (fun i id ->
            match seen.TryGetValue id with
            | true, j -> err (sprintf "$.%s[%d].id: duplicate id %d (also $.%s[%d])" what i id what j)
            | _ -> seen[id] <- i)

        seen

    let imageIndex = firstIndex (gt.Images |> Array.map (fun i -> i.Id)) "images"
    firstIndex (gt.Categories |> Array.map (fun c -> c.Id)) "categories" |> ignore

    let categories =
        gt.Categories
        |> Array.distinctBy (fun c -> c.Id)
        |> Array.sortBy (fun c -> c.Id)

    let categoryIndex = dict (categories |> Array.mapi (fun i c -> c.Id, i))

    gt.Images
    |> Array.iteri (fun i img ->
        if img.Width <= 0 || img.Height <= 0 then
            err (sprintf "$.images[%d]: width %d and height %d must be positive" i img.Width img.Height)

        if String.IsNullOrWhiteSpace img.FileName then
            err (sprintf "$.images[%d].file_name: empty" i))

    let rows = Array.init gt.Images.Length (fun _ -> ResizeArray<LabelRow>())
    let mutable crowd, empty, duplicate, clipped = 0, 0, 0, 0

    gt.Annotations
    |> Array.iteri (fun k a ->
        match imageIndex.TryGetValue a.ImageId, categoryIndex.TryGetValue a.CategoryId with
        | (false, _), _ -> err (sprintf "$.annotations[%d].image_id: no image has id %d" k a.ImageId)
        | _, (false, _) -> err (sprintf "$.annotations[%d].category_id: no category has id %d" k a.CategoryId)
        | (true, i), (true, c) ->
            let img = gt.Images[i]

            if a.IsCrowd then
                crowd <- crowd + 1
            elif img.Width > 0 && img.Height > 0 then
                let w, h = float img.Width, float img.Height
                let b = a.Bbox
                let x1, y1 = max 0.0 b.X, max 0.0 b.Y
                let x2, y2 = min w (b.X + b.W), min h (b.Y + b.H)

                if b.W <= 0.0 || b.H <= 0.0 || x2 <= x1 || y2 <= y1 then
                    empty <- empty + 1
                else
                    if x1 <> b.X || y1 <> b.Y || x2 <> b.X + b.W || y2 <> b.Y + b.H then
                        clipped <- clipped + 1

                    let row =
                        {
                            Class = c
                            Cx = (x1 + x2) / 2.0 / w
                            Cy = (y1 + y2) / 2.0 / h
                            W = (x2 - x1) / w
                            H = (y2 - y1) / h
                        }

                    if rows[i].Contains row then
                        duplicate <- duplicate + 1
                    else
                        rows[i].Add row)

    if errors.Count > 0 then
        Error(List.ofSeq errors)
    else
        Ok
            {
                Names = categories |> Array.map (fun c -> c.Name)
                CategoryIds = categories |> Array.map (fun c -> c.Id)
                Images =
                    gt.Images
                    |> Array.mapi (fun i img ->
                        {
                            FileName = img.FileName
                            Width = img.Width
                            Height = img.Height
                            Rows = rows[i].ToArray()
                            JsonPath = sprintf "$.images[%d]" i
                        })
                Crowd = crowd
                Empty = empty
                Duplicate = duplicate
                Clipped = clipped
            }

/// A YOLO dataset as COCO instances: image ids 1..N in the given order, annotation ids 1.., category id = class + 1
/// for every name (classes without objects included), boxes as the evaluator's ground truth computes them.
let fromYolo (names: string[]) (images: CocoGroundTruth.SourceImage[]) : CocoDataset =
    let gt = CocoGroundTruth.convert names images

    { gt with
        Images = gt.Images |> Array.map (fun i -> { i with Id = i.Id + 1L })
        Annotations =
            gt.Annotations
            |> Array.map (fun a ->
                { a with
                    ImageId = a.ImageId + 1L
                    CategoryId = a.CategoryId + 1L
                })
        Categories =
            names
            |> Array.mapi (fun c n -> ({ Id = int64 (c + 1); Name = n }: CocoCategory))
    }
