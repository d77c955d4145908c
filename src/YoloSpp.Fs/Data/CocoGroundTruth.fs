/// COCO ground truth of a YOLO dataset: the reference's convert_to_coco_api (train_val_utils/coco_utils.py).
/// Minimal plain records; the evaluator (Evaluation/) has its own, to be unified later.
module YoloSpp.Data.CocoGroundTruth

open YoloSpp.Data.Labels

/// An image: id = its index in the dataset's order, original size.
type CocoImage = { Id: int; FileName: string; Height: int; Width: int }

/// An annotation: absolute (xmin, ymin, w, h) in original pixels.
type CocoAnnotation =
    { Id: int; ImageId: int; CategoryId: int; X: float; Y: float; W: float; H: float; Area: float; IsCrowd: int }

/// A category: the class index.
type CocoCategory = { Id: int }

type CocoDataset = { Images: CocoImage[]; Annotations: CocoAnnotation[]; Categories: CocoCategory[] }

/// One dataset image: file, original (h0, w0) and its normalised label rows.
type SourceImage = { FileName: string; Height: int; Width: int; Rows: LabelRow[] }

/// convert_to_coco_api: image ids are dataset indices (0-based, the dataset's order, which the eval loader's
/// image index follows); annotation ids start at 1; category_id is the 0-based class index as in the reference
/// (which writes int(obj[0]), no +1); area = w·h; iscrowd 0; categories are the classes that occur, sorted, as
/// the reference builds them from a set of the classes seen.
let convert (images: SourceImage[]) : CocoDataset =
    let anns =
        images
        |> Array.mapi (fun i img ->
            img.Rows
            |> Array.map (fun r ->
                let w, h = r.W * float img.Width, r.H * float img.Height
                let x, y = (r.Cx - 0.5 * r.W) * float img.Width, (r.Cy - 0.5 * r.H) * float img.Height
                i, r.Class, x, y, w, h))
        |> Array.concat
        |> Array.mapi (fun k (i, c, x, y, w, h) ->
            { Id = k + 1; ImageId = i; CategoryId = c; X = x; Y = y; W = w; H = h; Area = w * h; IsCrowd = 0 })
    { Images = images |> Array.mapi (fun i img -> { Id = i; FileName = img.FileName; Height = img.Height; Width = img.Width })
      Annotations = anns
      Categories = anns |> Array.map (fun a -> a.CategoryId) |> Array.distinct |> Array.sort |> Array.map (fun c -> { Id = c }) }
