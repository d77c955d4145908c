/// The weight average (--ema, yolov5's ModelEMA) and early stopping (--patience) on tiny runs.
module YoloSpp.Tests.Training.EmaPatienceTests

open System
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests

let private withDir = YoloSpp.Tests.Robustness.WhyFixtures.withDir

/// Every state entry of a network as float64 arrays, by name (integer buffers as their values).
let private state (m: DarkNet) =
    m.state_dict ()
    |> Seq.map (fun kv -> kv.Key, (kv.Value.to_type(torch.ScalarType.Float64).cpu().data<float>().ToArray(), kv.Value.is_floating_point ()))
    |> Map.ofSeq

/// The bytes of a checkpoint's entry.
let private entry (ckpt: string) (name: string) =
    use z = IO.Compression.ZipFile.OpenRead ckpt

    match z.GetEntry name with
    | null -> None
    | e ->
        use s = e.Open()
        use ms = new MemoryStream()
        s.CopyTo ms
        Some(ms.ToArray())

let tests =
    testList
        "ema and patience"
        [
            test "ModelEma: each update is d·ema + (1 − d)·model with d = 0.9999·(1 − exp(−updates / 2000)), in float64" {
                withDir (fun dir ->
                    torch.manual_seed 3L |> ignore
                    use model = DarkNet.FromCfgFile(TinyRuns.tinyCfg dir)
                    use ema = new ModelEma(model)
                    let before = state ema.Model
                    Expect.equal before (state model) "starts as a copy"
                    Expect.isFalse (ema.Model.parameters () |> Seq.exists (fun p -> p.requires_grad)) "no gradients"
                    let mutable expected = before

                    for update in 1..2 do
                        // the trained network moves: every float entry (BatchNorm's running stats too), and the step counter
                        use _ = torch.no_grad ()

                        for kv in model.state_dict () do
                            if kv.Value.is_floating_point () then
                                kv.Value.add_ (torch.randn_like kv.Value) |> ignore
                            else
                                kv.Value.add_ (torch.ones_like kv.Value) |> ignore

                        ema.Update()
                        let d = 0.9999 * (1.0 - exp (-(float update) / 2000.0))
                        Expect.floatClose Accuracy.veryHigh (ema.DecayAt(int64 update)) d "the ramp"
                        let m = state model

                        expected <-
                            expected
                            |> Map.map (fun k (e, floating) ->
                                let mk, _ = m[k]

                                (if floating then
                                     Array.map2 (fun a b -> d * a + (1.0 - d) * b) e mk
                                 else
                                     mk),
                                floating)

                        let got = state ema.Model

                        for KeyValue(k, (e, _)) in expected do
                            let g, _ = got[k]

                            for i in 0 .. e.Length - 1 do
                                if abs (g[i] - e[i]) > 1e-6 * (1.0 + abs e[i]) then
                                    failtestf "update %d, %s[%d]: %g, expected %g" update k i g[i] e[i]

                    Expect.equal ema.Updates 2L "two updates")
            }
            test "a run with --ema saves the average as the model and the trained weights beside it; a resume goes on counting" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 12 4 3
                    let cfg = TinyRuns.tinyCfg dir
                    let o = Tiny.Options(cfg, data, Path.Combine(dir, "run"), epochs = 2, ema = true)
                    let r = Trainer(o).Run()
                    let info = CheckpointFile.ReadInfo r.LastCheckpoint
                    // 12 images, batch 4, one batch per step: 3 steps an epoch
                    Expect.equal info.EmaUpdates (Nullable 6L) "one update per optimizer step"
                    let averaged = (entry r.LastCheckpoint "model.safetensors").Value
                    let trained = (entry r.LastCheckpoint "train_model.safetensors").Value
                    Expect.notEqual averaged trained "the model is the average, not the trained weights"
                    // what detect and eval load is the average
                    use m = DarkNet.FromCfgFile cfg
                    ModelWeights.Load(m, r.LastCheckpoint) |> ignore
                    use t = DarkNet.FromCfgFile cfg
                    CheckpointFile.LoadModel(r.LastCheckpoint, t, trainingState = true) |> ignore
                    Expect.notEqual (state m) (state t) "two sets of weights"

                    let resumed =
                        Tiny.Options(cfg, data, Path.Combine(dir, "run"), epochs = 3, ema = true, weights = r.LastCheckpoint)

                    let r2 = Trainer(resumed).Run()
                    Expect.equal (CheckpointFile.ReadInfo r2.LastCheckpoint).EmaUpdates (Nullable 9L) "the count goes on from the checkpoint's"
                    // without --ema nothing changes: the reference's checkpoint
                    let plain =
                        Trainer(Tiny.Options(cfg, data, Path.Combine(dir, "plain"), epochs = 1)).Run()

                    Expect.isFalse (CheckpointFile.ReadInfo plain.LastCheckpoint).EmaUpdates.HasValue "no average"
                    Expect.isNone (entry plain.LastCheckpoint "train_model.safetensors") "one set of weights")
            }
            test "--patience stops after that many epochs without a better mAP, says why, and the checkpoint records it" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 12 4 3
                    let cfg = TinyRuns.tinyCfg dir
                    // a validation folder without labels: mAP is -1 at every epoch, never better than the start
                    let unlabelled = Directory.CreateDirectory(Path.Combine(dir, "plain-val")).FullName

                    for f in Directory.GetFiles(Path.Combine(dir, "data", "images", "val")) do
                        File.Copy(f, Path.Combine(unlabelled, Path.GetFileName f))

                    let d = YoloSpp.Data.DataFiles.ReadData data
                    let data2 = Path.Combine(dir, "novalid.data")
                    File.WriteAllText(data2, sprintf "classes=5\ntrain=%s\nvalid=%s\nnames=%s\n" d.Train unlabelled d.NamesFile)
                    let o = Tiny.Options(cfg, data2, Path.Combine(dir, "run"), epochs = 6, patience = 2)
                    let r = Trainer(o).Run()
                    Expect.equal r.EpochsDone 2 "epochs 0 and 1, then stop"
                    Expect.stringContains r.StopReason "no better mAP@0.5:0.95 for 2 epochs" "why"
                    Expect.equal (CheckpointFile.ReadInfo r.LastCheckpoint).StopReason r.StopReason "recorded"
                    let _, usage, _ = BuildTests.yolospp [ "train"; "--help" ]
                    Expect.stringContains usage "--patience" "an option of train"
                    Expect.stringContains usage "--ema" "an option of train"
                    Expect.throwsT<ArgumentException> (fun () -> Tiny.Options(cfg, data2, dir, patience = 0).Validate()) "patience >= 1")
            }
            test "a run checks its anchors against the training labels first, in yolov5's words" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 12 4 3
                    let cfg = TinyRuns.tinyCfg dir
                    let lines = Collections.Concurrent.ConcurrentQueue<string>()

                    let trainer =
                        Trainer(Tiny.Options(cfg, data, Path.Combine(dir, "run"), epochs = 1, noTest = true), Action<string>(lines.Enqueue))

                    trainer.Run() |> ignore
                    let line = lines |> Seq.tryFind (fun l -> l.StartsWith "AutoAnchor: ")
                    Expect.isSome line "the check's line"
                    Expect.stringContains line.Value "anchors/target" line.Value
                    Expect.stringContains line.Value "Best Possible Recall (BPR)" line.Value
                    // the metric itself is the golden kind autoanchor; the advice names the command that proposes anchors
                    let poor = AnchorCheck.Describe(0.5, 1.0, "my.data", 320)
                    Expect.stringContains poor "yolospp anchors --data my.data --img-size 320" poor
                    Expect.stringContains poor "--autoanchor" poor)
            }
            test "--autoanchor: anchors that fit poorly are evolved, trained with, written to the run's cfg and kept on resume" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 12 4 3
                    let tiny = ModelCfg.Load(TinyRuns.tinyCfg dir)
                    // anchors ten times the objects' sizes: almost no box fits within 4x
                    let huge =
                        tiny.Anchors
                        |> Seq.map (fun (struct (w, h)) -> struct (w * 10.0, h * 10.0))
                        |> Seq.toArray

                    let cfg = Path.Combine(dir, "huge.cfg")
                    ModelCfg.Write(tiny.WithAnchors huge, cfg)

                    let struct (before, _) =
                        AnchorCheck.Measure(
                            YoloSpp.Data.YoloDataset.Open(YoloSpp.Data.DataFiles.ReadData(data).Train, 5, YoloSpp.Data.DataOptions(ImageSize = 64)),
                            ModelCfg.Load cfg,
                            64,
                            0
                        )

                    Expect.isLessThan before AnchorCheck.GoodFit "a poor fit to start from"
                    let lines = Collections.Concurrent.ConcurrentQueue<string>()

                    let o =
                        Tiny.Options(cfg, data, Path.Combine(dir, "run"), epochs = 1, noTest = true, autoAnchor = true)

                    let trainer = Trainer(o, Action<string>(lines.Enqueue))
                    let r = trainer.Run()
                    Expect.exists lines (fun l -> l.Contains "attempting to improve") "the check says so"
                    Expect.exists lines (fun l -> l.StartsWith "AutoAnchor: new anchors") (String.Join("\n", lines))
                    let trained = ModelCfg.Parse("ckpt", (CheckpointFile.ReadInfo r.LastCheckpoint).Cfg)
                    Expect.notEqual (Seq.toList trained.Anchors) (Seq.toList huge) "the checkpoint's cfg has the new anchors"
                    let written = ModelCfg.Load(Path.Combine(r.OutputDir, TrainSteps.AutoAnchorCfg))
                    Expect.equal (Seq.toList written.Anchors) (Seq.toList trained.Anchors) "autoanchor.cfg holds them"

                    let struct (after, _) =
                        AnchorCheck.Measure(
                            YoloSpp.Data.YoloDataset.Open(YoloSpp.Data.DataFiles.ReadData(data).Train, 5, YoloSpp.Data.DataOptions(ImageSize = 64)),
                            trained,
                            64,
                            0
                        )

                    Expect.isGreaterThan after before "they recall more"
                    // resuming with the same command and --cfg: the run's anchors, not a cfg change to refuse
                    let resumed =
                        Trainer(Tiny.Options(cfg, data, Path.Combine(dir, "run"), epochs = 2, noTest = true, autoAnchor = true, weights = r.LastCheckpoint))
                            .Run()

                    Expect.equal resumed.EpochsDone 1 "resumed")
            }
        ]
