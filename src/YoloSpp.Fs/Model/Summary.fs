/// Shapes and operation counts of a cfg's layers at a given input size, computed from the cfg alone (no forward
/// pass), for the model summary (`yolospp info`) and for checking a network against its cfg.
module internal YoloSpp.Model.Summary

open YoloSpp.Model.Cfg
open YoloSpp.Model.CfgGraph

/// One layer's output at a given input size.
type LayerShape =
    {
        Index: int
        /// the cfg section name: convolutional, shortcut, route, maxpool, upsample, yolo
        Type: string
        /// [channels; h; w] for feature maps, [anchors; h; w; classes + 5] for yolo layers (batch excluded)
        Shape: int64[]
        /// multiply-accumulates of the layer at this size (convolutions only; the rest is negligible)
        Macs: int64
    }

/// The section name of a layer.
let typeName =
    function
    | Convolutional _ -> "convolutional"
    | Shortcut _ -> "shortcut"
    | Route _ -> "route"
    | MaxPool _ -> "maxpool"
    | Upsample _ -> "upsample"
    | Yolo _ -> "yolo"

let private convOut (size: int64) (k: int) (stride: int) (pad: int) =
    (size + 2L * int64 pad - int64 k) / int64 stride + 1L

/// Output shapes of every layer for an input of height h and width w.
let layerShapes (cfg: NetCfg) (h: int, w: int) : LayerShape list =
    let shapes = ResizeArray<int64[]>()
    let mutable current = [| int64 cfg.Net.Channels; int64 h; int64 w |]
    let result = ResizeArray<LayerShape>()

    for m in cfg.Modules do
        let input = current

        let shape, macs =
            match m.Layer with
            | Convolutional c ->
                let pad = if c.Pad then c.Size / 2 else 0

                let oh, ow =
                    convOut input.[1] c.Size c.Stride pad, convOut input.[2] c.Size c.Stride pad

                [| int64 c.Filters; oh; ow |], int64 c.Filters * oh * ow * input.[0] * int64 (c.Size * c.Size)
            | Shortcut _ -> input, 0L
            | Route _ ->
                let parts = references m |> List.map (fun i -> shapes.[i])
                let first = List.head parts
                [| parts |> List.sumBy (fun s -> s.[0]); first.[1]; first.[2] |], 0L
            | MaxPool p ->
                if p.Size = 2 && p.Stride = 1 then
                    input, 0L // zero-padded bottom/right: size kept
                else
                    let pad = (p.Size - 1) / 2

                    [|
                        input.[0]
                        convOut input.[1] p.Size p.Stride pad
                        convOut input.[2] p.Size p.Stride pad
                    |],
                    0L
            | Upsample u -> [| input.[0]; input.[1] * int64 u.Stride; input.[2] * int64 u.Stride |], 0L
            | Yolo y -> [| int64 y.Mask.Length; input.[1]; input.[2]; int64 (y.Classes + 5) |], 0L
        // a yolo layer passes its input through: the next layer sees the prediction conv's output
        let output =
            match m.Layer with
            | Yolo _ -> input
            | _ -> shape

        shapes.Add output
        current <- output

        result.Add
            {
                Index = m.Index
                Type = typeName m.Layer
                Shape = shape
                Macs = macs
            }

    List.ofSeq result

/// GFLOPs of a forward pass at (h, w), counted as 2 × the convolutions' multiply-accumulates.
let gflops (cfg: NetCfg) (h: int, w: int) : float =
    layerShapes cfg (h, w)
    |> List.sumBy (fun l -> float l.Macs)
    |> fun macs -> 2.0 * macs / 1e9
