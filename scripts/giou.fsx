// A GIoU and a YOLOv3 loss from an F# script, over the built library.
//   dotnet fsi build.fsx build && dotnet fsi scripts/giou.fsx
#load "yolospp.fsx"

open TorchSharp
open YoloSpp.Geometry
open YoloSpp.Training

// two boxes as (cx, cy, w, h): IoU family of the reference's bbox_iou
let box1 = torch.tensor([| 10.0; 10.0; 4.0; 4.0 |]).view (1L, 4L)
let box2 = torch.tensor([| 12.0; 11.0; 4.0; 6.0 |]).view (1L, 4L)

for kind in [ Boxes.Iou; Boxes.GIoU; Boxes.DIoU; Boxes.CIoU ] do
    printfn "%-5s %.6f" (sprintf "%A" kind) ((Boxes.bboxIou kind Boxes.Xywh box1 box2).item<float> ())

// the loss of random head outputs for a 128x128 input with 3 classes and two ground-truth boxes
let nc, imgSize = 3, 128
let strides = [| 32.0; 16.0; 8.0 |]

let anchors =
    [|
        [| 116.0; 90.0; 156.0; 198.0; 373.0; 326.0 |]
        [| 30.0; 61.0; 62.0; 45.0; 59.0; 119.0 |]
        [| 10.0; 13.0; 16.0; 30.0; 33.0; 23.0 |]
    |]
    |> Array.mapi (fun i a -> torch.tensor(a).view (3L, 2L) / strides.[i])

let g = new torch.Generator(0UL)

let p =
    strides
    |> Array.map (fun s -> let n = int64 (float imgSize / s) in torch.randn([| 2L; 3L; n; n; int64 (nc + 5) |], generator = g).requires_grad_ (true))

let targets =
    torch.tensor([| 0.0f; 1.0f; 0.5f; 0.5f; 0.4f; 0.3f; 1.0f; 2.0f; 0.25f; 0.7f; 0.1f; 0.2f |]).view (2L, 6L)

let hyp = Hyp.defaults |> Hyp.adjustForDataset nc imgSize |> Hyp.toLossHyp
let loss = Loss.computeLoss hyp 1.0 { AnchorVecs = anchors; Nc = nc } p targets
loss.Total.backward ()

printfn
    "loss: box %.4f  obj %.4f  cls %.4f  total %.4f  |grad| %.4f"
    (loss.Box.item<float32> ())
    (loss.Obj.item<float32> ())
    (loss.Cls.item<float32> ())
    (loss.Total.item<float32> ())
    (p |> Array.sumBy (fun t -> t.grad.norm().item<float32> ()))
