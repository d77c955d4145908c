module YoloSpp.Cli.Program

open YoloSpp.App
open System
open System.Globalization
open System.IO
open Argu
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Cli.Commands

open YoloSpp.Platform
open YoloSpp.Geometry

/// Exit codes: 0 ok, 1 runtime failure, 2 bad input (usage, malformed file).
let private badInput (msg: string) =
    eprintfn "%s" msg
    2

/// A box of the `iou` command: four finite numbers, and a size that is not negative (w, h in xywh; x2 >= x1 and
/// y2 >= y1 in xyxy), since the IoU of a box turned inside out is a number without a meaning.
let private parseBox (name: string) (layout: BoxLayout) (text: string) =
    let parts = text.Split(',', StringSplitOptions.TrimEntries)

    let nums =
        parts
        |> Array.map (fun s -> Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture))

    if parts.Length <> 4 || nums |> Array.exists (fst >> not) then
        Error(sprintf "%s: '%s' is not four comma-separated numbers" name text)
    else
        let v = nums |> Array.map snd

        if v |> Array.exists (Double.IsFinite >> not) then
            Error(sprintf "%s: '%s' has a value that is not a finite number" name text)
        elif layout = BoxLayout.Xywh && (v.[2] < 0.0 || v.[3] < 0.0) then
            Error(sprintf "%s: '%s' has a negative width or height" name text)
        elif layout = BoxLayout.Xyxy && (v.[2] < v.[0] || v.[3] < v.[1]) then
            Error(sprintf "%s: '%s' has x2 < x1 or y2 < y1 (xyxy corners)" name text)
        else
            Ok v

let private runIou (args: ParseResults<IouArgs>) =
    let b1, b2 = args.GetResult Boxes

    let layout =
        if args.GetResult(Format, Xywh) = Xyxy then
            BoxLayout.Xyxy
        else
            BoxLayout.Xywh

    match parseBox "box1" layout b1, parseBox "box2" layout b2 with
    | Ok a, Ok b ->
        for name, t in
            [
                "IoU", IouType.Iou
                "GIoU", IouType.GIoU
                "DIoU", IouType.DIoU
                "CIoU", IouType.CIoU
            ] do
            printfn "%-5s %s" name ((BoxOps.BboxIou(a, b, t, layout)).ToString("R", CultureInfo.InvariantCulture))

        0
    | Error e, _
    | _, Error e -> badInput e

let private runHyp (args: ParseResults<HypArgs>) =
    Errors.run (fun () ->
        let hyp = HyperParameters.LoadOrNamed(args.GetResult File)

        let hyp =
            match args.TryGetResult Nc with
            | Some nc when nc < 1 -> raise (ArgumentException(sprintf "--nc %d must be >= 1 (a class count)" nc))
            | Some nc ->
                let size = args.GetResult(HypArgs.Img_Size, 512)
                DarkNet.CheckImageSize(size, "--img-size")
                hyp.AdjustedFor(nc, size)
            | None -> hyp

        printf "%s" (hyp.ToString())
        0)

/// Prints a dataset tool's report: warnings and lines to stdout, errors to stderr; exit 2 on any error.
let private report (r: YoloSpp.Data.ToolReport) =
    for w in r.Warnings do
        printfn "warning: %s" w

    for l in r.Lines do
        printfn "%s" l

    for e in r.Errors do
        eprintfn "%s" e

    if r.Ok then 0 else 2

let private runCheckData (args: ParseResults<CheckDataArgs>) =
    Errors.run (fun () ->
        args.TryGetResult CheckDataArgs.Max_Pixels
        |> Option.iter (fun n -> RgbImage.MaxPixels <- n)

        report (YoloSpp.Data.DatasetTools.CheckData(args.GetResult CheckDataArgs.Data)))

let private runPlotLabels (args: ParseResults<PlotLabelsArgs>) =
    Errors.run (fun () ->
        args.TryGetResult PlotLabelsArgs.Max_Pixels
        |> Option.iter (fun n -> RgbImage.MaxPixels <- n)

        let data = YoloSpp.Data.DataFiles.Load(args.GetResult PlotLabelsArgs.Data)
        let names = Seq.toArray data.Names

        let source =
            match args.GetResult(PlotLabelsArgs.Split, "train") with
            | "train" -> data.Train
            | "valid"
            | "val" -> data.Valid
            | other -> raise (ArgumentException(sprintf "--split %s: expected train or valid" other))

        let size = args.GetResult(PlotLabelsArgs.Img_Size, 512)
        DarkNet.CheckImageSize(size, "--img-size")

        use folder =
            YoloSpp.Training.RunFolder.Claim(
                args.GetResult(PlotLabelsArgs.Out, Path.Combine("runs", "labels")),
                args.Contains PlotLabelsArgs.Exist_Ok,
                Func<_, _>(YoloSpp.Training.RunFolder.AnyEntry),
                "plot-labels run",
                "--out"
            )

        folder.Notice |> Option.ofObj |> Option.iter (printfn "%s")
        let out = folder.Path
        let sample = Path.Combine(out, "labels_sample.jpg")
        YoloSpp.Evaluation.DatasetCharts.WriteSample(source, names, sample, args.GetResult(N, 16), size)
        let labels = Path.Combine(out, "labels.png")

        let dataset =
            YoloSpp.Data.YoloDataset.Open(source, names.Length, YoloSpp.Data.DataOptions(ImageSize = size))

        YoloSpp.Evaluation.DatasetCharts.WriteLabels(dataset, names, labels)
        printfn "%s: %d images, %d labels" source dataset.Count (dataset.Items |> Seq.sumBy (fun it -> it.Labels.Count))
        printfn "picture: %s" sample
        printfn "picture: %s" labels
        0)

