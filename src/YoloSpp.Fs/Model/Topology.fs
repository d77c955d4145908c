/// The YOLOv3-SPP topology as data: a Darknet-53-style residual backbone, the SPP block (max-pools 5/9/13),
/// the FPN head and three [yolo] layers, with widths and residual repeats as parameters. `yolov3Spp` is the
/// reference's yolov3-spp.cfg (module for module); `shapesSpp` is the training demo's shallow, narrow variant.
module internal YoloSpp.Model.Topology

open YoloSpp.Model.Cfg
open YoloSpp.Model.CfgGraph

/// What varies between members of the family.
type SppSpec =
    {
        /// output channels of the stem conv and of the five downsampling stages (yolov3-spp: 32, 64, 128, 256, 512, 1024)
        Widths: int list
        /// residual blocks per stage (yolov3-spp: 1, 2, 8, 8, 4)
        Repeats: int list
        /// nine anchors (w, h) in pixels, smallest first; masks 6-8 go to stride 32, 3-5 to 16, 0-2 to 8
        Anchors: (float * float) list
        Classes: int
        /// [net] width and height
        ImageSize: int
    }

/// The COCO anchors of yolov3-spp.cfg.
let cocoAnchors =
    [
        10., 13.
        16., 30.
        33., 23.
        30., 61.
        62., 45.
        59., 119.
        116., 90.
        156., 198.
        373., 326.
    ]

/// yolov3-spp.cfg with `classes` classes (608 px [net] size, as the reference's file).
let yolov3SppSpec (classes: int) =
    {
        Widths = [ 32; 64; 128; 256; 512; 1024 ]
        Repeats = [ 1; 2; 8; 8; 4 ]
        Anchors = cocoAnchors
        Classes = classes
        ImageSize = 608
    }

/// The demo's shapes-spp.cfg: widths ÷8, repeats 1-1-2-2-1, square anchors 8 → 72 px (geometric), 160 px.
let shapesSppSpec (classes: int) =
    {
        Widths = [ 4; 8; 16; 32; 64; 128 ]
        Repeats = [ 1; 1; 2; 2; 1 ]
        Anchors = [ for a in [ 8.; 11.; 14.; 18.; 24.; 32.; 42.; 55.; 72. ] -> a, a ]
        Classes = classes
        ImageSize = 160
    }

/// Checks a spec: six widths (even from the first stage on), five repeats ≥ 1, nine anchors, classes ≥ 1.
let validate (s: SppSpec) : Result<SppSpec, string> =
    if s.Widths.Length <> 6 then
        Error(sprintf "widths: expected 6 (stem + 5 stages), got %d" s.Widths.Length)
    elif s.Widths |> List.exists (fun w -> w < 2 || w % 2 <> 0) then
        Error(sprintf "widths must be even and ≥ 2: %A" s.Widths)
    elif s.Repeats.Length <> 5 then
        Error(sprintf "repeats: expected 5 stages, got %d" s.Repeats.Length)
    elif s.Repeats |> List.exists (fun r -> r < 1) then
        Error(sprintf "repeats must be ≥ 1: %A" s.Repeats)
    elif s.Anchors.Length <> 9 then
        Error(sprintf "anchors: expected 9, got %d" s.Anchors.Length)
    elif s.Classes < 1 then
        Error(sprintf "classes must be ≥ 1, got %d" s.Classes)
    elif (checkImageSize "image size" s.ImageSize).IsError then
        Error(sprintf "image size must be a positive multiple of %d, got %d" GridStride s.ImageSize)
    else
        Ok s

