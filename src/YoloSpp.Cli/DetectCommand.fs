/// `yolospp detect`: the reference's predict over an image or a folder: annotated pictures and a detections json.
module YoloSpp.Cli.DetectCommand

open YoloSpp.App
open System
open System.IO
open System.Text.Json
open Argu
open YoloSpp
open YoloSpp.IO
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Data
open YoloSpp.Detection

open YoloSpp.Platform

let private defaults = DetectorOptions()

type DetectArgs =
    | Cfg of path: string
    | [<Mandatory>] Weights of path: string
    | Names of path: string
    | [<Mandatory>] Source of paths: string list
    | Recursive
    | Vid_Stride of int
    | Out of dir: string
    | Exist_Ok
    | Conf of value: string
    | Draw_Threshold of float
    | Iou of float
    | Merge
    | Img_Size of int
    | Device of name: string
    | Backend of EvalCommand.BackendChoice
    | Max_Pixels of int64
    | Max_Det of int
    | Classes of ids: int list
    | Agnostic_Nms
    | Save_Txt
    | Save_Conf
    | Save_Json
    | Save_Crop
    | Slice of pixels: int
    | Overlap of float
    | Slice_Merge of string
    | Slice_Match of string
    | Whole_Image of bool

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Slice _ -> EvalCommand.Slicing.sliceUsage
            | Overlap _ -> EvalCommand.Slicing.overlapUsage
            | Slice_Merge _ -> EvalCommand.Slicing.mergeUsage
            | Slice_Match _ -> EvalCommand.Slicing.matchUsage
            | Whole_Image _ -> EvalCommand.Slicing.wholeImageUsage
            | Max_Pixels _ -> EvalCommand.maxPixelsUsage
            | Cfg _ -> ModelOptions.cfgUsage
            | Weights _ -> ModelOptions.weightsUsage
            | Names _ ->
                "class names (a .names file, one a line, or a data.yaml), as many as the network's classes: needed only when the weights do not carry them (a .ckpt and an exported .onnx do; given, they override)"
            | Source _ ->
                "images, videos (mp4 avi mkv mov ...; needs ffmpeg), folders, globs ('data/**/*.jpg', quoted or not) and .txt lists of paths, in any number"
            | Recursive -> "read folders' sub-folders too"
            | Vid_Stride _ -> "detect on every n-th video frame (default 1)"
            | Out _ ->
                "output folder: annotated images and videos, detections.json (default runs/detect; one that holds anything gives way to the next numbered folder, runs/detect2, ...)"
            | Exist_Ok -> "write into --out even when it holds earlier results (same-named files are replaced)"
            | Max_Det _ -> sprintf "boxes kept per image (default %d)" defaults.MaxDetections
            | Classes _ -> "keep only these class indices, e.g. --classes 0 2"
            | Agnostic_Nms -> "one NMS over all classes: a box suppresses overlapping boxes of any class"
            | Save_Txt -> "write a YOLO label file per image (labels/<name>.txt; video frames labels/<name>_<frame>.txt): pseudo-labels"
            | Save_Conf -> "with --save-txt: the score after each row"
            | Save_Json -> "write predictions.json in COCO's result format (image_id from the file name, category_id = class + 1)"
            | Save_Crop -> "write each detected box as a picture: crops/<class>/<name>.jpg"
            | Conf _ ->
                sprintf
                    "NMS confidence threshold; detections.json holds these (default %g, as predict_test.py); best: the confidence of the best mean F1 the training run recorded (also the drawing threshold)"
                    defaults.ConfThreshold
            | Draw_Threshold _ -> sprintf "draw only the boxes scoring above this (default %g, predict_test.py's box_thresh)" defaults.DrawThreshold
            | Iou _ -> "NMS IoU threshold (default 0.6)"
            | Merge -> "merge-NMS: kept boxes become the score-weighted mean of the boxes they suppress (the reference's merge)"
            | Img_Size _ ->
                sprintf
                    "input size (long side), a multiple of %d (default: the size the model was trained at, else %d)"
                    DarkNet.GridStride
                    TrainedModel.DefaultImageSize
            | Device _ -> ModelOptions.deviceUsage
            | Backend _ -> EvalCommand.backendUsage

