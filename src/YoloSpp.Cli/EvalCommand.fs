/// `yolospp eval`: the reference's evaluate on the `valid` list of a .data file, with the COCO summary, per-class
/// AP and timing.
module YoloSpp.Cli.EvalCommand

open YoloSpp.App
open System
open System.IO
open Argu
open YoloSpp
open YoloSpp.IO
open YoloSpp.Detection
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Data
open YoloSpp.Evaluation

open YoloSpp.Platform

/// `--backend`: what runs the network.
type BackendChoice =
    | Torchsharp
    | Onnxruntime

let toBackend =
    function
    | Torchsharp -> InferenceBackend.TorchSharp
    | Onnxruntime -> InferenceBackend.OnnxRuntime

/// `--max-pixels` of every command that reads images.
let maxPixelsUsage =
    sprintf
        "refuse images with more pixels than this, read from their header before decoding (default %s, the size PIL refuses as a decompression bomb)"
        (RgbImage.DefaultMaxPixels.ToString("N0"))

/// `--slice`, `--overlap`, `--slice-merge` and `--whole-image` of detect and eval.
module Slicing =
    let sliceUsage =
        "sliced inference for small objects in large images (as SAHI): tiles of N pixels a side, each letterboxed to --img-size, run as batches with the whole image; their boxes mapped back and merged"

    let overlapUsage =
        "with --slice: how much neighbouring tiles overlap, a fraction of the tile side (default 0.2)"

    let mergeUsage =
        "with --slice: nms (a lower-scored box that matches a kept one of its class is dropped; the default) or nmm (SAHI's greedy merging: it is merged into the kept box, their union)"

    let matchUsage =
        "with --slice: how boxes match when merging: ios (intersection over the smaller box above 0.5, SAHI's: the part of an object cut by a tile edge matches the whole; the default) or iou"

    let wholeImageUsage = "with --slice: also detect on the whole image (default true)"

    /// The slicing settings given: (tile side, overlap, merge, match, whole image); the others need --slice.
    let settings (slice: int option) (overlap: float option) (merge: string option) (matching: string option) (whole: bool option) =
        if
            slice.IsNone
            && (overlap.IsSome || merge.IsSome || matching.IsSome || whole.IsSome)
        then
            raise (ArgumentException "--overlap, --slice-merge, --slice-match and --whole-image go with --slice")

        let kind =
            match merge with
            | None
            | Some "nms" -> SliceMerge.Nms
            | Some "nmm" -> SliceMerge.Nmm
            | Some other -> raise (ArgumentException(sprintf "--slice-merge %s: expected nms or nmm" other))

        let metric =
            match matching with
            | None
            | Some "ios" -> SliceMatch.Ios
            | Some "iou" -> SliceMatch.Iou
            | Some other -> raise (ArgumentException(sprintf "--slice-match %s: expected ios or iou" other))

        Option.toNullable slice, defaultArg overlap 0.2, kind, metric, defaultArg whole true

let backendUsage =
    "torchsharp (default) or onnxruntime: --weights is then a model `yolospp export` wrote (CPU; it carries its cfg and names)"

