// Trains a YOLOv3-SPP detector: the reference's train.py as an F# script over the YoloSpp library.
//
//   dotnet fsi scripts/train.fsx                 the demo: shapes dataset, cfg/shapes-spp.cfg at 160 px, ~10 min on 2 cores
//   dotnet fsi scripts/train.fsx --help          every option (the same as `yolospp train`)
//   dotnet fsi scripts/train.fsx --cfg cfg/my.cfg --data data/my.data --img-size 512 --epochs 100 --device cuda
//
// Run from the repository root. The first run builds the library and generates the dataset.
#if !YOLOSPP_LIBRARY
#load "bootstrap.fsx"
exit (Bootstrap.runWithLibrary (System.IO.Path.Combine(__SOURCE_DIRECTORY__, __SOURCE_FILE__)) (fsi.CommandLineArgs |> Array.skip 1))
#else
#load "yolospp.fsx"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/Argu.dll"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/yolospp.dll"

open System
open System.IO
open Argu
open TorchSharp
open YoloSpp
open YoloSpp.Cli
open YoloSpp.Data

Environment.CurrentDirectory <- Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))
let parser = ArgumentParser.Create<TrainCommand.TrainArgs>(programName = "dotnet fsi scripts/train.fsx")
let opt =
    try TrainCommand.toOptions (parser.ParseCommandLine(fsi.CommandLineArgs |> Array.skip 1))
    with :? ArguParseException as e -> eprintfn "%s" e.Message; exit (if e.ErrorCode = ErrorCode.HelpText then 0 else 2)
let device = Backend.ResolveDevice(opt.Device, Action<string>(printfn "%s"))
torch.manual_seed(int64 opt.Seed) |> ignore
printfn "Using %O device training." device

// ================================ step 1/5 data (and augmentation) ================================
TrainCommand.ensureDefaultData opt (printfn "%s")
let data = DataFiles.Load(opt.Data)
let nc = data.Data.Classes
let hyp = HyperParameters.Load(opt.Hyp).AdjustedFor(nc, opt.ImageSize) // cls *= nc/80, obj *= img_size/320
// multi-scale: the reference loads training images at the largest size and resizes each batch down
let grid = if opt.MultiScale then Nullable(Engine.MultiScaleGrid opt.ImageSize) else Nullable()
let trainSize = if opt.MultiScale then (let struct (_, hi) = Engine.MultiScaleGrid opt.ImageSize in hi * 32) else opt.ImageSize
let trainSet = YoloDataset.Open(data.Data.Train, nc, DataOptions(ImageSize = trainSize, BatchSize = opt.BatchSize, Augment = opt.Augment, Mosaic = opt.Mosaic, Rect = opt.Rect, Hyp = hyp, Shuffle = not opt.Rect, Seed = opt.Seed))
let validSet = YoloDataset.Open(data.Data.Valid, nc, DataOptions(ImageSize = opt.ImageSize, BatchSize = opt.BatchSize, Rect = true, Hyp = hyp))
let trainLoader = YoloDataLoader(trainSet)
printfn "%s\n%s" trainSet.Scan.Summary validSet.Scan.Summary

// ================================ step 2/5 model ================================
let model = DarkNet.FromCfgFile(opt.Cfg)
let resume = if isNull opt.Weights then None elif Checkpoint.IsCheckpoint opt.Weights then Some(Checkpoint.ReadInfo(opt.Weights)) else None
if not (isNull opt.Weights) then printfn "%s: %O" opt.Weights (ModelWeights.Load(model, opt.Weights))
if opt.FreezeLayers then ModelWeights.Freeze(model, onlyPredictors = true)
model.``to``(device) |> ignore

