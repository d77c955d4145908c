/// The COCO bbox data the evaluator reads and writes, as plain records (the fields of a COCO json file).
namespace YoloSpp.Evaluation

/// A box as COCO stores it: top-left corner, width and height, in absolute pixels.
[<Struct>]
type CocoBox =
    {
        /// left edge
        X: float
        /// top edge
        Y: float
        /// width
        W: float
        /// height
        H: float
    }

/// An entry of a COCO file's `images`.
type CocoImage =
    {
        /// image id (`id`)
        Id: int64
        /// `width` in pixels
        Width: int
        /// `height` in pixels
        Height: int
        /// `file_name` ("" when the file has none)
        FileName: string
    }

/// An entry of a COCO file's `categories`.
type CocoCategory =
    {
        /// category id (`id`)
        Id: int64
        /// `name`
        Name: string
    }

/// An entry of a COCO file's `annotations` (a ground-truth box).
type CocoAnnotation =
    {
        /// annotation id (`id`); pycocotools records matches by id, so 0 reads as "unmatched" there
        Id: int64
        /// `image_id`
        ImageId: int64
        /// `category_id`
        CategoryId: int64
        /// `bbox` [x, y, w, h]
        Bbox: CocoBox
        /// `area`: the stored value decides the area range (not bbox w·h)
        Area: float
        /// `iscrowd`: a crowd region is ignored and may absorb many detections
        IsCrowd: bool
    }

/// A COCO ground-truth dataset (the parts bbox evaluation uses).
type CocoDataset =
    {
        /// `images`: the evaluated image set
        Images: CocoImage[]
        /// `categories`: the evaluated category set
        Categories: CocoCategory[]
        /// `annotations`
        Annotations: CocoAnnotation[]
    }

/// One entry of a COCO detection result list.
type CocoDetection =
    {
        /// `image_id` (must be an image of the ground truth)
        ImageId: int64
        /// `category_id`
        CategoryId: int64
        /// `bbox` [x, y, w, h]
        Bbox: CocoBox
        /// `score`
        Score: float
    }

/// AP of one category over all areas at maxDets 100.
type CategoryAp =
    {
        /// category id
        CategoryId: int64
        /// category name
        Name: string
        /// AP@[.50:.95]; −1 when the category has no ground truth
        Ap: float
        /// AP@.50; −1 when the category has no ground truth
        Ap50: float
    }

/// Everything `evaluate` returns.
type CocoResult =
    {
        /// the 12 numbers of pycocotools' `stats`: AP@[.50:.95], AP@.50, AP@.75, AP small, medium, large,
        /// AR@1, AR@10, AR@100, AR small, medium, large (all at maxDets 100 unless named); −1 = undefined
        Stats: float[]
        /// the table pycocotools' summarize() prints, one line per stat, each ending in a newline
        Summary: string
        /// per-category AP, in ascending category id
        PerCategory: CategoryAp[]
        /// accumulate()'s precision [T, R, K, A, M] flattened row-major (T IoU thresholds, R recall thresholds,
        /// K categories in ascending id, A area ranges all/small/medium/large, M maxDets 1/10/100); −1 = undefined
        Precision: float[]
        /// accumulate()'s recall [T, K, A, M] flattened row-major; −1 = undefined
        Recall: float[]
    }