type EvalArgs =
    | Cfg of path: string
    | [<Mandatory>] Weights of path: string
    | [<Mandatory>] Data of path: string
    | Img_Size of int
    | Batch_Size of int
    | Conf of float
    | Iou of float
    | No_Rect
    | Merge
    | Save_Json of path: string
    | Plots of dir: string
    | Device of name: string
    | Backend of BackendChoice
    | Max_Pixels of int64
    | Slice of pixels: int
    | Overlap of float
    | Slice_Merge of string
    | Slice_Match of string
    | Whole_Image of bool

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Max_Pixels _ -> maxPixelsUsage
            | Slice_Match _ -> Slicing.matchUsage
            | Slice _ ->
                Slicing.sliceUsage
                + " (each image through the detector, the same COCO evaluation)"
            | Overlap _ -> Slicing.overlapUsage
            | Slice_Merge _ -> Slicing.mergeUsage
            | Whole_Image _ -> Slicing.wholeImageUsage
            | Cfg _ -> ModelOptions.cfgUsage
            | Weights _ -> ModelOptions.weightsUsage
            | Data _ -> ".data file: the valid list is evaluated, class names from its names file"
            | Img_Size _ ->
                sprintf "input size (long side), a multiple of 32 (default: the size the checkpoint was trained at, else %d)" TrainedModel.DefaultImageSize
            | Batch_Size _ ->
                sprintf "images per batch; with rectangular batches it changes their shapes (default %d, as validation.py)" DataOptions.Validation.BatchSize
            | Conf _ -> "NMS confidence threshold (default 0.01, the reference's evaluate)"
            | Iou _ -> "NMS IoU threshold (default 0.6)"
            | Merge -> "merge-NMS: kept boxes become the score-weighted mean of the boxes they suppress (the reference's merge)"
            | No_Rect -> "letterbox every image to a square instead of validation.py's rectangular batches (sorted by aspect ratio)"
            | Save_Json _ -> "write the detections as a COCO result list (image_id = index in the valid list)"
            | Plots _ ->
                "write the PR, F1, P and R curves, the confusion matrix (PNG and CSV), per-class P, R, F1 and the first batch with labels and predictions into this folder (as yolov5's val.py)"
            | Device _ -> ModelOptions.deviceUsage
            | Backend _ -> backendUsage

let private apText (v: float) =
    if v < 0.0 then "-" else v.ToString("0.000")

