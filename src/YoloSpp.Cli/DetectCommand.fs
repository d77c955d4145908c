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
    | [<Mandatory>] Source of path: string
    | Out of dir: string
    | Conf of value: string
    | Draw_Threshold of float
    | Iou of float
    | Merge
    | Img_Size of int
    | Device of name: string
    | Backend of EvalCommand.BackendChoice
    | Max_Pixels of int64

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Max_Pixels _ -> EvalCommand.maxPixelsUsage
            | Cfg _ -> ModelOptions.cfgUsage
            | Weights _ -> ModelOptions.weightsUsage
            | Names _ ->
                "class names, one a line, as many as the network's classes: needed only when the weights do not carry them (a .ckpt and an exported .onnx do; given, they override)"
            | Source _ -> "an image, or a folder whose images are all processed (other files are skipped)"
            | Out _ -> "output folder: annotated images and detections.json (default runs/detect)"
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

/// The images to process; a folder's non-image files are skipped with a note.
let private sources (source: string) : Result<string[], string> =
    if Directory.Exists source then
        let files = Directory.GetFiles source |> Array.sort

        for f in files |> Array.filter (isImage >> not) do
            printfn "skipping %s: not an image" f

        let images = files |> Array.filter isImage

        if images.Length = 0 then
            Error(sprintf "%s: no images in this folder" source)
        else
            Ok images
    elif File.Exists source then
        if isImage source then
            Ok [| source |]
        else
            Error(sprintf "%s: not an image (expected %s)" source (String.Join(", ", YoloSpp.Data.Labels.imageExtensions)))
    else
        Error(sprintf "%s: no such file or folder" source)

let private writeJson (path: string) (results: (string * DetectionResult) list) =
    use stream = new MemoryStream()

    (use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
     w.WriteStartArray()

     for image, r in results do
         w.WriteStartObject()
         w.WriteString("image", image)
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

/// Runs the command; returns the exit code (2 for bad input or an unreadable image, naming the file on stderr).
let run (args: ParseResults<DetectArgs>) : int =
    let outDir = args.GetResult(Out, Path.Combine("runs", "detect"))

    Errors.run (fun () ->
        args.TryGetResult Max_Pixels |> Option.iter (fun n -> RgbImage.MaxPixels <- n)

        match sources (args.GetResult Source) with
        | Error e ->
            eprintfn "%s" e
            2
        | Ok images ->
            let best, conf =
                match args.TryGetResult Conf with
                | None -> false, defaults.ConfThreshold
                | Some "best" -> true, defaults.ConfThreshold
                | Some v ->
                    match Double.TryParse(v, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
                    | true, x -> false, x
                    | _ -> raise (ArgumentException(sprintf "--conf %s: expected a number in [0, 1] or best" v))

            let options =
                DetectorOptions(
                    ImageSize = Option.toNullable (args.TryGetResult Img_Size),
                    UseBestConfidence = best,
                    ConfThreshold = conf,
                    DrawThreshold = args.GetResult(Draw_Threshold, defaults.DrawThreshold),
                    IouThreshold = args.GetResult(Iou, defaults.IouThreshold),
                    Merge = args.Contains Merge,
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

            Directory.CreateDirectory outDir |> ignore
            let mutable failed = 0

            let results =
                [
                    for image in images do
                        try
                            let watch = Diagnostics.Stopwatch.StartNew()
                            let picture, note = RgbImage.LoadNoted image

                            if not (isNull note) then
                                eprintfn "note: %s: %s" image note

                            let decode = watch.Elapsed
                            let r = detector.DetectWithTimings picture
                            let target = outputPath outDir image
                            // as predict_test.py: every detection above conf in the json, those above box_thresh drawn
                            let drawn = detector.Drawn r.Detections
                            Annotator.Save(picture, drawn, target)

                            let found =
                                if r.Detections.Count = 0 then
                                    "no detections"
                                else
                                    counts r.Detections

                            printfn
                                "%s: %dx%d, %s (%d drawn); pre-process %.1f ms, inference %.1f ms, NMS %.1f ms -> %s"
                                image
                                r.Width
                                r.Height
                                found
                                drawn.Count
                                (decode + r.Preprocess).TotalMilliseconds
                                r.Inference.TotalMilliseconds
                                r.Nms.TotalMilliseconds
                                target

                            yield image, r
                        with :? InvalidInputException as e ->
                            // the rest of the folder is still processed; the run reports failure at the end
                            for problem in e.Errors do
                                eprintfn "%O" problem

                            failed <- failed + 1
                ]

            let json = Path.Combine(outDir, "detections.json")
            writeJson json results
            printfn "%d images, %d detections -> %s" results.Length (results |> List.sumBy (fun (_, r) -> r.Detections.Count)) json
            if failed > 0 then 2 else 0)
