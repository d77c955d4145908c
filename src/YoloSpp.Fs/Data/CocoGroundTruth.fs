/// COCO ground truth of a YOLO dataset: the reference's convert_to_coco_api (train_utils/coco_utils.py).
/// It produces the evaluator's records (Evaluation/CocoTypes.fs).
module internal YoloSpp.Data.CocoGroundTruth

open YoloSpp.Data.Labels
open YoloSpp.Evaluation

/// One dataset image: file, original (h0, w0) and its normalised label rows.
type SourceImage =
    {
        FileName: string
        Height: int
        Width: int
        Rows: LabelRow[]
    }

/// convert_to_coco_api: image ids are dataset indices (0-based, the dataset's order, which the eval loader's
/// image index follows); annotation ids start at 1; category_id is the 0-based class index as in the reference
/// (which writes int(obj[0]), no +1); area = w·h; iscrowd 0; categories are the classes that occur, sorted, as
/// the reference builds them from a set of the classes seen.
/// `names.[c]` names category c (a missing name is the class index as text).
let convert (names: string[]) (images: SourceImage[]) : CocoDataset =
    let anns =
        images
        |> Array.mapi (fun i img ->
            img.Rows
            |> Array.map (fun r ->
                let w, h = r.W * float img.Width, r.H * float img.Height

                let x, y =
                    (r.Cx - 0.5 * r.W) * float img.Width, (r.Cy - 0.5 * r.H) * float img.Height

                i, r.Class, x, y, w, h))
        |> Array.concat
        |> Array.mapi (fun k (i, c, x, y, w, h) ->
            ({
                Id = int64 (k + 1)
                ImageId = int64 i
                CategoryId = int64 c
                Bbox = { X = x; Y = y; W = w; H = h }
                Area = w * h
                IsCrowd = false
            }
            : CocoAnnotation))

    let name (c: int64) =
        if c >= 0L && c < int64 names.Length then
            names.[int c]
        else
            string c

    {
        Images =
            images
            |> Array.mapi (fun i img ->
                ({
                    Id = int64 i
                    FileName = img.FileName
                    Height = img.Height
                    Width = img.Width
                }
                : CocoImage))
        Annotations = anns
        Categories =
            anns
            |> Array.map (fun a -> a.CategoryId)
            |> Array.distinct
            |> Array.sort
            |> Array.map (fun c -> ({ Id = c; Name = name c }: CocoCategory))
    }
