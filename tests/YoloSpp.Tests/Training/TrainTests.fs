/// Tests of the training loop on a tiny shapes set with the tiny cfg (seconds each).
module YoloSpp.Tests.Training.TrainTests

open System
open System.IO
open System.Threading
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests

/// A tiny dataset (12 train, 4 val images at 64 px) and the tiny cfg rewritten for its 5 classes, in a temp folder.
let private setup () =
    let dir = (Directory.CreateTempSubdirectory "yolospp-train-").FullName
    dir, TinyRuns.tinyShapes dir 12 4 3, TinyRuns.tinyCfg dir

/// The tests' small run: 2 epochs (or `epochs`) at 64 px, in dir/`output`; `singleClass` for --single-cls.
let private optionsOf dir data cfg (output: string) (epochs: int) (singleClass: bool) =
    Tiny.Options(cfg, data, Path.Combine(dir, output), epochs = epochs, singleClass = singleClass)

let private options dir data cfg = optionsOf dir data cfg "run" 2 false

let private withSetup (f: string -> string -> string -> unit) =
    let dir, data, cfg = setup ()

    try
        f dir data cfg
    finally
        try
            Directory.Delete(dir, true)
        with _ ->
            ()

let private stateOf (path: string) =
    use m =
        DarkNet.FromCfgFile(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName path), "tiny5.cfg"))

    ModelWeights.Load(m, path) |> ignore
    m.state_dict () |> Seq.map (fun kv -> kv.Key, kv.Value.clone ()) |> Map.ofSeq

