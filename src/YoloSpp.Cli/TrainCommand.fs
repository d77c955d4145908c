/// `yolospp train`: the reference's train.py options (kebab-case), defaulting to the shapes demo.
module YoloSpp.Cli.TrainCommand

open System
open System.IO
open System.Threading
open Argu
open YoloSpp

type TrainArgs =
    | Cfg of path: string
    | Data of path: string
    | Hyp of path: string
    | Weights of path: string
    | Epochs of int
    | Batch_Size of int
    | Img_Size of int
    | Savebest of bool
    | Notest
    | Freeze_Layers
    | Device of string
    | Multi_Scale of bool
    | Warmup of bool
    | Augment of bool
    | Rect
    | Mosaic of bool
    | Amp of bool
    | Bf16
    | Result_Name of string
    | Output of dir: string
    | Seed of int
    | Accumulate of int
    | Time_Limit of minutes: float
    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Cfg _ -> "Darknet cfg (default cfg/shapes-spp.cfg, the demo's small SPP network)"
            | Data _ -> "dataset .data file (default data/shapes/shapes.data, generated with `yolospp shapes` when absent)"
            | Hyp _ -> "hyperparameters yaml (default cfg/hyp.shapes.yaml; the reference's is cfg/hyp.yaml)"
            | Weights _ -> "start from weights: a .ckpt resumes exactly; .weights/.pt/.safetensors load the tensors whose sizes match"
            | Epochs _ -> "epochs to train (default 30, about 10 minutes of the demo on 2 cores; below a resumed checkpoint's epoch: that many more)"
            | Batch_Size _ -> "images per batch (default 8: twice the optimizer steps of 16 per epoch, which the demo learns from faster)"
            | Img_Size _ -> "train and test image size, a multiple of 32 (default 160)"
            | Savebest _ -> "keep only the best checkpoint besides last.ckpt (default true); false keeps one per epoch"
            | Notest -> "evaluate only after the last epoch"
            | Freeze_Layers -> "train only the three prediction convs"
            | Device _ -> "cpu, cuda or cuda:N (default cuda:0; falls back to the CPU with a notice)"
            | Multi_Scale _ -> "multi-scale batches in [img/1.5, img/0.667] (default false for the demo; the reference: true)"
            | Warmup _ -> "epoch-0 LR warmup (default true)"
            | Augment _ -> "augment training images (default true)"
            | Rect -> "rectangular training batches (no shuffle, no mosaic)"
            | Mosaic _ -> "mosaic augmentation (default false for the demo; the reference: true)"
            | Amp _ -> "mixed precision on CUDA: float16 convolutions, float32 master weights, dynamic loss scaling (default true; no effect on the CPU)"
            | Bf16 -> "opt-in bfloat16 convolutions with float32 master weights, on any device (fast only where the CPU or GPU has bf16 units)"
            | Result_Name _ -> "results file name in the output folder (default results.txt)"
            | Output _ -> "output folder for checkpoints, results, plot, TensorBoard (default runs/train)"
            | Seed _ -> "random seed (default 0)"
            | Accumulate _ -> "batches per optimizer step (default 1, which trains the demo faster; the reference: max(round(64 / batch), 1), e.g. 4 for batch 16)"
            | Time_Limit _ -> "stop training after this many minutes (the current epoch is evaluated and saved)"

/// The demo's defaults, relative to the repository root (or the current folder).
let defaultCfg = Path.Combine("cfg", "shapes-spp.cfg")
let defaultHyp = Path.Combine("cfg", "hyp.shapes.yaml")
let defaultData = Path.Combine("data", "shapes", "shapes.data")

/// Training options from parsed arguments.
let toOptions (a: ParseResults<TrainArgs>) : TrainOptions =
    TrainOptions(
        Cfg = a.GetResult(Cfg, defaultCfg), Data = a.GetResult(Data, defaultData), Hyp = a.GetResult(Hyp, defaultHyp),
        Weights = (a.TryGetResult Weights |> Option.toObj), Epochs = a.GetResult(Epochs, 30), BatchSize = a.GetResult(Batch_Size, 8),
        ImageSize = a.GetResult(Img_Size, 160), SaveBest = a.GetResult(Savebest, true), NoTest = a.Contains Notest,
        FreezeLayers = a.Contains Freeze_Layers, Device = a.GetResult(Device, "cuda:0"), MultiScale = a.GetResult(Multi_Scale, false),
        Warmup = a.GetResult(Warmup, true), Augment = a.GetResult(Augment, true), Rect = a.Contains Rect,
        Mosaic = a.GetResult(Mosaic, false), Amp = a.GetResult(Amp, true), Bf16 = a.Contains Bf16, ResultName = a.GetResult(Result_Name, "results.txt"),
        OutputDir = a.GetResult(Output, Path.Combine("runs", "train")), Seed = a.GetResult(Seed, 0),
        Accumulate = Nullable(a.GetResult(Accumulate, 1)),
        TimeLimit = (a.TryGetResult Time_Limit |> Option.map TimeSpan.FromMinutes |> Option.toNullable))