// the one list of image extensions, as the dataset reads them
let private isImage (path: string) = YoloSpp.Data.Labels.isImagePath path

/// The annotated picture's path: same name in the output folder; formats Skia cannot write become .jpg.
let private outputPath (outDir: string) (image: string) =
    let name = Path.GetFileName image

    match Path.GetExtension(name).ToLowerInvariant() with
    | ".jpg"
    | ".jpeg"
    | ".png" -> Path.Combine(outDir, name)
    | _ -> Path.Combine(outDir, Path.GetFileNameWithoutExtension name + ".jpg")

let private writeJson (path: string) (results: (string * int option * DetectionResult) seq) =
    use stream = new MemoryStream()

    (use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
     w.WriteStartArray()

     for image, frame, r in results do
         w.WriteStartObject()
         w.WriteString("image", image)
         frame |> Option.iter (fun f -> w.WriteNumber("frame", f))
         w.WriteNumber("width", r.Width)
         w.WriteNumber("height", r.Height)
         w.WriteStartArray "detections"

         for d in r.Detections do
             w.WriteStartObject()
             w.WriteNumber("class", d.ClassId)
             w.WriteString("name", d.ClassName)
             w.WriteNumber("confidence", d.Confidence)
             w.WriteStartArray "box_xyxy"

             for v in [| d.X1; d.Y1; d.X2; d.Y2 |] do
                 w.WriteNumberValue v

             w.WriteEndArray()
             w.WriteEndObject()

         w.WriteEndArray()
         w.WriteEndObject()

     w.WriteEndArray())

    AtomicFile.WriteAllBytes(path, stream.ToArray())

let private counts (detections: Detection seq) =
    detections
    |> Seq.countBy (fun d -> d.ClassId, d.ClassName)
    |> Seq.sortBy fst
    |> Seq.map (fun ((_, name), n) -> sprintf "%d %s" n name)
    |> fun s -> String.Join(", ", s)

/// Unique output names within one run: a second source with the same file name gets name_2, name_3, ...
type private OutputNames() =
    let used = Collections.Generic.Dictionary<string, string>()

    member _.For(source: string, name: string) =
        let key = Path.GetFullPath source

        match used.TryGetValue key with
        | true, n -> n
        | _ ->
            let taken = Collections.Generic.HashSet(used.Values)
            let stem, ext = Path.GetFileNameWithoutExtension name, Path.GetExtension name

            let unique =
                Seq.initInfinite (fun i -> if i = 0 then name else sprintf "%s_%d%s" stem (i + 1) ext)
                |> Seq.find (taken.Contains >> not)

            used[key] <- unique
            unique

/// A crop's file: crops/<class>/<stem>.jpg, then <stem>2.jpg, <stem>3.jpg (yolov5's increment_path); after a
/// digit <stem>_2.jpg.
let private cropPath (outDir: string) (className: string) (stem: string) =
    let dir = Path.Combine(outDir, "crops", className)
    Directory.CreateDirectory dir |> ignore

    // after a digit (a video frame's stem, COCO's numbered names) an underscore keeps the counter apart
    let counted i =
        if i = 0 then
            stem
        elif Char.IsDigit stem[stem.Length - 1] then
            sprintf "%s_%d" stem (i + 1)
        else
            sprintf "%s%d" stem (i + 1)

    Seq.initInfinite (fun i -> Path.Combine(dir, counted i + ".jpg"))
    |> Seq.find (File.Exists >> not)

