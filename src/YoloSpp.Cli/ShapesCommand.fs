/// `yolospp shapes`: generates the embedded default dataset (synthetic shapes in the YOLO layout, see the README's
/// "The shapes dataset") that the training demo uses.
module YoloSpp.Cli.ShapesCommand

open YoloSpp.App
open System
open Argu
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training

type ShapesArgs =
    | [<Mandatory>] Out of dir: string
    | Train of int
    | Val of int
    | Size of int
    | Seed of int
    | Classes of set: string
    | Height of int
    | Min_Object of pixels: float
    | Max_Object of pixels: float
    | Max_Objects of int

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Out _ -> "dataset folder (reused as is when it already holds the same dataset)"
            | Train _ -> "training images (default 1500)"
            | Val _ -> "validation images (default 200)"
            | Size _ -> "image side in pixels, a multiple of 32 and at least 64 (default 160)"
            | Seed _ -> "dataset seed; the same seed gives byte-identical files (default 0)"
            | Height _ -> "image height when it differs from --size (the width): a multiple of 32, at least 64"
            | Min_Object _ -> "smallest object side in pixels (default 8)"
            | Max_Object _ -> "largest object side in pixels (default 45 % of the shorter image side)"
            | Max_Objects _ -> "most objects an image holds (default 6)"
            | Classes _ ->
                "shapes (circle, square, triangle, star, ring: the demo's; the default) or symbols (cross, arrow, hexagon, diamond: other classes, to fine-tune a model trained on the first)"

/// Progress on stderr, only for a person at a terminal: a log or a test sees the summary alone.
let private terminalProgress (total: int) : IProgress<int> option =
    if Console.IsErrorRedirected || total = 0 then
        None
    else
        let gate = obj ()
        let mutable shown = 0

        Some
            { new IProgress<int> with
                member _.Report done' =
                    lock gate (fun () ->
                        // a line every 5 % at most; workers report out of order
                        if done' > shown && (done' = total || done' - shown >= max 1 (total / 20)) then
                            shown <- done'
                            eprintf "\rshapes: %d/%d images%s" done' total (if done' = total then "\n" else ""))
            }

/// Runs the command; returns the exit code (2 for bad arguments, with a one-line reason on stderr).
let run (args: ParseResults<ShapesArgs>) : int =
    let classes =
        match args.TryGetResult Classes with
        | None
        | Some "shapes" -> Ok ShapesClasses.Shapes
        | Some "symbols" -> Ok ShapesClasses.Symbols
        | Some other -> Error other

    let options =
        ShapesOptions(
            args.GetResult Out,
            Train = args.GetResult(Train, 1500),
            Val = args.GetResult(Val, 200),
            Size = args.GetResult(Size, 160),
            Seed = args.GetResult(Seed, 0),
            Classes = Result.defaultValue ShapesClasses.Shapes classes,
            Height = Option.toNullable (args.TryGetResult Height),
            MinObject = args.GetResult(Min_Object, 8.0),
            MaxObject = Option.toNullable (args.TryGetResult Max_Object),
            MaxObjects = args.GetResult(Max_Objects, 6)
        )

    Errors.run (fun () ->
        match classes with
        | Error other -> raise (ArgumentException(sprintf "--classes %s: expected shapes or symbols" other))
        | Ok _ -> ()

        options.Validate()

        let s =
            ShapesDataset.Generate(options, Option.toObj (terminalProgress (options.Train + options.Val)))

        if s.Reused then
            printfn
                "shapes: %s already holds this dataset (train %d, val %d, size %d, seed %d); not regenerated"
                s.Directory
                s.TrainImages
                s.ValImages
                options.Size
                options.Seed
        else
            printfn
                "shapes: generated %d train + %d val images of %dx%d px (seed %d) in %.1f s"
                s.TrainImages
                s.ValImages
                options.Size
                options.CanvasHeight
                options.Seed
                s.Elapsed.TotalSeconds

        let classes = Seq.map2 (sprintf "%s %d") s.ClassNames s.ObjectsPerClass
        printfn "objects: %d (%s); images without objects: %d" s.Objects (String.Join(", ", classes)) s.EmptyImages
        printfn "sizes (COCO areas at %d px): small %d, medium %d, large %d" options.Size s.ObjectsPerSize[0] s.ObjectsPerSize[1] s.ObjectsPerSize[2]
        printfn "data: %s" s.DataFile
        0)