/// Generates the shapes dataset when the options point at the default one and it is absent.
let ensureDefaultData (o: TrainOptions) (log: string -> unit) =
    if Path.GetFullPath o.Data = Path.GetFullPath defaultData && not (File.Exists o.Data) then
        log (sprintf "generating the default shapes dataset in %s" (Path.GetDirectoryName o.Data))
        ShapesDataset.Generate(ShapesOptions(Path.GetDirectoryName o.Data)) |> ignore

/// Progress lines: one updating line on a terminal, a plain line every 25% of an epoch otherwise.
let progressPrinter () =
    let interactive = not Console.IsOutputRedirected
    let mutable lastQuarter = (-1, -1)
    { new IProgress<TrainProgress> with
        member _.Report p =
            let losses = p.MeanLosses |> Seq.map (fun v -> v.ToString("F3")) |> String.concat " "
            match p.Evaluation with
            | null ->
                let line =
                    sprintf "epoch %d/%d  %d/%d  loss (box obj cls total) %s  lr %.5f  %.0f img/s  eta %s"
                        (p.Epoch + 1) p.Epochs p.Batch p.Batches losses p.LearningRate p.ImagesPerSecond (p.Eta.ToString(@"mm\:ss"))
                if interactive then Console.Write("\r" + line.PadRight(Console.WindowWidth - 1))
                else
                    let quarter = (p.Epoch, p.Batch * 4 / max 1 p.Batches)
                    if quarter <> lastQuarter then
                        lastQuarter <- quarter
                        printfn "%s" line
            | e ->
                if interactive then Console.WriteLine()
                printfn "epoch %d/%d  mAP@0.5 %.4f  mAP@0.5:0.95 %.4f  (eval %.1f s)" (p.Epoch + 1) p.Epochs e.Map50 e.Map e.Elapsed.TotalSeconds }

/// Prints the final summary: mAP and where the outputs are.
let printSummary (r: TrainResult) =
    match r.Final with
    | null -> printfn "no evaluation ran"
    | e ->
        printfn "%s" e.Summary
        for c in e.PerClass do printfn "  %-12s AP@0.5 %.4f  AP@0.5:0.95 %.4f" c.Name c.Ap50 c.Ap
        printfn "mAP@0.5: %.4f" e.Map50
        printfn "mAP@0.5:0.95: %.4f" e.Map
    printfn "weights: %s%s" r.LastCheckpoint (match r.BestCheckpoint with null -> "" | b -> sprintf " (best: %s)" b)
    printfn "results: %s" r.ResultsFile
    printfn "plot: %s" r.PlotFile
    printfn "tensorboard: %s" r.TensorBoardDir

/// Runs the command; Ctrl+C stops after the current batch and keeps a resumable checkpoint.
let run (args: ParseResults<TrainArgs>) : int =
    try
        let o = toOptions args
        ensureDefaultData o (printfn "%s")
        use cts = new CancellationTokenSource()
        let handler = ConsoleCancelEventHandler(fun _ e -> e.Cancel <- true; cts.Cancel(); eprintfn "stopping after this batch...")
        Console.CancelKeyPress.AddHandler handler
        try
            let r = Trainer(o, (fun m -> printfn "%s" m)).Run(progressPrinter (), cts.Token)
            printSummary r
            if r.Cancelled then 130 else 0
        finally Console.CancelKeyPress.RemoveHandler handler
    with
    | :? NonFiniteLossException as e -> eprintfn "%s" e.Message; 1
    | :? CfgException as e -> (for l in Seq.truncate 20 e.Errors do eprintfn "%s" l); 2
    | :? YoloSpp.Data.DatasetException as e -> (for l in Seq.truncate 20 e.Errors do eprintfn "%s" l); 2
    | :? FileNotFoundException as e -> eprintfn "%s" e.Message; 2
    | :? WeightsMismatchException as e -> eprintfn "%s" e.Message; 2
    | :? FormatException as e -> eprintfn "%s" e.Message; 2
    | :? ArgumentException as e -> eprintfn "%s" e.Message; 2
