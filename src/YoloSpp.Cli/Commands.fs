/// Argument definitions of the `yolospp` runner (Argu). Each subcommand's arguments are one union type.
module YoloSpp.Cli.Commands

open Argu

type IouArgs =
    | [<MainCommand; Mandatory>] Boxes of box1: string * box2: string
    | Format of BoxFormatArg
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Boxes _ -> "two boxes, each four comma-separated numbers, e.g. 10,10,4,4 12,11,4,6"
            | Format _ -> "box layout: xywh (centre, size; default) or xyxy (corners)"

and BoxFormatArg =
    | Xywh
    | Xyxy

type HypArgs =
    | [<MainCommand; Mandatory>] File of path: string
    | Nc of int
    | Img_Size of int
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | File _ -> "hyp.yaml to check"
            | Nc _ -> "class count: print the values adjusted as train.py does (cls *= nc/80)"
            | Img_Size _ -> "image size: print the values adjusted as train.py does (obj *= size/320; default 512)"

type Args =
    | [<AltCommandLine("-V")>] Version
    | [<CliPrefix(CliPrefix.None)>] Iou of ParseResults<IouArgs>
    | [<CliPrefix(CliPrefix.None)>] Hyp of ParseResults<HypArgs>
    | [<CliPrefix(CliPrefix.None)>] Info of ParseResults<InfoCommand.InfoArgs>
    | [<CliPrefix(CliPrefix.None)>] Shapes of ParseResults<ShapesCommand.ShapesArgs>
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Version -> "print the version and exit"
            | Iou _ -> "IoU, GIoU, DIoU and CIoU of two boxes (the reference's bbox_iou)"
            | Hyp _ -> "check a hyperparameter file and print it (optionally adjusted for a dataset)"
            | Info _ -> "model summary of a Darknet cfg: layers, output shapes, parameters, GFLOPs"
            | Shapes _ -> "generate the default dataset: synthetic shapes in the YOLO layout (deterministic)"