// ================================ step 3/5 optimizer and learning rate ================================
let trainable = model.parameters() |> Seq.filter (fun p -> p.requires_grad) |> Seq.toArray
let optimizer = new Sgd(trainable, hyp.Lr0, momentum = hyp.Momentum, weightDecay = hyp.WeightDecay, nesterov = true)
let startEpoch = match resume with Some r -> (Checkpoint.LoadOptimizer(opt.Weights, optimizer) |> ignore; r.Epoch + 1) | None -> 0
let epochs = if startEpoch > opt.Epochs then startEpoch + opt.Epochs else opt.Epochs
let accumulate = opt.Accumulate |> Option.ofNullable |> Option.defaultValue (YoloSpp.Training.Schedule.accumulate opt.BatchSize)
// the cosine LambdaLR of the reference is applied per epoch inside Engine.TrainOneEpoch

// ================================ step 4/5 loss ================================
// compute_loss of the reference (F# core): GIoU box loss, objectness BCE with a GIoU target, class BCE
let lossHyp = hyp.LossHyperParameters
let spec: YoloSpp.Training.Loss.YoloSpec = { AnchorVecs = model.AnchorVecs |> Array.map (fun a -> a.``to``(device)); Nc = nc }
// mixed precision: float16 convolutions + loss scaling on CUDA with --amp (as the reference), opt-in bfloat16 with --bf16
let precision = MixedPrecision.For(opt.Amp, opt.Bf16, device)
let scaler = precision.CreateScaler()

// ================================ step 5/5 train ================================
let log = new TrainingLog(opt.OutputDir, opt.ResultName, resume |> Option.map (fun r -> r.TrainingResults) |> Option.toObj)
let lastCkpt, bestCkpt = Path.Combine(opt.OutputDir, "last.ckpt"), Path.Combine(opt.OutputDir, "best.ckpt")
let cfgText = File.ReadAllText opt.Cfg
let mutable bestMap = resume |> Option.map (fun r -> r.BestMap) |> Option.defaultValue 0.0
let mutable final: EvaluationResult = null
let started = Diagnostics.Stopwatch.StartNew()
let mutable stop = false
printfn "starting training for %d epochs..." (epochs - startEpoch)
for epoch in startEpoch .. epochs - 1 do
    if not stop then
        let timeLeft = opt.TimeLimit |> Option.ofNullable |> Option.map (fun l -> l - started.Elapsed) |> Option.toNullable
        let settings = EpochSettings(epoch, epochs, hyp, accumulate, opt.Warmup, grid, trainSize, Random(opt.Seed + epoch), timeLeft, ComputeType = precision.ComputeType)
        let outcome = Engine.TrainOneEpoch(model, optimizer, trainLoader, lossHyp, spec, scaler, device, settings, TrainCommand.progressPrinter ())
        match outcome.NonFinite with
        | null -> ()
        | why -> eprintfn "%s" why; exit 1
        stop <- outcome.TimeUp
        // evaluate every epoch (or only the last with --notest), as the reference
        let eval = if not opt.NoTest || epoch = epochs - 1 || stop then Evaluator.Evaluate(model, validSet, device, EvaluationOptions(), data.Names) else null
        if not (isNull eval) then
            printfn "epoch %d/%d  mAP@0.5 %.4f  mAP@0.5:0.95 %.4f" (epoch + 1) epochs eval.Map50 eval.Map
            final <- eval
            bestMap <- max bestMap eval.Map
        log.Add(EpochRecord(epoch, (if isNull eval then null else eval.Stats), outcome.MeanLosses, outcome.LearningRate))
        Checkpoint.Save(lastCkpt, model, optimizer, CheckpointInfo(epoch, bestMap, log.ResultsText, scaler.Scale, scaler.GrowthTracker, cfgText))
        if not (isNull eval) && eval.Map >= bestMap then File.Copy(lastCkpt, bestCkpt, true)

TrainCommand.printSummary (TrainResult(lastCkpt, (if File.Exists bestCkpt then bestCkpt else null), log.ResultsFile, log.PlotFile, log.TensorBoardDir, epochs - startEpoch, final, false))
printfn "training took %s" (started.Elapsed.ToString(@"mm\:ss"))
#endif
