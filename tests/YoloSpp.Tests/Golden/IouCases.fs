/// Golden kind `iou`: bbox_iou (xywh and xyxy), wh_iou and box_iou in float64, abs 1e-12.
module YoloSpp.Tests.Golden.IouCases

open System.Text.Json
open TorchSharp
open YoloSpp.Geometry
open YoloSpp.Tests.Golden.Json

let private tol = 1e-12

let run (case: JsonElement) =
    use _ = torch.NewDisposeScope()
    let pairs (field: string) = items (prop field case)

    let boxes (ps: JsonElement[]) (name: string) =
        torch.stack (ps |> Array.map (fun p -> tensor64 (prop name p)), 0)

    let check (field: string) (format: Boxes.BoxFormat) (kinds: (string * Boxes.IouKind) list) =
        let ps = pairs field

        if ps.Length > 0 then
            let b1, b2 = boxes ps "box1", boxes ps "box2"

            for key, kind in kinds do
                let expected = torch.tensor (ps |> Array.map (fun p -> num key p))
                close (sprintf "%s.%s" field key) tol 0.0 (Boxes.bboxIou kind format b1 b2) expected

    check "xywh_pairs" Boxes.Xywh [ "iou", Boxes.Iou; "giou", Boxes.GIoU; "diou", Boxes.DIoU; "ciou", Boxes.CIoU ]
    check "xyxy_pairs" Boxes.Xyxy [ "iou", Boxes.Iou; "giou", Boxes.GIoU ]

    tryProp "wh_iou" case
    |> Option.iter (fun w -> close "wh_iou" tol 0.0 (Boxes.whIou (tensor64 (prop "anchors" w)) (tensor64 (prop "wh" w))) (tensor64 (prop "iou" w)))

    tryProp "box_iou" case
    |> Option.iter (fun w -> close "box_iou" tol 0.0 (Boxes.boxIou (tensor64 (prop "box1_xyxy" w)) (tensor64 (prop "box2_xyxy" w))) (tensor64 (prop "iou" w)))
