/// Data-parallel training (the reference's train_multi_GPU.py): SyncBatchNorm's forward and backward against one
/// process with the whole batch; and under `mpirun -np 2` (skipped with a message without OpenMPI): the demo's
/// command trains and rank 0 alone prints and writes, 2 ranks × batch 2 end with the weights of 1 process × batch 4,
/// and a rank that dies ends the launch without a hang or a torn checkpoint.
module YoloSpp.Tests.Distributed.DataParallelTests

open System
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Distributed
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests
open YoloSpp.Tests.Distributed.MpiRun
open YoloSpp.Tests.FakeRanks

open YoloSpp.Platform

let private tinyCfg = Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg")

/// A training set of `n` 64-px shapes images whose label files are all the first one's (the same targets in every
/// image, so that every rank's half of a batch matches as many targets as the other's), and 2 validation images.
let private sameLabelsData (dir: string) (n: int) =
    let s =
        ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "data"), Train = n, Val = 2, Size = 64, Seed = 7))

    let labels =
        File.ReadAllLines(Path.Combine(s.Directory, "train.txt"))
        |> Array.map (fun img ->
            let full =
                if Path.IsPathRooted img then
                    img
                else
                    Path.Combine(s.Directory, img)

            Path.ChangeExtension(
                full.Replace(
                    $"{Path.DirectorySeparatorChar}images{Path.DirectorySeparatorChar}",
                    $"{Path.DirectorySeparatorChar}labels{Path.DirectorySeparatorChar}"
                ),
                ".txt"
            ))

    let first = labels |> Array.find (fun l -> File.Exists l && FileInfo(l).Length > 0L)

    for l in labels do
        if l <> first then
            File.Copy(first, l, true)

    s.DataFile

let private cfgFor (dir: string) =
    let cfg = Path.Combine(dir, "tiny5.cfg")
    ModelCfg.WriteWithClasses(tinyCfg, cfg, 5)
    cfg

/// Every tensor of a checkpoint's model.
let private stateOf (cfg: string) (ckpt: string) =
    use m = DarkNet.FromCfgFile cfg
    CheckpointFile.LoadModel(ckpt, m) |> ignore
    m.state_dict () |> Seq.map (fun kv -> kv.Key, kv.Value.clone ()) |> Map.ofSeq

/// The largest max|a − b| / max|b| over the floating tensors of two states, and its tensor.
let private worst (a: Map<string, torch.Tensor>) (b: Map<string, torch.Tensor>) =
    a
    |> Map.toArray
    |> Array.filter (fun (_, t) -> t.is_floating_point ())
    |> Array.map (fun (k, t) -> k, (t - b[k]).abs().max().ToDouble() / (b[k].abs().max().ToDouble() + 1e-12))
    |> Array.maxBy snd

let private trainArgs (data: string) (cfg: string) (output: string) (batch: int) (extra: string list) =
    [
        "train"
        "--data"
        data
        "--cfg"
        cfg
        "--hyp"
        Path.Combine(TestUtil.repoRoot, "cfg", "hyp.shapes.yaml")
        "--img-size"
        "64"
        "--batch-size"
        string batch
        "--device"
        "cpu"
        "--output"
        output
        "--seed"
        "5"
    ]
    @ extra