/// Runs the command; returns the exit code (2 for bad input, with one line per problem on stderr).
let run (args: ParseResults<EvalArgs>) : int =
    // validation.py's data unless told otherwise
    let batch = args.GetResult(Batch_Size, DataOptions.Validation.BatchSize)
    let weights = args.GetResult Weights
    let dataPath = args.GetResult EvalArgs.Data

    Errors.run (fun () ->
        args.TryGetResult Max_Pixels |> Option.iter (fun n -> RgbImage.MaxPixels <- n)

        if batch <= 0 then
            raise (ArgumentException(sprintf "--batch-size %d must be positive" batch))

        let device =
            Backend.ResolveDevice(args.GetResult(Device, Backend.AutoDevice), ModelOptions.notice)

        let options =
            EvaluationOptions(
                ConfThreshold = args.GetResult(Conf, 0.01),
                IouThreshold = args.GetResult(Iou, 0.6),
                Merge = args.Contains Merge,
                PlotDirectory = Option.toObj (args.TryGetResult Plots)
            )

        let data (size: int) =
            DataOptions(ImageSize = size, BatchSize = batch, Rect = not (args.Contains No_Rect))

        let dataFile = DataFiles.ReadData dataPath

        // images the evaluation leaves out (unreadable, truncated, corrupt) are named, as a training run names them;
        // a scan with errors is left for the evaluation to report
        let scan =
            if File.Exists dataFile.Valid || Directory.Exists dataFile.Valid then
                Some(DatasetTools.ScanLabels(dataFile.Valid, dataFile.Classes))
            else
                None

        match scan with
        | Some s when s.Errors.Count = 0 -> Errors.printWarnings s.Warnings
        | _ -> ()

        let slice, overlap, sliceMerge, sliceMatch, whole =
            Slicing.settings
                (args.TryGetResult Slice)
                (args.TryGetResult Overlap)
                (args.TryGetResult Slice_Merge)
                (args.TryGetResult Slice_Match)
                (args.TryGetResult Whole_Image)

        let r, size =
            match toBackend (args.GetResult(Backend, Torchsharp)) with
            | backend when slice.HasValue ->
                // the detector's sliced inference at the evaluation's thresholds, image by image
                let detectorOptions =
                    DetectorOptions(
                        ImageSize = Option.toNullable (args.TryGetResult Img_Size),
                        ConfThreshold = options.ConfThreshold,
                        IouThreshold = options.IouThreshold,
                        MultiLabel = options.MultiLabel,
                        MaxDetections = options.MaxDetections,
                        Merge = options.Merge,
                        Device = args.GetResult(Device, Backend.AutoDevice),
                        Slice = slice,
                        SliceOverlap = overlap,
                        SliceMerge = sliceMerge,
                        SliceMatch = sliceMatch,
                        SliceWholeImage = whole
                    )

                use detector =
                    Detector.Load(
                        Option.toObj (args.TryGetResult Cfg),
                        weights,
                        (if
                             weights.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase)
                             || backend = InferenceBackend.OnnxRuntime
                         then
                             null
                         else
                             dataFile.NamesFile),
                        detectorOptions,
                        ModelOptions.notice,
                        backend
                    )

                Evaluator.Evaluate(detector, dataPath), detector.ImageSize
            | InferenceBackend.OnnxRuntime ->
                // the model's training size (export records a checkpoint's) unless told otherwise
                let size =
                    match args.TryGetResult Img_Size with
                    | Some s -> s
                    | None ->
                        use m = YoloSpp.Detection.OnnxRuntimeNetwork.Load weights

                        m.TrainedImageSize
                        |> Option.ofNullable
                        |> Option.defaultValue TrainedModel.DefaultImageSize

                DarkNet.CheckImageSize(size, "--img-size")

                Evaluator.Evaluate(
                    Option.toObj (args.TryGetResult Cfg),
                    weights,
                    dataPath,
                    options,
                    data size,
                    device,
                    Threading.CancellationToken.None,
                    InferenceBackend.OnnxRuntime,
                    ModelOptions.notice
                ),
                size
            | _ ->
                let model =
                    TrainedModel.Open(weights, Option.toObj (args.TryGetResult Cfg), null, Option.toNullable (args.TryGetResult Img_Size), ModelOptions.notice)

                model.ImageSizeNotice |> Option.ofObj |> Option.iter ModelOptions.notice
                Evaluator.Evaluate(model, dataPath, options, data model.ImageSize, device), model.ImageSize

        printf "%s" r.Summary
        printfn ""
        // the COCO categories are the classes that occur in the labels (as the reference's convert_to_coco_api);
        // every class of the .names gets a row, "-" where it has no ground truth
        let names = (DataFiles.Load dataPath).Names |> Seq.toArray
        let byId = r.PerClass |> Seq.map (fun c -> c.CategoryId, c) |> dict
        let width = names |> Seq.map String.length |> Seq.fold max 5
        printfn "%-*s %8s %13s" width "class" "AP@.5" "AP@.5:.95"

        names
        |> Array.iteri (fun i name ->
            match byId.TryGetValue(int64 i) with
            | true, c -> printfn "%-*s %8s %13s" width name (apText c.Ap50) (apText c.Ap)
            | _ -> printfn "%-*s %8s %13s" width name "-" "-")

        printfn ""

        match r.Validation with
        | null -> ()
        | v ->
            printfn
                "P %.3f  R %.3f  F1 %.3f at confidence %.3f (the best mean F1: `detect --conf best` of a trained run uses it)"
                v.Precision
                v.Recall
                v.F1
                v.BestConfidence

        let ms = r.Elapsed.TotalMilliseconds

        printfn
            "%d images, %d detections in %.1f s (%.1f ms per image, %dx%d, batch %d)"
            r.Images
            r.Detections.Count
            (ms / 1000.0)
            (ms / float (max 1 r.Images))
            size
            size
            batch

        args.TryGetResult Save_Json
        |> Option.iter (fun path ->
            AtomicFile.WriteAllText(path, r.DetectionsJson())
            printfn "detections: %s" path)

        match args.TryGetResult Plots, r.Validation with
        | Some dir, null -> eprintfn "--plots %s: this evaluation computed no validation metrics" dir
        | Some dir, v ->
            for f in
                Seq.append
                    (v.WritePlots dir)
                    [
                        Path.Combine(dir, "val_batch0_labels.jpg")
                        Path.Combine(dir, "val_batch0_pred.jpg")
                    ] do
                if File.Exists f then
                    printfn "plot: %s" f
        | None, _ -> ()

        0)
