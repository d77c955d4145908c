// Trains a YOLOv3-SPP detector: the reference's train.py as an F# script over the YoloSpp library.
//
//   dotnet fsi scripts/train.fsx                 the demo: shapes dataset, the shapes-spp network at 160 px, ~9 min on 2 cores
//   dotnet fsi scripts/train.fsx --help          every option (the same as `yolospp train`)
//   dotnet fsi scripts/train.fsx --cfg my.cfg --data my-data/my.data --img-size 512 --epochs 100 --device cuda
//
// Paths are the current folder's: the demo's dataset goes to ./data/shapes and the outputs to ./runs/train. The
// built-in network (--cfg shapes-spp | yolov3-spp) and hyperparameters (--hyp shapes | reference) need no file.
// The first run builds the library and generates the dataset.
#if !YOLOSPP_LIBRARY
#load "bootstrap.fsx"
exit (Bootstrap.runWithLibrary (System.IO.Path.Combine(__SOURCE_DIRECTORY__, __SOURCE_FILE__)) (fsi.CommandLineArgs |> Array.skip 1))
#else
#load "yolospp.fsx"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/Argu.dll"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/YoloSpp.App.dll"

open System
open Argu
open TorchSharp
open YoloSpp
open YoloSpp.App
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Platform
open YoloSpp.Training

let parser =
    ArgumentParser.Create<TrainArguments.TrainArgs>(programName = "dotnet fsi scripts/train.fsx")
// the options of `yolospp train`, defaulting to the shapes demo (TrainOptions.ShapesDemo)
let args =
    try
        parser.ParseCommandLine(fsi.CommandLineArgs |> Array.skip 1)
    with :? ArguParseException as e ->
        eprintfn "%s" e.Message
        exit (if e.ErrorCode = ErrorCode.HelpText then 0 else 2)

// one process, or one rank of `mpirun -np N dotnet fsi scripts/train.fsx` (data-parallel; rank 0 prints and writes)
exit (
    TrainSession.withRanks (fun comm log ->
        // options out of range or in conflict end here with exit code 2 and one line
        let opt = TrainArguments.toOptions args
        TrainArguments.applyImageLimit args
        let device = Backend.ResolveDevice(opt.Device, comm, Action<string> log)
        log (sprintf "Using %O device training." device)
        TrainSession.ensureDefaultData comm opt log

        // ================================ step 1/5 data (and augmentation) ================================
        // the .data file and names, hyp.yaml adjusted as train.py does (cls *= nc/80, obj *= img_size/320), the training
        // set and loader (at the multi-scale maximum when multi-scale is on; this rank's shard under mpirun), the
        // validation set (rect batches)
        let data = TrainSteps.Data(opt, Action<string> log, comm)

        // ================================ step 2/5 model ================================
        // DarkNet from the cfg, its starting weights (a .ckpt resumes), and what is frozen
        use model = TrainSteps.Model(opt, data, device, log)

        // ================================ step 3/5 optimizer and learning rate ================================
        // the recipe's optimizer over the trainable parameters (the demo's Adam; the reference's SGD nesterov with
        // --hyp reference or --optimizer sgd); the cosine LambdaLR and the epoch-0 warmup are applied per epoch
        use optimizer = TrainSteps.Optimizer(opt, model, data, log)

        // ================================ step 4/5 loss ================================
        // compute_loss of the reference (F# core): GIoU box loss, objectness BCE with a GIoU target, class BCE
        let loss = TrainSteps.Loss(model, data, device)

        // ================================ step 5/5 train ================================
        // per epoch: train_one_epoch, evaluate, results line, TensorBoard, plot, last.ckpt and best.ckpt; Ctrl+C stops
        // after the current batch with a resumable checkpoint
        let token, ctrlC = TrainSession.cancelOnCtrlC ()
        use _ = ctrlC
        let started = Diagnostics.Stopwatch.StartNew()
        log (sprintf "starting training for %d epochs..." opt.Epochs)

        let result =
            TrainSteps.Fit(opt, data, model, optimizer, loss, device, TrainSession.progressPrinter (), token, Action<string> log)

        if comm.Rank = 0 then
            TrainSession.printSummary result
            printfn "training took %s" (started.Elapsed.ToString(@"mm\:ss"))

        if result.Cancelled then 130 else 0)
)
#endif
