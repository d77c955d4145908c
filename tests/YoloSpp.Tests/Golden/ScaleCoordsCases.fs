/// Golden kind `scale_coords`: boxes from the network input back to the original image, float32, abs 1e-4.
module YoloSpp.Tests.Golden.ScaleCoordsCases

open System.Text.Json
open TorchSharp
open YoloSpp.Geometry
open YoloSpp.Tests.Golden.Json

let run (case: JsonElement) =
    use _ = torch.NewDisposeScope()

    let hw name =
        let a = items (prop name case) in a.[0].GetInt32(), a.[1].GetInt32()

    let boxes = tensorAs torch.float32 None (prop "boxes_xyxy_in" case)

    let ratioPad =
        tryProp "ratio_pad" case
        |> Option.map (fun rp ->
            let r = items rp
            let pad = items r.[1]

            ({
                Gain = number (items r.[0]).[0]
                PadX = number pad.[0]
                PadY = number pad.[1]
            }
            : Boxes.RatioPad))

    let out = Boxes.scaleCoords (hw "img1_shape_hw") boxes (hw "img0_shape_hw") ratioPad
    close "boxes_out" 1e-4 0.0 out (tensorAs torch.float32 None (prop "boxes_out" case))
    close "boxes_out_round" 1e-4 0.0 (out.round ()) (tensorAs torch.float32 None (prop "boxes_out_round" case))