let private runVoc2Yolo (args: ParseResults<Voc2YoloArgs>) =
    YoloSpp.Data.VocToYoloOptions(
        VocRoot = args.GetResult Voc_Root,
        Classes = args.GetResult Voc2YoloArgs.Classes,
        Output = args.GetResult Voc2YoloArgs.Output,
        TrainList = args.GetResult(Train_List, "train.txt"),
        ValList = args.GetResult(Val_List, "val.txt"),
        SkipDifficult = args.Contains Skip_Difficult
    )
    |> YoloSpp.Data.DatasetTools.VocToYolo
    |> report

let private runCoco2Yolo (args: ParseResults<Coco2YoloArgs>) =
    YoloSpp.Data.CocoToYoloOptions(
        Jsons = args.GetResults Json,
        Images = args.GetResults Coco2YoloArgs.Images,
        Output = args.GetResult Coco2YoloArgs.Output,
        ValFraction = args.GetResult(Val_Fraction, 0.1)
    )
    |> YoloSpp.Data.DatasetTools.CocoToYolo
    |> report

let private runYolo2Coco (args: ParseResults<Yolo2CocoArgs>) =
    Errors.run (fun () ->
        YoloSpp.Data.DatasetTools.YoloToCoco(
            args.GetResult Yolo2CocoArgs.Data,
            args.GetResult(Yolo2CocoArgs.Split, "valid"),
            args.GetResult Yolo2CocoArgs.Output
        )
        |> report)

let private runDatasetCfg (args: ParseResults<DatasetCfgArgs>) =
    YoloSpp.Data.DatasetTools.DatasetConfig(args.GetResult Root, args.GetResult Names, args.GetResult DatasetCfgArgs.Cfg, args.GetResult DatasetCfgArgs.Output)
    |> report

let private runCfg (args: ParseResults<CfgArgs>) =
    let name = args.GetResult Topology
    let classes = args.GetResult(CfgArgs.Classes, ModelCfg.TopologyClasses name)

    Errors.run (fun () ->
        let cfg = ModelCfg.Topology(name, classes)

        let cfg =
            match args.TryGetResult CfgArgs.Img_Size with
            | Some s -> cfg.WithImageSize s
            | None -> cfg

        let path = args.GetResult CfgArgs.Output
        ModelCfg.Write(cfg, path)
        printfn "%s: %s, %d classes, %d layers" path name classes cfg.ModuleCount
        0)

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<Args>(programName = "yolospp")

    try
        let results = parser.ParseCommandLine(argv, raiseOnUsage = true)

        if results.Contains Version then
            printfn "yolospp %s" (Reflection.Assembly.GetExecutingAssembly().GetName().Version.ToString(3))
            0
        else
            match results.TryGetSubCommand() with
            | Some(Iou a) -> runIou a
            | Some(Hyp a) -> runHyp a
            | Some(Info a) -> InfoCommand.run a
            | Some(Train a) -> TrainSession.run a
            | Some(Check_Data a) -> runCheckData a
            | Some(Plot_Labels a) -> runPlotLabels a
            | Some(Voc2Yolo a) -> runVoc2Yolo a
            | Some(Coco2Yolo a) -> runCoco2Yolo a
            | Some(Yolo2Coco a) -> runYolo2Coco a
            | Some(Dataset_Cfg a) -> runDatasetCfg a
            | Some(Shapes a) -> ShapesCommand.run a
            | Some(Cocoeval a) -> CocoEvalCommand.run a
            | Some(Eval a) -> EvalCommand.run a
            | Some(Detect a) -> DetectCommand.run a
            | Some(Export a) -> ExportCommand.run a
            | Some(Mpi_Check a) -> MpiCheckCommand.run a
            | Some(Cfg a) -> runCfg a
            | Some(Doctor a) -> DoctorCommand.run a
            | Some(Anchors a) -> AnchorsCommand.run a
            | Some Version -> 0
            | None -> badInput (parser.PrintUsage(message = "yolospp: a command is required"))
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText ->
        printfn "%s" e.Message
        0
    | :? ArguParseException as e -> badInput e.Message
