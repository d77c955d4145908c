/// Argument definitions of the `yolospp` runner (Argu). Each subcommand's arguments are one union type.
module YoloSpp.Cli.Commands

open YoloSpp.App
open Argu
open YoloSpp.Platform

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
            | File _ -> "hyp.yaml to check, or a built-in recipe to print: shapes or reference"
            | Nc _ -> "class count: print the values adjusted as train.py does (cls *= nc/80)"
            | Img_Size _ -> "image size: print the values adjusted as train.py does (obj *= size/320; default 512)"

type CheckDataArgs =
    | [<Mandatory>] Data of path: string
    | Max_Pixels of int64

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Data _ -> ".data file (classes, train, valid, names); its train and valid lists are scanned"
            | Max_Pixels _ -> EvalCommand.maxPixelsUsage

type PlotLabelsArgs =
    | [<Mandatory>] Data of path: string
    | Split of name: string
    | N of int
    | Img_Size of int
    | Out of dir: string
    | Exist_Ok
    | Max_Pixels of int64

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Data _ -> ".data file (classes, train, valid, names)"
            | Split _ -> "train (default) or valid: the list to draw"
            | N _ -> "images in the grid, 1 to 16 (default 16)"
            | Img_Size _ -> "tile size (long side), a multiple of 32 (default 512)"
            | Out _ ->
                "output folder for labels_sample.jpg and labels.png (default runs/labels; one that holds anything gives way to the next numbered folder, runs/labels2, ...)"
            | Exist_Ok -> "write into --out even when it holds earlier files (labels_sample.jpg and labels.png are replaced)"
            | Max_Pixels _ -> EvalCommand.maxPixelsUsage

type Voc2YoloArgs =
    | [<Mandatory>] Voc_Root of dir: string
    | [<Mandatory>] Classes of path: string
    | [<Mandatory>] Output of dir: string
    | Train_List of name: string
    | Val_List of name: string
    | Skip_Difficult

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Voc_Root _ -> "VOC year folder with Annotations/, JPEGImages/, ImageSets/Main/"
            | Classes _ -> "class table: pascal_voc_classes.json ({\"name\": 1-based id}) or a .names list"
            | Output _ -> "output root: train/ and val/ (images/, labels/), train.txt, val.txt, classes.names"
            | Train_List _ -> "training ids file in ImageSets/Main (default train.txt)"
            | Val_List _ -> "validation ids file in ImageSets/Main (default val.txt)"
            | Skip_Difficult -> "drop objects marked <difficult>1</difficult> (default: keep, as the reference)"

type Coco2YoloArgs =
    | [<Mandatory>] Json of path: string
    | Images of dir: string
    | [<Mandatory>] Output of dir: string
    | Val_Fraction of float

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Json _ -> "COCO instances json; give it twice for a train and a val file (the one named *val* is validation)"
            | Images _ -> "image folder of each --json, in order (default: beside the json, else its parent's <split>/ or images/<split>/)"
            | Output _ -> "new folder for images/, labels/, the lists, classes.names and dataset.data"
            | Val_Fraction _ -> "with one --json: every k-th image (k = 1/fraction) goes to val (default 0.1; 0: val = train)"

type Yolo2CocoArgs =
    | [<Mandatory>] Data of path: string
    | Split of name: string
    | [<Mandatory>] Output of path: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Data _ -> "dataset (.data or data.yaml) whose list is converted"
            | Split _ -> "train or valid (default valid)"
            | Output _ -> "COCO instances json to write (file_name relative to its folder; an existing file is refused)"

type DatasetCfgArgs =
    | [<Mandatory>] Root of dir: string
    | [<Mandatory>] Names of path: string
    | [<Mandatory>] Cfg of path: string
    | [<Mandatory>] Output of dir: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Root _ -> "YOLO dataset root with train/ and val/ (images/, labels/), e.g. voc2yolo's output"
            | Names _ -> "class names, one per line"
            | Cfg _ -> "Darknet cfg to rewrite for the class count (yolo classes, head filters)"
            | Output _ -> "folder for my_data.data, my_train_data.txt, my_val_data.txt, my_data_label.names, my_yolov3.cfg"

type CfgArgs =
    | [<Mandatory>] Topology of name: string
    | Classes of int
    | Img_Size of int
    | [<Mandatory>] Output of path: string

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Topology _ -> "built-in topology: yolov3-spp (the reference's yolov3-spp.cfg) or shapes-spp (the demo's)"
            | Classes _ -> "number of classes (default 80 for yolov3-spp, 5 for shapes-spp)"
            | Img_Size _ -> "[net] width and height, a multiple of 32 (default 608 for yolov3-spp, 160 for shapes-spp)"
            | Output _ -> "cfg file to write"