/// Runs the command; returns the exit code: 0 when at least one source was read (the others are named on stderr
/// and counted), 2 when none was (or for bad options and models).
let run (args: ParseResults<DetectArgs>) : int =
    let requestedOut = args.GetResult(Out, Path.Combine("runs", "detect"))

    Errors.run (fun () ->
        args.TryGetResult Max_Pixels |> Option.iter (fun n -> RgbImage.MaxPixels <- n)
        let stride = args.GetResult(Vid_Stride, 1)

        if stride < 1 then
            raise (ArgumentException(sprintf "--vid-stride %d must be >= 1" stride))

        let expansion = DetectSources.Expand(args.GetResult Source, args.Contains Recursive)

        for f in expansion.Ignored do
            printfn "skipping %s: not an image or a video" f

        for p in expansion.Problems do
            eprintfn "%O" p

        if expansion.Files.Count = 0 then
            2
        else
            let best, conf =
                match args.TryGetResult Conf with
                | None -> false, defaults.ConfThreshold
                | Some "best" -> true, defaults.ConfThreshold
                | Some v ->
                    match Double.TryParse(v, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
                    | true, x -> false, x
                    | _ -> raise (ArgumentException(sprintf "--conf %s: expected a number in [0, 1] or best" v))

            let slice, overlap, sliceMerge, sliceMatch, whole =
                EvalCommand.Slicing.settings
                    (args.TryGetResult Slice)
                    (args.TryGetResult Overlap)
                    (args.TryGetResult Slice_Merge)
                    (args.TryGetResult Slice_Match)
                    (args.TryGetResult Whole_Image)

            let options =
                DetectorOptions(
                    Slice = slice,
                    SliceOverlap = overlap,
                    SliceMerge = sliceMerge,
                    SliceMatch = sliceMatch,
                    SliceWholeImage = whole,
                    ImageSize = Option.toNullable (args.TryGetResult Img_Size),
                    UseBestConfidence = best,
                    ConfThreshold = conf,
                    DrawThreshold = args.GetResult(Draw_Threshold, defaults.DrawThreshold),
                    IouThreshold = args.GetResult(Iou, defaults.IouThreshold),
                    Merge = args.Contains Merge,
                    MaxDetections = args.GetResult(Max_Det, defaults.MaxDetections),
                    Classes =
                        (args.TryGetResult Classes
                         |> Option.map (fun c -> ResizeArray c :> Collections.Generic.IReadOnlyList<int>)
                         |> Option.toObj),
                    AgnosticNms = args.Contains Agnostic_Nms,
                    Device = args.GetResult(Device, Backend.AutoDevice)
                )

            let backend =
                EvalCommand.toBackend (args.GetResult(Backend, EvalCommand.Torchsharp))

            use detector =
                Detector.Load(
                    Option.toObj (args.TryGetResult Cfg),
                    args.GetResult Weights,
                    Option.toObj (args.TryGetResult Names),
                    options,
                    ModelOptions.notice,
                    backend
                )

            printfn
                "%s: %d classes (%s), image size %d"
                (args.GetResult Weights)
                detector.ClassNames.Count
                (String.Join(", ", detector.ClassNames))
                detector.ImageSize

            // never into an earlier run's results (yolov5's increment_path): runs/detect, then runs/detect2, ...
            use folder =
                RunFolder.Claim(requestedOut, args.Contains Exist_Ok, Func<_, _>(RunFolder.AnyEntry), "detect run", "--out")

            folder.Notice |> Option.ofObj |> Option.iter (printfn "%s")
            let outDir = folder.Path

            let saveTxt, saveConf, saveCrop =
                args.Contains Save_Txt, args.Contains Save_Conf, args.Contains Save_Crop

            let names = OutputNames()
            let results = ResizeArray<string * int option * DetectionResult>()
            let mutable failed = expansion.Problems.Count
            let mutable images, frames, videos = 0, 0, 0
            // the video being written: its source and writer
            let mutable video: (string * string * VideoFile.Writer) option = None

            let closeVideo () =
                video
                |> Option.iter (fun (source, target, w) ->
                    w.Close()
                    w.Dispose()
                    printfn "%s -> %s" source target)

                video <- None

            try
                let stream =
                    detector.Detect(expansion.Files |> Seq.map (fun f -> f.Path), videoStride = stride)

                for item: FrameDetections in Threading.Tasks.TaskAsyncEnumerableExtensions.ToBlockingEnumerable stream do
                    if not item.Ok then
                        eprintfn "%O" item.Error
                        failed <- failed + 1
                    else
                        let r, picture = item.Result, item.Image
                        let isVideo = item.Kind = Nullable SourceKind.Video

                        let stem =
                            Path.GetFileNameWithoutExtension(names.For(item.Path, Path.GetFileName item.Path))

                        let frameStem = if isVideo then sprintf "%s_%d" stem item.Frame else stem
                        // as predict_test.py: every detection above conf in the json, those above box_thresh drawn
                        let drawn = detector.Drawn r.Detections

                        let target =
                            if isVideo then
                                match video with
                                | Some(source, target, w) when source = item.Path ->
                                    w.Add(Annotator.Draw(picture, drawn))
                                    target
                                | _ ->
                                    closeVideo ()
                                    let info = VideoFile.Probe item.Path
                                    let target = Path.Combine(outDir, stem + ".mp4")

                                    let w =
                                        new VideoFile.Writer(target, picture.Width, picture.Height, info.FrameRate / float stride)

                                    video <- Some(item.Path, target, w)
                                    videos <- videos + 1
                                    w.Add(Annotator.Draw(picture, drawn))
                                    target
                            else
                                closeVideo ()
                                let target = outputPath outDir (names.For(item.Path, Path.GetFileName item.Path))
                                Annotator.Save(picture, drawn, target)
                                target

                        if saveTxt then
                            AtomicFile.WriteAllText(
                                Path.Combine(outDir, "labels", frameStem + ".txt"),
                                DetectionOutputs.LabelText(r.Detections, r.Width, r.Height, saveConf)
                            )

                        if saveCrop then
                            for d in r.Detections do
                                let crop = DetectionOutputs.Crop(picture, d)
                                Annotator.Save(crop, [||], cropPath outDir d.ClassName frameStem)

                        let found =
                            if r.Detections.Count = 0 then
                                "no detections"
                            else
                                counts r.Detections

                        let where =
                            if isVideo then
                                sprintf "%s frame %d" item.Path item.Frame
                            else
                                item.Path

                        printfn
                            "%s: %dx%d, %s (%d drawn); pre-process %.1f ms, inference %.1f ms, NMS %.1f ms%s"
                            where
                            r.Width
                            r.Height
                            found
                            drawn.Count
                            r.Preprocess.TotalMilliseconds
                            r.Inference.TotalMilliseconds
                            r.Nms.TotalMilliseconds
                            (if isVideo then "" else " -> " + target)

                        results.Add(item.Path, (if isVideo then Some item.Frame else None), r)

                        if isVideo then
                            frames <- frames + 1
                        else
                            images <- images + 1
            finally
                closeVideo ()

            let json = Path.Combine(outDir, "detections.json")
            writeJson json results
            let detections = results |> Seq.sumBy (fun (_, _, r) -> r.Detections.Count)

            if args.Contains Save_Json then
                use stream = new MemoryStream()

                (use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
                 w.WriteStartArray()

                 for path, frame, r in results do
                     let id =
                         match frame with
                         | Some f -> box (sprintf "%s_%d" (Path.GetFileNameWithoutExtension path) f)
                         | None -> DetectionOutputs.ImageId path

                     DetectionOutputs.WriteCocoResults(w, id, r.Detections)

                 w.WriteEndArray())

                AtomicFile.WriteAllBytes(Path.Combine(outDir, "predictions.json"), stream.ToArray())
                printfn "COCO results -> %s" (Path.Combine(outDir, "predictions.json"))

            if saveTxt then
                printfn "labels -> %s" (Path.Combine(outDir, "labels"))

            let skipped =
                if failed > 0 then
                    sprintf "; %d sources skipped (named above)" failed
                else
                    ""

            let videoPart =
                if videos > 0 then
                    sprintf ", %d frames of %d videos" frames videos
                else
                    ""

            printfn "%d images%s, %d detections -> %s%s" images videoPart detections json skipped
            if images + frames = 0 then 2 else 0)