let tests =
    testList
        "data-parallel"
        [
            test "SyncBatchNorm over two identical ranks = BatchNorm over both batches: outputs, gradients, running statistics" {
                Backend.Initialize()
                torch.manual_seed 11L |> ignore
                use a = DarkNet.FromCfgFile tinyCfg
                torch.manual_seed 11L |> ignore
                use b = DarkNet.FromCfgFile tinyCfg
                a.SyncBatchNorm <- new TwoIdenticalRanks()
                a.train ()
                b.train ()
                // odd, non-square input: 2 images of 96 × 64
                use x = torch.rand (2L, 3L, 64L, 96L)
                use both = torch.cat ([| x; x |], 0L)
                let ra = a.forward(x).Raw
                let rb = b.forward(both).Raw
                torch.manual_seed 3L |> ignore
                let weights = ra |> Array.map (fun (r: torch.Tensor) -> torch.randn (r.shape))
                use half = (0.5).ToScalar()

                // relative to the largest value (float32 rounding through the layers: about 2e-6 of it)
                let relMax (a: torch.Tensor) (b: torch.Tensor) =
                    (a - b).abs().max().ToDouble() / (b.abs().max().ToDouble() + 1e-12)

                for k in 0 .. ra.Length - 1 do
                    Expect.isLessThan (relMax ra[k] (rb[k].narrow (0L, 0L, 2L))) 1e-5 (sprintf "head %d output" k)

                let la =
                    Array.map2 (fun (r: torch.Tensor) (w: torch.Tensor) -> (r * w).sum ()) ra weights
                    |> Array.reduce (+)

                let lb =
                    Array.map2
                        (fun (r: torch.Tensor) (w: torch.Tensor) -> ((r.narrow (0L, 0L, 2L) * w).sum () + (r.narrow (0L, 2L, 2L) * w).sum ()).mul half)
                        rb
                        weights
                    |> Array.reduce (+)

                la.backward ()
                lb.backward ()
                let pb = b.named_parameters () |> Seq.map (fun struct (n, p) -> n, p) |> Map.ofSeq

                for struct (name, p) in a.named_parameters () do
                    Expect.isLessThan (relMax p.grad pb[name].grad) 1e-4 (sprintf "gradient of %s" name)

                let sb = b.state_dict ()

                for kv in a.state_dict () do
                    if kv.Key.Contains "running_" then
                        Expect.isLessThan (relMax kv.Value sb[kv.Key]) 1e-5 kv.Key
                // eval mode does not synchronise
                a.eval ()
                b.eval ()
                use y = torch.rand (1L, 3L, 64L, 64L)
                Expect.isLessThan (relMax (a.forward y).Detections (b.forward y).Detections) 1e-5 "eval mode"
            }

            test "no Scalar or Tensor reaches the finalizer during SyncBatchNorm training steps" {
                Backend.Initialize()
                torch.manual_seed 2L |> ignore
                use model = DarkNet.FromCfgFile tinyCfg
                model.SyncBatchNorm <- new TwoIdenticalRanks()
                model.train ()
                use m = new NativeSafetyTests.FinalizerMonitor()

                let scalars, tensors =
                    NativeSafetyTests.finalizedDuring m (fun () ->
                        for _ in 1..5 do
                            use scope = torch.NewDisposeScope()
                            let raw = model.forward(torch.rand (2L, 3L, 64L, 96L)).Raw
                            (raw |> Array.map (fun r -> (r * r).sum ()) |> Array.reduce (+!)).backward ()
                            model.zero_grad ())

                Expect.equal scalars 0 "Scalars finalized (each one a temporary a GC could free mid-call)"
                Expect.equal tensors 0 "Tensors finalized"
            }

            test "train_multi_GPU.py's scaling: lr0 × max(1, ranks · batch / 64), none for one process" {
                let h = HyperParameters.Default
                Expect.floatClose Accuracy.veryHigh (h.AdjustedForWorld(2, 64).Lr0) (2.0 * h.Lr0) "2 × 64"
                Expect.equal (h.AdjustedForWorld(2, 16).Lr0) h.Lr0 "2 × 16 ≤ 64"
                Expect.equal (h.AdjustedForWorld(1, 128).Lr0) h.Lr0 "one process is train.py"
                Expect.equal (Schedule.accumulate (2 * 8)) 4 "accumulate max(round(64 / 16), 1)"
            }

            test "one GPU per rank: cuda:i puts local rank r on GPU (i + r) mod count" {
                Expect.equal [ for r in 0..3 -> Backend.RankDeviceIndex(0, r, 4) ] [ 0; 1; 2; 3 ] "cuda or cuda:0, 4 GPUs"
                Expect.equal [ for r in 0..3 -> Backend.RankDeviceIndex(1, r, 2) ] [ 1; 0; 1; 0 ] "cuda:1, 2 GPUs, 4 ranks"
                Expect.equal (Backend.RankDeviceIndex(2, 5, 0)) 2 "no GPU count: as asked"
            }

            test "several ranks: --rect is refused, and a shard smaller than a batch is an error naming the list" {
                let dir = TestUtil.fixtureDir "yolospp-ddp-data-"
                let data = sameLabelsData dir 6
                let cfg = cfgFor dir
                use comm = new TwoIdenticalRanks()

                let o (rect: bool) (batch: int) =
                    TrainOptions(Cfg = cfg, Data = data, Device = "cpu", ImageSize = 64, BatchSize = batch, MultiScale = false, Rect = rect)

                let rect =
                    TestUtil.throwsMessage<NotSupportedException> (fun () -> TrainSteps.Data(o true 4, null, comm) |> ignore)

                Expect.stringContains rect "--rect cannot train on 2 ranks" "rect"
                // 6 images over 2 ranks: 3 each, fewer than a batch of 4
                let small =
                    TestUtil.throwsMessage<ArgumentException> (fun () -> TrainSteps.Data(o false 4, null, comm) |> ignore)

                Expect.stringContains small "train.txt: 6 training images over 2 ranks" "names the list and the counts"
                Expect.equal (TrainSteps.Data(o false 3, null, comm).Loader.BatchCount) 1 "3 each: one batch of 3"
            }

            test "one of several MPI ranks without a communicator is refused before anything is read" {
                let before = Environment.GetEnvironmentVariable "OMPI_COMM_WORLD_SIZE"
                Environment.SetEnvironmentVariable("OMPI_COMM_WORLD_SIZE", "2")

                try
                    let o = TrainOptions(Cfg = "absent.cfg", Data = "absent.data", Device = "cpu")

                    let e =
                        TestUtil.throwsMessage<NotSupportedException> (fun () -> TrainSteps.Data o |> ignore)

                    Expect.stringContains e "Communicator.FromEnvironment()" "says what to pass"
                finally
                    Environment.SetEnvironmentVariable("OMPI_COMM_WORLD_SIZE", before)
            }

            test "mpirun -np 2 yolospp train: trains, rank 0 alone prints the mAP and writes the run's files; both ranks resume" {
                withMpirun (fun () ->
                    let dir = TestUtil.fixtureDir "yolospp-ddp-"
                    let data = sameLabelsData dir 10
                    let cfg = cfgFor dir

                    let code, out, _ =
                        underMpiIn dir 2 (trainArgs data cfg "run" 2 [ "--epochs"; "2" ]) (TimeSpan.FromMinutes 3.0)

                    Expect.equal code 0 out
                    let count (s: string) = out.Split(s).Length - 1
                    Expect.equal (count "mAP@0.5: ") 1 "the mAP, once"
                    Expect.equal (count "data-parallel training: 2 ranks via OpenMPI") 1 "rank 0's notice, once"
                    Expect.stringContains out "SyncBatchNorm" "SyncBatchNorm by default"
                    // 10 images, 2 ranks, batch 2: 5 each, 2 full batches per epoch
                    Expect.stringContains out "2/2  loss" "two batches per rank and epoch"
                    let run = Path.Combine(dir, "run")

                    for f in [ "last.ckpt"; "best.ckpt"; "results.txt"; "epochs.csv"; "results.png" ] do
                        Expect.isTrue (File.Exists(Path.Combine(run, f))) f

                    Expect.equal (File.ReadAllLines(Path.Combine(run, "results.txt")).Length) 2 "one results line per epoch, one writer"
                    Expect.equal (CheckpointFile.ReadInfo(Path.Combine(run, "last.ckpt")).Epoch) 1 "last completed epoch"
                    // every rank resumes from rank 0's checkpoint: one more epoch
                    let code2, out2, _ =
                        underMpiIn dir 2 (trainArgs data cfg "run" 2 [ "--epochs"; "3"; "--weights"; "run/last.ckpt" ]) (TimeSpan.FromMinutes 3.0)

                    Expect.equal code2 0 out2
                    Expect.equal (out2.Split("mAP@0.5: ").Length - 1) 1 "the mAP, once"
                    // epochs count from 0: the third is epoch 2/2
                    Expect.stringContains out2 "epoch 2/2" "continues with the third epoch"
                    Expect.isFalse (out2.Contains "epoch 0/2") "does not redo the first"
                    Expect.equal (File.ReadAllLines(Path.Combine(run, "results.txt")).Length) 3 "the resumed results"
                    Expect.equal (CheckpointFile.ReadInfo(Path.Combine(run, "last.ckpt")).Epoch) 2 "three epochs done")
            }

            test "equivalence: 2 ranks × batch 2 with SyncBatchNorm train as 1 process × batch 4; per-rank BatchNorm does not" {
                withMpirun (fun () ->
                    let dir = TestUtil.fixtureDir "yolospp-ddp-eq-"
                    let data12 = sameLabelsData dir 12
                    let cfg = cfgFor dir
                    // the same data with its first 4 training images: one optimizer step
                    let list = Path.Combine(Path.GetDirectoryName data12, "train.txt")
                    File.WriteAllLines(Path.Combine(Path.GetDirectoryName data12, "train4.txt"), File.ReadAllLines list |> Array.take 4)
                    let data4 = Path.Combine(Path.GetDirectoryName data12, "four.data")
                    File.WriteAllText(data4, File.ReadAllText(data12).Replace("train=train.txt", "train=train4.txt"))
                    // one epoch (warmup on: lr0 × 1/1000, then up), no augmentation, every batch an optimizer step;
                    // the reference's SGD, whose step is linear in the averaged gradient (Adam's below)
                    let common =
                        [
                            "--epochs"
                            "1"
                            "--notest"
                            "--augment"
                            "false"
                            "--accumulate"
                            "1"
                            "--optimizer"
                            "sgd"
                        ]

                    let pairWith (common: string list) (data: string) (name: string) (extra: string list) =
                        let code, o, e =
                            BuildTests.yolospp (trainArgs data cfg (Path.Combine(dir, name + "-one")) 4 common)

                        Expect.equal code 0 (o + e)

                        let code2, out2, _ =
                            underMpiIn dir 2 (trainArgs data cfg (name + "-two") 2 (common @ extra)) (TimeSpan.FromMinutes 3.0)

                        Expect.equal code2 0 out2
                        let one = stateOf cfg (Path.Combine(dir, name + "-one", "last.ckpt"))
                        worst (stateOf cfg (Path.Combine(dir, name + "-two", "last.ckpt"))) one

                    let pair = pairWith common

                    let name1, step1 = pair data4 "k1" []
                    let name3, step3 = pair data12 "k3" []
                    let _, nosync = pair data12 "nosync" [ "--sync-bn"; "false" ]
                    // Adam's first step is about lr · sign(gradient): where a gradient is near 0, the two runs' rounding
                    // can take it either way, so its tolerance is looser than SGD's
                    let adamCommon = common |> List.map (fun a -> if a = "sgd" then "adam" else a)
                    let nameAdam, stepAdam = pairWith adamCommon data4 "adam1" []

                    printfn
                        "data-parallel equivalence, worst relative difference per tensor: 1 step %.2e (%s), 3 steps %.2e (%s); 3 steps without SyncBatchNorm %.2e; 1 Adam step %.2e (%s)"
                        step1
                        name1
                        step3
                        name3
                        nosync
                        stepAdam
                        nameAdam
                    // one step: the rounding of reductions in another order; it grows with every step, as it does
                    // between 1 and 2 threads of one process (see the train_steps golden)
                    Expect.isLessThan step1 1e-4 (sprintf "1 step: %s" name1)
                    Expect.isLessThan step3 1e-2 (sprintf "3 steps: %s" name3)
                    Expect.isLessThan stepAdam 1e-3 (sprintf "1 Adam step: %s" nameAdam)
                    Expect.isGreaterThan nosync 0.5 "per-rank BatchNorm statistics are not the global batch's"
                    // the logged losses are the ranks' mean, the same as one process's
                    let losses (run: string) =
                        File.ReadAllLines(Path.Combine(dir, run, "epochs.csv"))
                        |> Array.skip 1
                        |> Array.collect (fun l -> l.Split(',')[1..4] |> Array.map float)

                    for x, y in Array.zip (losses "k3-two") (losses "k3-one") do
                        Expect.floatClose { absolute = 1e-5; relative = 1e-4 } x y "epoch mean loss")
            }

            test "mpirun -np 2 with --ema and --patience: every rank stops after the same epoch, the checkpoint holds the average and why" {
                withMpirun (fun () ->
                    let dir = TestUtil.fixtureDir "yolospp-ddp-ema-"
                    let data = sameLabelsData dir 10
                    let cfg = cfgFor dir
                    // a validation folder without labels: mAP is -1 at every epoch, never better than the start
                    let unlabelled = Directory.CreateDirectory(Path.Combine(dir, "plain-val")).FullName

                    for f in Directory.GetFiles(Path.Combine(dir, "data", "images", "val")) do
                        File.Copy(f, Path.Combine(unlabelled, Path.GetFileName f))

                    let d = DataFiles.ReadData data
                    let data2 = Path.Combine(dir, "novalid.data")
                    File.WriteAllText(data2, sprintf "classes=5\ntrain=%s\nvalid=%s\nnames=%s\n" d.Train unlabelled d.NamesFile)

                    let code, out, _ =
                        underMpiIn dir 2 (trainArgs data2 cfg "run" 2 [ "--epochs"; "6"; "--ema"; "true"; "--patience"; "2" ]) (TimeSpan.FromMinutes 3.0)

                    // a rank that went on alone would wait forever in its next all-reduce: the launch ends, code 0
                    Expect.equal code 0 out
                    Expect.equal (out.Split("mAP@0.5: ").Length - 1) 1 "rank 0's summary, once"
                    let run = Path.Combine(dir, "run")
                    Expect.equal (File.ReadAllLines(Path.Combine(run, "results.txt")).Length) 2 "epochs 0 and 1, then stop"
                    let info = CheckpointFile.ReadInfo(Path.Combine(run, "last.ckpt"))
                    Expect.stringContains info.StopReason "no better mAP@0.5:0.95 for 2 epochs" "recorded"
                    // 5 images per rank, batch 2: 2 steps an epoch, each updating the average on every rank
                    Expect.equal info.EmaUpdates (Nullable 4L) "the average's updates"
                    use z = IO.Compression.ZipFile.OpenRead(Path.Combine(run, "last.ckpt"))
                    Expect.isNotNull (z.GetEntry "train_model.safetensors") "the trained weights beside the average")
            }

            test "mpirun -np 2: a rank whose training fails prints its error with its rank and ends the launch" {
                withMpirun (fun () ->
                    let dir = TestUtil.fixtureDir "yolospp-ddp-fail-"
                    let data = sameLabelsData dir 8
                    let cfg = cfgFor dir
                    // rank 0 alone writes the outputs: a folder it cannot create fails it, while rank 1 waits in a collective
                    let code, out, seconds =
                        underMpiIn dir 2 (trainArgs data cfg "/proc/yolospp-no/run" 2 [ "--epochs"; "2" ]) (TimeSpan.FromMinutes 2.0)

                    Expect.notEqual code 0 out
                    Expect.stringContains out "rank 0 of 2 failed:" "the failing rank says so"
                    Expect.stringContains out "/proc/yolospp-no" "and why"
                    Expect.isLessThan seconds 60.0 "rank 1 did not wait for it")
            }

            test "mpirun -np 2: a rank killed during training ends the launch within a minute; last.ckpt stays whole" {
                withMpirun (fun () ->
                    if not (Directory.Exists "/proc") then
                        skiptest "finding a rank's process needs /proc"

                    let dir = TestUtil.fixtureDir "yolospp-ddp-kill-"
                    let data = sameLabelsData dir 8
                    let cfg = cfgFor dir
                    let last = Path.Combine(dir, "run", "last.ckpt")

                    let launch =
                        start dir 2 (trainArgs data cfg "run" 2 [ "--epochs"; "500"; "--notest" ])

                    let p, _, _ = launch
                    let watch = Diagnostics.Stopwatch.StartNew()

                    while not (File.Exists last)
                          && not p.HasExited
                          && watch.Elapsed < TimeSpan.FromMinutes 2.0 do
                        Threading.Thread.Sleep 100

                    Expect.isFalse p.HasExited "still training after its first checkpoint"
                    // rank 1: the launcher's child whose environment says OMPI_COMM_WORLD_RANK=1
                    let rank1 =
                        Directory.GetDirectories "/proc"
                        |> Array.choose (fun d ->
                            match Int32.TryParse(Path.GetFileName d) with
                            | true, pid ->
                                try
                                    let stat = File.ReadAllText(Path.Combine(d, "stat"))
                                    let ppid = int (stat.Substring(stat.LastIndexOf ')' + 2).Split(' ')[1])
                                    let env = File.ReadAllText(Path.Combine(d, "environ")).Split('\000')

                                    if ppid = p.Id && Array.contains "OMPI_COMM_WORLD_RANK=1" env then
                                        Some pid
                                    else
                                        None
                                with _ ->
                                    None
                            | _ -> None)

                    Expect.equal rank1.Length 1 "rank 1's process"
                    Diagnostics.Process.GetProcessById(rank1[0]).Kill()
                    let killed = Diagnostics.Stopwatch.StartNew()

                    let code, out =
                        finish launch "the launch after rank 1 was killed" (TimeSpan.FromMinutes 1.0)

                    printfn "launch ended %.1f s after rank 1 was killed (exit %d)" killed.Elapsed.TotalSeconds code
                    Expect.notEqual code 0 out
                    Expect.stringContains out "rank 1" "the launcher names the rank"
                    let info = CheckpointFile.ReadInfo last
                    Expect.isLessThan info.Epoch 499 "stopped early"
                    use m = DarkNet.FromCfgFile cfg
                    let report = CheckpointFile.LoadModel(last, m)
                    Expect.isEmpty report.Skipped (sprintf "every tensor of %s loads (%O)" last report))
            }
        ]