type Args =
    | [<AltCommandLine("-V")>] Version
    | [<CliPrefix(CliPrefix.None)>] Iou of ParseResults<IouArgs>
    | [<CliPrefix(CliPrefix.None)>] Hyp of ParseResults<HypArgs>
    | [<CliPrefix(CliPrefix.None)>] Info of ParseResults<InfoCommand.InfoArgs>
    | [<CliPrefix(CliPrefix.None)>] Train of ParseResults<TrainArguments.TrainArgs>
    | [<CliPrefix(CliPrefix.None)>] Check_Data of ParseResults<CheckDataArgs>
    | [<CliPrefix(CliPrefix.None)>] Plot_Labels of ParseResults<PlotLabelsArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("voc2yolo")>] Voc2Yolo of ParseResults<Voc2YoloArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("coco2yolo")>] Coco2Yolo of ParseResults<Coco2YoloArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("yolo2coco")>] Yolo2Coco of ParseResults<Yolo2CocoArgs>
    | [<CliPrefix(CliPrefix.None)>] Dataset_Cfg of ParseResults<DatasetCfgArgs>
    | [<CliPrefix(CliPrefix.None)>] Shapes of ParseResults<ShapesCommand.ShapesArgs>
    | [<CliPrefix(CliPrefix.None)>] Cocoeval of ParseResults<CocoEvalCommand.CocoEvalArgs>
    | [<CliPrefix(CliPrefix.None)>] Eval of ParseResults<EvalCommand.EvalArgs>
    | [<CliPrefix(CliPrefix.None)>] Detect of ParseResults<DetectCommand.DetectArgs>
    | [<CliPrefix(CliPrefix.None)>] Export of ParseResults<ExportCommand.ExportArgs>
    | [<CliPrefix(CliPrefix.None)>] Mpi_Check of ParseResults<MpiCheckCommand.MpiCheckArgs>
    | [<CliPrefix(CliPrefix.None)>] Cfg of ParseResults<CfgArgs>
    | [<CliPrefix(CliPrefix.None)>] Doctor of ParseResults<DoctorCommand.DoctorArgs>
    | [<CliPrefix(CliPrefix.None)>] Anchors of ParseResults<AnchorsCommand.AnchorsArgs>

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Version -> "print the version and exit"
            | Iou _ -> "IoU, GIoU, DIoU and CIoU of two boxes (the reference's bbox_iou)"
            | Hyp _ -> "check a hyperparameter file and print it (optionally adjusted for a dataset)"
            | Train _ -> "train a detector (the reference's train.py; defaults: the shapes demo)"
            | Info _ -> "model summary of a Darknet cfg: layers, output shapes, parameters, GFLOPs"
            | Check_Data _ -> "check a dataset: .data, names, every label row and image header (exit 2 on any problem)"
            | Plot_Labels _ -> "draw a dataset's first images with their labels, and its label statistics (labels.png), to check annotations"
            | Voc2Yolo _ -> "convert Pascal VOC XML to YOLO labels and lists (the reference's trans_voc2yolo)"
            | Coco2Yolo _ -> "convert COCO instances json to a YOLO dataset: images, labels, lists, names, .data"
            | Yolo2Coco _ -> "write a COCO instances json of a dataset's train or valid list"
            | Dataset_Cfg _ -> "write .data, lists, names and a cfg for a YOLO dataset (the reference's calculate_dataset)"
            | Shapes _ -> "generate the default dataset: synthetic shapes in the YOLO layout (deterministic)"
            | Cocoeval _ -> "COCO bbox evaluation of a detection json against a ground-truth json (pycocotools' numbers)"
            | Eval _ -> "evaluate weights on a dataset's valid list: COCO summary, per-class AP, timing (the reference's evaluate)"
            | Cfg _ -> "write a built-in network as a Darknet cfg file (yolov3-spp, shapes-spp)"
            | Doctor _ -> "check this machine first: versions, CPU, threads, CUDA, whether convolutions compute correctly, speed"
            | Anchors _ -> "k-means anchors for a dataset with the reference's genetic refinement and fitness report (kmean_anchors)"
            | Mpi_Check _ -> "check an MPI launch (mpirun -np N yolospp mpi-check): every rank, all-reduce, broadcast, all-gather, timing"
            | Export _ -> "write the network as an ONNX model with the heads decoded in the graph (the reference's export_onnx)"
            | Detect _ -> "detect objects in an image or folder: annotated images and detections.json (the reference's predict)"
