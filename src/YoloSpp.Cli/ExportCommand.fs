/// `yolospp export`: the network as an ONNX model (the reference's export_onnx.py), for ONNX Runtime.
module YoloSpp.Cli.ExportCommand

open YoloSpp.App
open System
open System.IO
open Argu
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Export
open YoloSpp.Model
open YoloSpp.Training

open YoloSpp.Platform

let private defaults = OnnxExportOptions()
let private nmsDefaults = OnnxNmsOptions()

let private calibrationImages = 64

type ExportArgs =
    | Cfg of path: string
    | [<Mandatory>] Weights of path: string
    | [<Mandatory>] Output of path: string
    | Names of path: string
    | Img_Size of size: int list
    | Opset of int
    | Dynamic_Batch
    | Static_Batch of int
    | Fuse
    | No_Fuse
    | Raw
    | Int8 of images: string
    | Calibration_Images of int
    | Reduce_Range
    | Nms
    | Conf of threshold: string
    | Iou of threshold: float
    | Max_Det of int
    | Agnostic_Nms
    | Single_Label

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Cfg _ -> ModelOptions.cfgUsage
            | Weights _ -> ModelOptions.weightsUsage
            | Output _ -> "the .onnx file to write"
            | Names _ -> "class names to store in the model (default: the checkpoint's, else class0, class1, ...)"
            | Img_Size _ -> "fix the input size: H, or H W (multiples of 32); default: any size (grids computed in the graph)"
            | Opset _ -> sprintf "ONNX opset, %d to %d (default %d, as export_onnx.py)" OnnxExport.MinOpset OnnxExport.MaxOpset defaults.Opset
            | Dynamic_Batch -> "a symbolic batch dimension (the default, as export_onnx.py's dynamic_axes)"
            | Static_Batch _ -> "fix the batch dimension to N instead"
            | Fuse -> "fold every BatchNorm into its conv (the default)"
            | No_Fuse -> "keep BatchNormalization nodes with the running statistics"
            | Raw -> "add a second output 'raw' with the undecoded heads [batch, rows, 5 + nc]"
            | Int8 _ ->
                sprintf
                    "write an int8 model (QDQ, for ONNX Runtime's integer kernels) calibrated on these images: a .data file or data.yaml (its train list), an image list or a folder; letterboxed to --img-size (default: the checkpoint's training size, else %d); opset %d or higher (the default becomes %d)"
                    TrainedModel.DefaultImageSize
                    OnnxExport.MinInt8Opset
                    OnnxExport.MinInt8Opset
            | Calibration_Images _ -> sprintf "images of --int8 to calibrate on, spread over it (default %d)" calibrationImages
            | Reduce_Range -> "with --int8: 7-bit weights, for CPUs without VNNI (AVX2, early AVX-512), where 8-bit ones can saturate"
            | Nms ->
                "end the graph with non-maximum suppression: a second output 'detections' [N, 7] (batch index, x1, y1, x2, y2 in input pixels, score, class), final boxes from any ONNX runtime"
            | Conf _ -> sprintf "with --nms: score threshold (default %g), or best: the checkpoint's best-F1 confidence" nmsDefaults.ConfThreshold
            | Iou _ -> sprintf "with --nms: IoU threshold of the suppression (default %g)" nmsDefaults.IouThreshold
            | Max_Det _ -> sprintf "with --nms: detections kept per image (default %d)" nmsDefaults.MaxDetections
            | Agnostic_Nms -> "with --nms: one NMS over all classes, each box with its best class"
            | Single_Label -> "with --nms: only each box's best class is a candidate (default: every class above the threshold, as the reference)"