let tests =
    testList
        "train"
        [
            test "a few training steps on one batch lower the loss" {
                withSetup (fun _ data cfg ->
                    use _ = torch.NewDisposeScope()
                    torch.manual_seed 0L |> ignore
                    use model = DarkNet.FromCfgFile cfg

                    let hyp =
                        HyperParameters.Load(Path.Combine(TestUtil.repoRoot, "cfg", "hyp.shapes.yaml")).AdjustedFor(5, 64)

                    let ds =
                        YoloSpp.Data.YoloDataset.Open(
                            Path.Combine(Path.GetDirectoryName data, "train.txt"),
                            5,
                            YoloSpp.Data.DataOptions(ImageSize = 64, BatchSize = 8)
                        )

                    use batch = YoloSpp.Data.YoloDataLoader(ds) |> Seq.head

                    let spec: YoloSpp.Training.Loss.YoloSpec =
                        {
                            AnchorVecs = model.AnchorVecs
                            Nc = 5
                        }

                    use opt = new Sgd(model.parameters (), 0.01, momentum = 0.9, nesterov = true)
                    model.train () |> ignore

                    let losses =
                        [
                            for _ in 1..15 ->
                                use _ = torch.NewDisposeScope()

                                let l =
                                    YoloSpp.Training.Loss.computeLoss hyp.LossHyperParameters 1.0 spec (model.forward(batch.Images).Raw) batch.Targets

                                l.Total.backward ()
                                opt.Step()
                                opt.ZeroGrad()
                                l.Total.item<float32> ()
                        ]

                    Expect.isLessThan (List.last losses) (0.8f * List.head losses) (sprintf "losses %A" losses))
            }
            test "a run writes checkpoints, a results line per epoch with 12 stats, a plot and TensorBoard events" {
                withSetup (fun dir data cfg ->
                    let r = Trainer(options dir data cfg).Run()
                    Expect.equal r.EpochsDone 2 "epochs"
                    Expect.isTrue (File.Exists r.LastCheckpoint) "last.ckpt"
                    Expect.isTrue (File.Exists r.BestCheckpoint) "best.ckpt"
                    let lines = File.ReadAllLines r.ResultsFile
                    Expect.equal lines.Length 2 "one line per evaluated epoch"
                    // the reference's line: epoch:N, 12 stats, total loss, LR, two spaces apart
                    Expect.isMatch lines.[1] @"^epoch:1 (\S+  ){13}\S+$" "epoch, 12 stats, total loss, lr"
                    let csv = File.ReadAllLines r.EpochsFile
                    Expect.equal csv.[0] TrainingLog.CsvHeader "csv header"
                    Expect.equal csv.Length 3 "a csv row per epoch"
                    let row = csv.[2].Split(',')
                    Expect.equal row.Length 23 "epoch, 4 losses, lr, 12 stats, precision, recall, 3 validation losses"

                    for v in row.[18..19] do
                        let x = float v
                        Expect.isTrue (x >= 0.0 && x <= 1.0) (sprintf "precision and recall in [0, 1]: %s" v)

                    for v in row.[20..22] do
                        Expect.isTrue (float v > 0.0 && Double.IsFinite(float v)) (sprintf "a validation loss: %s" v)

                    Expect.isTrue r.Final.Loss.HasValue "the final evaluation's validation loss"

                    Expect.isTrue (File.ReadAllBytes(r.PlotFile).[1..3] = "PNG"B) "png"
                    Expect.isNonEmpty (Directory.GetFiles(r.TensorBoardDir, "events.out.tfevents*", SearchOption.AllDirectories)) "tfevents"
                    Expect.equal (CheckpointFile.ReadInfo(r.LastCheckpoint).Epoch) 1 "last completed epoch"
                    Expect.isNotNull r.Final "evaluated"
                    // the first epoch's first batches, as the network saw them (yolov5's train_batch0..2.jpg)
                    let plots =
                        Directory.GetFiles(r.OutputDir, "train_batch*.jpg")
                        |> Array.map Path.GetFileName
                        |> Array.sort

                    Expect.equal plots [| "train_batch0.jpg"; "train_batch1.jpg"; "train_batch2.jpg" |] "three batch plots"
                    let first = RgbImage.Load(Path.Combine(r.OutputDir, "train_batch0.jpg"))
                    Expect.isGreaterThan first.Width 0 "a readable JPEG")
            }
            test "--single-cls trains one class: labels class 0, cls gain × 1/80, a one-class cfg required and trained" {
                withSetup (fun dir data cfg ->
                    let single (cfg: string) = optionsOf dir data cfg "single" 1 true
                    let o = single cfg
                    let d = TrainSteps.Data o
                    let full = TrainSteps.Data(options dir data cfg)
                    Expect.equal d.NumClasses 1 "one class"
                    Expect.equal d.ClassNames.Count 1 "one name"
                    let cls (t: TrainingData) = t.Hyp.LossHyperParameters.Cls
                    Expect.floatClose Accuracy.veryHigh (cls d * 5.0) (cls full) "cls × nc / 80 with nc = 1"

                    let message =
                        TestUtil.throwsMessage<ArgumentException> (fun () -> TrainSteps.Model(o, d, torch.CPU) |> ignore)

                    Expect.stringContains message "--single-cls trains one" "a five-class cfg is refused, saying why"
                    let one = Path.Combine(dir, "tiny1.cfg")
                    ModelCfg.WriteWithClasses(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"), one, 1)
                    let r = Trainer(single one).Run()
                    Expect.equal r.EpochsDone 1 "trained"
                    Expect.equal r.Final.PerClass.Count 1 "evaluated as one class")
            }
            test "the results line has the reference's digits (Python's str(round(x, 4)), LR to 6 places)" {
                // train.py: [str(round(i, 4)) for i in result_info + [mloss[-1]]] + [str(round(lr, 6))], joined by two
                // spaces; this line was printed by Python 3 for these values
                let stats =
                    [|
                        0.41234567
                        0.72805
                        0.4
                        0.0
                        0.123449999
                        0.5
                        0.33335
                        0.6
                        0.61
                        1e-05
                        0.99995
                        1.0
                    |]

                Expect.equal
                    (TrainingLog.ResultsLine(7, stats, 3.14159265, 1.6349e-05))
                    "epoch:7 0.4123  0.728  0.4  0.0  0.1234  0.5  0.3333  0.6  0.61  0.0  1.0  1.0  3.1416  1.6e-05"
                    "Python's digits"
            }
            test "cancellation leaves a loadable checkpoint; resuming continues with the same LR and optimizer state" {
                withSetup (fun dir data cfg ->
                    let o = options dir data cfg
                    use cts = new CancellationTokenSource()

                    let progress =
                        { new IProgress<TrainProgress> with
                            member _.Report p =
                                (if p.Epoch = 1 && p.Batch >= 1 then
                                     cts.Cancel())
                        }

                    let r = Trainer(o).Run(progress, cts.Token)
                    Expect.isTrue r.Cancelled "cancelled"
                    Expect.equal (CheckpointFile.ReadInfo(r.LastCheckpoint).Epoch) 0 "the interrupted epoch is redone on resume"

                    let report =
                        (use m = DarkNet.FromCfgFile cfg in ModelWeights.Load(m, r.LastCheckpoint))

                    Expect.isEmpty report.Skipped "the checkpoint loads completely"
                    // optimizer state: load it into a fresh Adam (the demo recipe's) and save it again: byte-identical
                    use m = DarkNet.FromCfgFile cfg
                    let hyp = HyperParameters.LoadOrNamed(o.Hyp)
                    Expect.equal hyp.Optimizer OptimizerKind.Adam "the demo's recipe trains with Adam"
                    let trainable = m.parameters () |> Seq.toArray

                    use adam =
                        new Adam(trainable, 0.5, beta1 = hyp.Momentum, weightDecay = hyp.WeightDecay, decays = Array.map Adam.DecaysByDefault trainable)

                    Expect.isTrue (Checkpoint.LoadOptimizer(r.LastCheckpoint, adam)) "has optimizer state"
                    Expect.isTrue (adam.ExpAvg |> Seq.forall (fun b -> not (isNull b))) "every first moment restored"
                    Expect.isTrue (adam.ExpAvgSq |> Seq.forall (fun b -> not (isNull b))) "every second moment restored"
                    // the checkpoint's optimizer is Adam: an SGD cannot take its state, and says which to use
                    use sgd = new Sgd(trainable, 0.5, momentum = 0.9, nesterov = true)

                    let refused =
                        Expect.throwsC (fun () -> Checkpoint.LoadOptimizer(r.LastCheckpoint, sgd) |> ignore) id

                    Expect.stringContains refused.Message "--optimizer adam" "names the optimizer to resume with"
                    let again = Path.Combine(dir, "again.ckpt")
                    Checkpoint.Save(again, m, adam, CheckpointFile.ReadInfo(r.LastCheckpoint))

                    let bytes (p: string) (name: string) =
                        use z = IO.Compression.ZipFile.OpenRead p
                        use s = z.GetEntry(name).Open()
                        use ms = new MemoryStream()
                        s.CopyTo ms
                        ms.ToArray()

                    Expect.isTrue (bytes again "optimizer.safetensors" = bytes r.LastCheckpoint "optimizer.safetensors") "moments restored exactly"
                    Expect.isTrue (bytes again "optimizer.json" = bytes r.LastCheckpoint "optimizer.json") "lr and step counts restored exactly"
                    // resuming trains epoch 1 at the cosine LR of epoch 1
                    let resumed =
                        Tiny.Options(o.Cfg, o.Data, o.OutputDir, epochs = 2, weights = r.LastCheckpoint)

                    let seen = Collections.Generic.List<TrainProgress>()

                    let r2 =
                        Trainer(resumed)
                            .Run(
                                { new IProgress<TrainProgress> with
                                    member _.Report p = seen.Add p
                                }
                            )

                    Expect.equal r2.EpochsDone 1 "one epoch left"
                    Expect.isTrue (seen |> Seq.forall (fun p -> p.Epoch = 1)) "starts at epoch 1"

                    let expectedLr =
                        HyperParameters.LoadOrNamed(o.Hyp).Lr0
                        * YoloSpp.Training.Schedule.cosine 2 0.01 1

                    Expect.floatClose Accuracy.veryHigh (seen.[0].LearningRate) expectedLr "lr of epoch 1"
                    Expect.equal (File.ReadAllLines r2.ResultsFile).Length 2 "results continue the interrupted run's file")
            }
            test "TrainOptions.Optimizer overrides the recipe's: an SGD run checkpoints momentum buffers that a fresh SGD restores exactly" {
                withSetup (fun dir data cfg ->
                    let o =
                        Tiny.Options(cfg, data, Path.Combine(dir, "sgd"), epochs = 1, optimizer = OptimizerKind.Sgd)

                    let r = Trainer(o).Run()
                    use m = DarkNet.FromCfgFile cfg
                    let hyp = HyperParameters.LoadOrNamed(o.Hyp)

                    use sgd =
                        new Sgd(m.parameters (), 0.5, momentum = hyp.Momentum, weightDecay = hyp.WeightDecay, nesterov = true)

                    Expect.isTrue (Checkpoint.LoadOptimizer(r.LastCheckpoint, sgd)) "has optimizer state"
                    Expect.isTrue (sgd.MomentumBuffers |> Seq.forall (fun b -> not (isNull b))) "every momentum buffer restored"
                    Expect.equal sgd.Steps 3L "three batches of 4 from 12 images, one step each"
                    Expect.floatClose Accuracy.veryHigh sgd.LearningRate hyp.Lr0 "the epoch's learning rate")
            }
            test "a non-finite loss stops training and names the batch's images" {
                withSetup (fun dir data cfg ->
                    let hyp = Path.Combine(dir, "inf.yaml")
                    File.WriteAllText(hyp, File.ReadAllText(Path.Combine(TestUtil.repoRoot, "cfg", "hyp.shapes.yaml")).Replace("giou: 3.54", "giou: 1e308"))
                    let o = options dir data cfg

                    let o =
                        TrainOptions(
                            Cfg = o.Cfg,
                            Data = o.Data,
                            Hyp = hyp,
                            Epochs = 1,
                            BatchSize = 4,
                            ImageSize = 64,
                            MultiScale = false,
                            Mosaic = false,
                            Device = "cpu",
                            OutputDir = o.OutputDir
                        )

                    let msg =
                        TestUtil.throwsMessage<NonFiniteLossException> (fun () -> Trainer(o).Run() |> ignore)

                    Expect.stringContains msg "non-finite loss" "reason"
                    Expect.stringContains msg ".jpg" "image paths")
            }
            test "on the CPU, amp requested is exactly the plain path" {
                withSetup (fun dir data cfg ->
                    let run (amp: bool) (out: string) =
                        let o = options dir data cfg

                        Trainer(Tiny.Options(o.Cfg, o.Data, Path.Combine(dir, out), epochs = 1, amp = amp, noTest = true, seed = 5)).Run().LastCheckpoint

                    let a, b = stateOf (run true "amp"), stateOf (run false "plain")

                    for KeyValue(k, v) in a do
                        Expect.isTrue (v.eq(b.[k]).all().item<bool> ()) (sprintf "%s identical" k))
            }
            test "mixed precision: float16 and bfloat16 convolutions keep float32 outputs, losses and last-layer gradients close to float32" {
                use _ = torch.NewDisposeScope()
                torch.manual_seed 1L |> ignore
                use m = DarkNet.FromCfgFile(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"))
                m.train () |> ignore
                let x = torch.rand (2L, 3L, 64L, 64L)

                let lossOf () =
                    m.forward(x).Raw
                    |> Array.map (fun t -> t.square().mean ())
                    |> Array.reduce (fun a b -> a.add (b))

                let lastGrad () =
                    (m.parameters () |> Seq.last).grad.flatten().clone ()

                let l32 = lossOf ()
                l32.backward ()
                let g32 = lastGrad ()
                let weights32 = m.parameters () |> Seq.map (fun p -> p.dtype) |> Array.ofSeq

                for dt in [ torch.ScalarType.Float16; torch.ScalarType.BFloat16 ] do
                    m.zero_grad ()
                    m.ComputeType <- Nullable dt
                    let raw = m.forward(x).Raw
                    Expect.isTrue (raw |> Array.forall (fun r -> r.dtype = torch.ScalarType.Float32)) (sprintf "%A: heads are float32" dt)
                    let l = lossOf ()
                    l.backward ()
                    let rel = abs (l.item<float32> () - l32.item<float32> ()) / l32.item<float32> ()
                    Expect.isLessThan rel 0.01f (sprintf "%A: loss within 1%% of float32" dt)

                    let cos =
                        torch.nn.functional.cosine_similarity(lastGrad (), g32, 0L).item<float32> ()

                    Expect.isGreaterThan cos 0.999f (sprintf "%A: prediction-layer gradient matches float32" dt)
                    Expect.sequenceEqual (m.parameters () |> Seq.map (fun p -> p.dtype)) weights32 "master weights stay float32"

                m.ComputeType <- Nullable()
                Expect.isTrue (m.ComputeType = Nullable()) "back to float32"
                Expect.throws (fun () -> m.ComputeType <- Nullable torch.ScalarType.Int64) "integer compute type rejected"
            }
            test "bf16 training runs the epoch in bfloat16, restores float32 after it and lowers the loss" {
                withSetup (fun dir data cfg ->
                    let o = options dir data cfg
                    let messages = ResizeArray<string>()

                    let r =
                        Trainer(
                            Tiny.Options(o.Cfg, o.Data, Path.Combine(dir, "bf16"), epochs = 3, bf16 = true, noTest = true, seed = 5),
                            Action<string>(fun m -> messages.Add m)
                        )
                            .Run()

                    Expect.exists messages (fun m -> m.Contains "bfloat16") (sprintf "announces the mode: %A" messages)
                    Expect.equal (File.ReadAllLines r.ResultsFile).Length 1 "--notest: only the last epoch is evaluated and written, as the reference"
                    let lines = File.ReadAllLines r.EpochsFile
                    Expect.equal lines.Length 4 "a csv row per epoch"
                    // columns: epoch, mean box/obj/cls/total loss, LR, 12 COCO stats
                    let total (l: string) =
                        Double.Parse(l.Split(',').[4], Globalization.CultureInfo.InvariantCulture)

                    Expect.isLessThan (total lines.[3]) (total lines.[1]) (sprintf "total loss falls: %A" lines)
                    Expect.isTrue (MixedPrecision.For(true, false, torch.CPU) = MixedPrecision(Nullable(), false)) "amp on the CPU: the plain path"
                    Expect.isTrue (MixedPrecision.For(false, true, torch.CPU).ComputeType = Nullable torch.ScalarType.BFloat16) "bf16 opt-in")
            }
            test "accumulation as the reference: ni = i + nb·epoch, a step after every ni divisible by accumulate, leftovers carry over" {
                // train_one_epoch: ni = i + nb * epoch; `if ni % accumulate == 0: optimizer.step()`; no zero_grad at an
                // epoch's start; the warmup epoch forces accumulate 1. For nb = 10 and accumulate 4 the optimizer steps after
                // ni = 0, 4, 8 | 12, 16 | 20, 24, 28, i.e. batches i = 0, 4, 8 | 2, 6 | 0, 4, 8.
                let steps warmup =
                    [
                        for epoch in 0..2 do
                            let acc = if warmup && epoch = 0 then 1 else 4

                            yield
                                [
                                    for i in 0..9 do
                                        if YoloSpp.Training.Schedule.isBoundary acc (YoloSpp.Training.Schedule.integratedBatch 10 epoch i) then
                                            yield i
                                ]
                    ]

                Expect.equal (steps false) [ [ 0; 4; 8 ]; [ 2; 6 ]; [ 0; 4; 8 ] ] "steps without warmup"
                Expect.equal (steps true) [ [ 0..9 ]; [ 2; 6 ]; [ 0; 4; 8 ] ] "steps with the warmup epoch"
                // and the engine takes exactly those steps: 10 batches of one image, accumulate 4
                withSetup (fun dir data cfg ->
                    use _ = torch.NewDisposeScope()

                    let hyp =
                        HyperParameters.Load(Path.Combine(TestUtil.repoRoot, "cfg", "hyp.shapes.yaml")).AdjustedFor(5, 64)
                    // ten of the training images, one a batch
                    let list = Path.Combine(dir, "ten.txt")

                    let images =
                        Directory.GetFiles(Path.Combine(Path.GetDirectoryName data, "images", "train"))
                        |> Array.sort
                        |> Array.truncate 10

                    File.WriteAllLines(list, images)

                    let train =
                        YoloSpp.Data.YoloDataset.Open(list, 5, YoloSpp.Data.DataOptions(ImageSize = 64, BatchSize = 1, Hyp = hyp, Seed = 1))

                    let loader = YoloSpp.Data.YoloDataLoader(train)
                    Expect.equal loader.BatchCount 10 "10 batches"

                    for warmup, expected in [ false, [ 3L; 5L; 8L ]; true, [ 10L; 12L; 15L ] ] do
                        use model = DarkNet.FromCfgFile cfg
                        use sgd = new Sgd(model.parameters (), 0.001, momentum = 0.9, nesterov = true)
                        let loss = YoloLoss.For(model, hyp)

                        let counts =
                            [
                                for epoch in 0..2 do
                                    let st =
                                        EpochSettings(epoch, 3, hyp, 4, warmup, Nullable(), 64, Random 0, Nullable())

                                    Engine.TrainOneEpoch(model, sgd, loader, loss, LossScaler(false), torch.CPU, st)
                                    |> ignore

                                    yield sgd.Steps
                            ]

                        Expect.equal counts expected (sprintf "optimizer steps after each epoch (warmup %b)" warmup))
            }
            test "resuming a run that froze layers trains the same parameters with its optimizer state" {
                withSetup (fun dir data cfg ->
                    let o = options dir data cfg

                    let frozen =
                        Tiny.Options(o.Cfg, o.Data, Path.Combine(dir, "frozen"), epochs = 1, freezeLayers = true, noTest = true)

                    let r = Trainer(frozen).Run()
                    let info = CheckpointFile.ReadInfo r.LastCheckpoint
                    Expect.equal info.Trainable.Count 6 "three prediction convs: weight and bias each"
                    // resume without --freeze-layers: the checkpoint's frozen set comes back, and the optimizer state fits it
                    let resumed =
                        Tiny.Options(o.Cfg, o.Data, Path.Combine(dir, "frozen"), epochs = 2, weights = r.LastCheckpoint, noTest = true)

                    let before = stateOf r.LastCheckpoint
                    let r2 = Trainer(resumed).Run()
                    Expect.equal r2.EpochsDone 1 "epoch 1 trained"
                    let after = stateOf r2.LastCheckpoint
                    let trainable = set info.Trainable

                    for KeyValue(k, v) in before do
                        if k.EndsWith ".weight" || k.EndsWith ".bias" then
                            let same = v.eq(after.[k]).all().item<bool> ()

                            if trainable.Contains k then
                                Expect.isFalse same (sprintf "%s trained" k)
                            else
                                Expect.isTrue same (sprintf "%s frozen" k))
            }
            test "a cfg whose class count differs from the data is a clear error" {
                withSetup (fun dir data _ ->
                    let o = options dir data (Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"))

                    let msg =
                        TestUtil.throwsMessage<ArgumentException> (fun () -> Trainer(o).Run() |> ignore)

                    Expect.stringContains msg "has 2 classes but" "message")
            }
        ]
