/// Box conversions and scale_coords: inverses, clipping, inputs left untouched.
module YoloSpp.Tests.Geometry.BoxTests

open System
open System.IO
open Expecto
open TorchSharp
open type TorchSharp.torch.TensorIndex
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Geometry
open YoloSpp.Training
open YoloSpp.Tests

let tests =
    testList
        "boxes"
        [
            test "xywh2xyxy and xyxy2xywh are inverse" {
                use _ = torch.NewDisposeScope()
                let b = torch.tensor([| 10.0; 20.0; 4.0; 6.0; -3.0; 2.5; 1.0; 0.5 |]).view (2L, 4L)
                Expect.isTrue (torch.allclose ((Boxes.xyxy2xywh (Boxes.xywh2xyxy b)), b)) "round trip"
                Expect.sequenceEqual ((Boxes.xywh2xyxy b).[0L].data<float>().ToArray()) [| 8.0; 17.0; 12.0; 23.0 |] "corners"
            }
            test "scaleCoords leaves its input untouched and clips to the original image" {
                use _ = torch.NewDisposeScope()
                let b = torch.tensor([| -10.0f; 5.0f; 700.0f; 300.0f |]).view (1L, 4L)
                let before = b.clone ()
                let out = Boxes.scaleCoords (512, 512) b (375, 500) Option.None
                Expect.isTrue (b.eq(before).all().item<bool> ()) "input unchanged"
                let o = out.[0L].data<float32>().ToArray()
                Expect.equal o.[0] 0.0f "x1 clipped"
                Expect.equal o.[2] 500.0f "x2 clipped"
            }
        ]