/// The network of a spec, module for module as a cfg file would give it (every ModuleDef's Line is 0).
let build (spec: SppSpec) : NetCfg =
    let s =
        match validate spec with
        | Ok s -> s
        | Error e -> invalidArg "spec" e

    let layers = ResizeArray<Layer>()

    let add l =
        layers.Add l
        layers.Count - 1

    let conv f size =
        add (
            Convolutional
                {
                    BatchNormalize = true
                    Filters = f
                    Size = size
                    Stride = 1
                    Pad = true
                    Activation = Leaky
                }
        )
        |> ignore

    let down f =
        add (
            Convolutional
                {
                    BatchNormalize = true
                    Filters = f
                    Size = 3
                    Stride = 2
                    Pad = true
                    Activation = Leaky
                }
        )
        |> ignore

    let route (ls: int list) = add (Route { Layers = ls }) |> ignore
    let outputs = s.Classes + 5

    let head (mask: int list) =
        add (
            Convolutional
                {
                    BatchNormalize = false
                    Filters = mask.Length * outputs
                    Size = 1
                    Stride = 1
                    Pad = true
                    Activation = Linear
                }
        )
        |> ignore

        add (
            Yolo
                {
                    Mask = mask
                    Anchors = s.Anchors
                    Classes = s.Classes
                }
        )
        |> ignore
    // backbone: stem, then per stage a stride-2 conv and residual blocks (1x1 half width, 3x3 full width, shortcut)
    let widths = Array.ofList s.Widths
    conv widths.[0] 3

    let stageEnds =
        [|
            for stage in 0..4 do
                let w = widths.[stage + 1]
                down w

                for _ in 1 .. s.Repeats.[stage] do
                    conv (w / 2) 1
                    conv w 3
                    add (Shortcut { From = [ -3 ]; Activation = Linear }) |> ignore

                yield layers.Count - 1
        |]
    // stride 32: three convs, SPP, four convs, prediction
    let w5 = widths.[5]
    conv (w5 / 2) 1
    conv w5 3
    conv (w5 / 2) 1
    add (MaxPool { Size = 5; Stride = 1 }) |> ignore
    route [ -2 ]
    add (MaxPool { Size = 9; Stride = 1 }) |> ignore
    route [ -4 ]
    add (MaxPool { Size = 13; Stride = 1 }) |> ignore
    route [ -1; -3; -5; -6 ]
    conv (w5 / 2) 1
    conv w5 3
    conv (w5 / 2) 1
    conv w5 3
    head [ 6; 7; 8 ]
    // strides 16 and 8: from the last 1x1 of the head above, upsample, concatenate with the backbone, five convs
    for w, skip, mask in
        [
            widths.[4], stageEnds.[3], [ 3; 4; 5 ]
            widths.[3], stageEnds.[2], [ 0; 1; 2 ]
        ] do
        route [ -4 ]
        conv (w / 2) 1
        add (Upsample { Stride = 2 }) |> ignore
        route [ -1; skip ]
        conv (w / 2) 1
        conv w 3
        conv (w / 2) 1
        conv w 3
        conv (w / 2) 1
        conv w 3
        head mask

    {
        Net =
            {
                Line = 0
                Batch = 16
                Subdivisions = 1
                Width = Some s.ImageSize
                Height = Some s.ImageSize
                Channels = 3
                Other = []
            }
        Modules = layers |> Seq.mapi (fun i l -> { Index = i; Line = 0; Layer = l }) |> List.ofSeq
    }

/// The named topologies: "yolov3-spp" and "shapes-spp".
let named (name: string) (classes: int) : Result<NetCfg, string> =
    match name.ToLowerInvariant() with
    | "yolov3-spp" -> Ok(build (yolov3SppSpec classes))
    | "shapes-spp" -> Ok(build (shapesSppSpec classes))
    | _ -> Error(sprintf "unknown topology '%s' (known: yolov3-spp, shapes-spp)" name)

/// Names accepted by `named`.
let names = [ "yolov3-spp"; "shapes-spp" ]

/// Modules of yolov3-spp's Darknet-53 backbone (0..74: the stem, five downsampling convs and 23 residual blocks),
/// the modules the reference's train.py freezes when it fine-tunes.
let darknet53Modules = 75

/// Whether a cfg begins with yolov3-spp's Darknet-53 backbone, module for module (kinds, filters, sizes, strides,
/// shortcuts): where freezing modules 0..74 freezes exactly that backbone. Decided by structure, whatever the
/// head, class count or module count.
let hasDarknet53Backbone (cfg: NetCfg) : bool =
    let layers (c: NetCfg) =
        c.Modules |> List.truncate darknet53Modules |> List.map (fun m -> m.Layer)

    cfg.Modules.Length > darknet53Modules
    && layers cfg = layers (build (yolov3SppSpec 1))