/// Runs the command; returns the exit code (2 for bad input, naming the file or option).
let run (args: ParseResults<ExportArgs>) : int =
    Errors.run (fun () ->
        let size =
            match args.TryGetResult Img_Size with
            | None -> None
            | Some [ s ] -> Some(struct (s, s))
            | Some [ h; w ] -> Some(struct (h, w))
            | Some l -> raise (ArgumentException(sprintf "--img-size takes H or H W, got %d values" l.Length))

        size
        |> Option.iter (fun (struct (h, w)) ->
            DarkNet.CheckImageSize(h, "--img-size height")
            DarkNet.CheckImageSize(w, "--img-size width"))

        if args.Contains Fuse && args.Contains No_Fuse then
            raise (ArgumentException "--fuse and --no-fuse contradict each other")

        if args.Contains Dynamic_Batch && args.Contains Static_Batch then
            raise (ArgumentException "--dynamic-batch and --static-batch contradict each other")

        if
            not (args.Contains Int8)
            && (args.Contains Calibration_Images || args.Contains Reduce_Range)
        then
            raise (ArgumentException "--calibration-images and --reduce-range go with --int8")

        if
            not (args.Contains Nms)
            && (args.Contains Conf
                || args.Contains Iou
                || args.Contains Max_Det
                || args.Contains Agnostic_Nms
                || args.Contains Single_Label)
        then
            raise (ArgumentException "--conf, --iou, --max-det, --agnostic-nms and --single-label go with --nms")

        Backend.Initialize()
        let weights = args.GetResult Weights

        let trained =
            TrainedModel.Open(weights, Option.toObj (args.TryGetResult Cfg), Option.toObj (args.TryGetResult Names), Nullable(), ModelOptions.notice)

        use model = trained.CreateNetwork()
        let int8 = args.TryGetResult Int8

        use calibration =
            match int8 with
            | None -> null
            | Some source ->
                // calibrate at the size the model will run: the fixed size, else the checkpoint's training size
                if size.IsNone then
                    trained.ImageSizeNotice |> Option.ofObj |> Option.iter ModelOptions.notice

                let struct (h, w) =
                    size |> Option.defaultValue (struct (trained.ImageSize, trained.ImageSize))

                OnnxInt8Options.LoadCalibrationImages(source, h, w, args.GetResult(Calibration_Images, calibrationImages))

        let bestConfidence =
            trained.Checkpoint
            |> Option.ofObj
            |> Option.bind (fun c -> Option.ofNullable c.BestConfidence)
            |> Option.toNullable

        let nmsConf () =
            match args.TryGetResult Conf with
            | None -> nmsDefaults.ConfThreshold
            | Some "best" ->
                if bestConfidence.HasValue then
                    bestConfidence.Value
                else
                    raise (
                        InvalidInputException(
                            weights,
                            "--conf best: the model has no recorded best confidence (a checkpoint of a run that evaluated records one)"
                        )
                    )
            | Some text ->
                match Double.TryParse(text, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
                | true, v -> v
                | _ -> raise (ArgumentException(sprintf "--conf %s: expected a number in [0, 1] or best" text))

        let options =
            OnnxExportOptions(
                ImageSize = Option.toNullable size,
                Opset =
                    args.GetResult(
                        Opset,
                        (if int8.IsSome then
                             OnnxExport.MinInt8Opset
                         else
                             defaults.Opset)
                    ),
                Int8 =
                    (match calibration with
                     | null -> null
                     | c -> OnnxInt8Options(Calibration = [ c ], ReduceRange = args.Contains Reduce_Range)),
                DynamicBatch = not (args.Contains Static_Batch),
                BatchSize = args.GetResult(Static_Batch, 1),
                Fuse = not (args.Contains No_Fuse),
                RawOutput = args.Contains Raw,
                ClassNames = trained.ClassNames,
                TrainedImageSize =
                    (trained.Checkpoint
                     |> Option.ofObj
                     |> Option.bind (fun c -> Option.ofNullable c.ImageSize)
                     |> Option.toNullable),
                BestConfidence = bestConfidence,
                Nms =
                    (if args.Contains Nms then
                         OnnxNmsOptions(
                             nmsConf (),
                             args.GetResult(Iou, nmsDefaults.IouThreshold),
                             args.GetResult(Max_Det, nmsDefaults.MaxDetections),
                             Agnostic = args.Contains Agnostic_Nms,
                             MultiLabel = not (args.Contains Single_Label)
                         )
                     else
                         null)
            )

        let output = args.GetResult Output
        OnnxExport.Export(model, output, options)

        let shape =
            match size with
            | Some(struct (h, w)) -> sprintf "%dx%d" h w
            | None -> "any HxW (multiples of 32)"

        printfn
            "%s -> %s (%d classes, opset %d, input %s [%s, %d, %s], %s%s, %.1f MB)"
            weights
            output
            model.NumClasses
            options.Opset
            OnnxRuntimeNetwork.InputName
            (if options.DynamicBatch then
                 "batch"
             else
                 string options.BatchSize)
            model.Config.Channels
            shape
            (if options.Fuse then
                 "BatchNorm folded"
             else
                 "BatchNormalization nodes")
            (match calibration with
             | null -> ""
             | c ->
                 sprintf
                     ", int8 calibrated on %d image%s%s"
                     c.shape[0]
                     (if c.shape[0] = 1L then "" else "s")
                     (if args.Contains Reduce_Range then
                          " (7-bit weights)"
                      else
                          ""))
            (float (FileInfo(output).Length) / 1e6)

        match options.Nms with
        | null -> ()
        | n ->
            printfn
                "nms in the graph: output %s [N, 7] (batch index, x1, y1, x2, y2 in input pixels, score, class); conf %g, IoU %g, at most %d per image, %s"
                OnnxExport.DetectionsOutputName
                n.ConfThreshold
                n.IouThreshold
                n.MaxDetections
                (if n.Agnostic then "one NMS over all classes"
                 elif n.MultiLabel then "per class, every class above conf"
                 else "per class, each box's best class")

        0)
