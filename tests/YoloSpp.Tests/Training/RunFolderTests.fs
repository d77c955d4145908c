/// Runs never replace runs (RunFolder): numbered folders as yolov5's increment_path, exist-ok, the lock that keeps two
/// live runs apart, temp files of dead processes removed, the folder of a resume; and the options a run refuses.
module YoloSpp.Tests.Training.RunFolderTests

open System
open System.IO
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Training
open YoloSpp.Tests
open YoloSpp.Tests.Data.DataFixtures

open YoloSpp.Platform

let private claim (dir: string) (reuse: bool) =
    RunFolder.Claim(dir, reuse, "results.txt")

let folders =
    testList
        "run folder"
        [
            test "a new folder is taken as it is, locked, with its owner written beside the lock" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                let out = Path.Combine(root, "train")
                use f = claim out false
                Expect.equal (f.Path, f.Number, f.Notice) (out, 1, null) "the folder itself"
                Expect.isTrue (File.Exists(Path.Combine(out, RunFolder.LockName))) "lock file"
                Expect.stringContains (File.ReadAllText(Path.Combine(out, RunFolder.OwnerName))) (sprintf "pid %d" Environment.ProcessId) "owner"
            }
            test "a folder holding a run gives way to the next numbered one, skipping files of that name, and says so" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                let out = Path.Combine(root, "train")
                Directory.CreateDirectory out |> ignore
                File.WriteAllText(Path.Combine(out, "last.ckpt"), "")
                File.WriteAllText(out + "2", "a file, not a run folder")
                use f = claim out false
                Expect.equal f.Path (out + "3") "train3"
                Expect.stringContains f.Notice (out + "3") "says where"
                Expect.stringContains f.Notice "--exist-ok" "and how to reuse"
            }
            test "an empty folder, or one with other files, is used as it is; exist-ok reuses one that holds a run" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                let out = Path.Combine(root, "train")
                Directory.CreateDirectory out |> ignore
                File.WriteAllText(Path.Combine(out, "notes.md"), "mine")
                Expect.equal (using (claim out false) (fun f -> f.Path)) out "not a run"
                File.WriteAllText(Path.Combine(out, "epochs.csv"), "")
                Expect.equal (using (claim out true) (fun f -> f.Path)) out "exist-ok"
            }
            test "a folder a live run holds is refused with exist-ok, naming it and the other process; without, the next one is taken" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                let out = Path.Combine(root, "train")
                let first = claim out false

                let message =
                    TestUtil.throwsMessage<InvalidInputException> (fun () -> (claim out true).Dispose())

                Expect.stringContains message out "names the folder"
                Expect.stringContains message (sprintf "pid %d" Environment.ProcessId) "and the live run"
                Expect.equal (using (claim out false) (fun f -> f.Path)) (out + "2") "the next folder"
                first.Dispose()
                Expect.isFalse (File.Exists(Path.Combine(out, RunFolder.OwnerName))) "the owner file goes with the run"
                Expect.equal (using (claim out true) (fun f -> f.Path)) out "free again"
            }
            test "temp files of dead processes are removed when a folder is taken; a live process's and other files stay" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                let out = Path.Combine(root, "train")
                Directory.CreateDirectory out |> ignore

                let temp (pid: int) =
                    Path.Combine(out, sprintf ".last.ckpt.%d.%s.tmp" pid (Guid.NewGuid().ToString "N"))

                let dead, live =
                    temp (Robustness.WhyFixtures.deadPid ()), temp Environment.ProcessId

                let other = Path.Combine(out, ".hidden.tmp")

                for f in [ dead; live; other ] do
                    File.WriteAllText(f, "x")

                (claim out true).Dispose()
                Expect.isFalse (File.Exists dead) "dead process's temp removed"
                Expect.isTrue (File.Exists live) "live process's kept"
                Expect.isTrue (File.Exists other) "not a temp of ours: kept"
            }
            test "a path that cannot be a folder is an error naming it" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                let file = Path.Combine(root, "afile")
                File.WriteAllText(file, "x")
                Expect.stringContains (TestUtil.throwsMessage<InvalidInputException> (fun () -> (claim file false).Dispose())) file "a file"
                let under = Path.Combine(file, "sub")
                Expect.stringContains (TestUtil.throwsMessage<InvalidInputException> (fun () -> (claim under false).Dispose())) under "under a file"
            }
            test "detect and plot-labels: a folder that holds anything gives way to the next numbered one; --exist-ok reuses it" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                // the run folder's own files are no earlier output; anything else is
                let held = Path.Combine(root, "held")

                let claimAny () =
                    use f =
                        RunFolder.Claim(held, false, Func<_, _>(RunFolder.AnyEntry), "detect run", "--out")

                    f.Path

                Expect.equal (claimAny ()) held "an empty folder is taken"
                Expect.isNull (RunFolder.AnyEntry held) "its lock file left behind is not an output"
                Expect.equal (claimAny ()) held "and is taken again"

                Directory.CreateDirectory(Path.Combine(held, "crops")) |> ignore
                Expect.equal (RunFolder.AnyEntry held) "crops" "a folder counts"

                // the CLI, twice into one --out
                let s =
                    ShapesDataset.Generate(ShapesOptions(Path.Combine(root, "shapes"), Train = 2, Val = 1, Size = 64, Seed = 3))

                let cfg = Path.Combine(root, "tiny-spp-5.cfg")
                YoloSpp.Model.ModelCfg.WriteWithClasses(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"), cfg, 5)
                let weights = Path.Combine(root, "random.safetensors")
                Backend.Initialize()

                let save () =
                    use model = YoloSpp.Model.DarkNet.FromCfgFile cfg
                    YoloSpp.Model.ModelWeights.Save(model, weights)

                save ()

                let image = Directory.GetFiles(Path.Combine(s.Directory, "images", "val"))[0]
                let out = Path.Combine(root, "detect")

                let detect extra =
                    BuildTests.yolospp (
                        [
                            "detect"
                            "--cfg"
                            cfg
                            "--weights"
                            weights
                            "--names"
                            Path.Combine(s.Directory, "shapes.names")
                            "--source"
                            image
                            "--out"
                            out
                            "--img-size"
                            "64"
                        ]
                        @ extra
                    )

                let json (dir: string) = Path.Combine(dir, "detections.json")
                let code, _, err = detect []
                Expect.equal code 0 err
                Expect.isTrue (File.Exists(json out)) "the first run writes into --out"
                let first = File.ReadAllText(json out)
                File.WriteAllText(Path.Combine(out, "mine.txt"), "the user's")
                let code, stdout, err = detect [ "--conf"; "0.5" ]
                Expect.equal code 0 err
                Expect.stringContains stdout (sprintf "%s holds a previous run (000000.jpg): this run writes to %s2" out out) "says where"
                Expect.isTrue (File.Exists(json (out + "2"))) "the second into --out2"
                Expect.equal (File.ReadAllText(json out)) first "the first run's results untouched"
                let code, stdout, err = detect [ "--exist-ok" ]
                Expect.equal code 0 err
                Expect.isFalse (stdout.Contains "holds a previous run") "--exist-ok: no other folder"
                Expect.isFalse (Directory.Exists(out + "3")) "none made"
                Expect.equal (File.ReadAllText(Path.Combine(out, "mine.txt"))) "the user's" "other files stay"

                let labels = Path.Combine(root, "labels")

                let plot () =
                    BuildTests.yolospp
                        [
                            "plot-labels"
                            "--data"
                            s.DataFile
                            "--img-size"
                            "64"
                            "--n"
                            "2"
                            "--out"
                            labels
                        ]

                for expected in [ labels; labels + "2" ] do
                    let code, stdout, err = plot ()
                    Expect.equal code 0 err
                    Expect.isTrue (File.Exists(Path.Combine(expected, "labels.png"))) (sprintf "charts in %s\n%s" expected stdout)
            }
            test "a resume writes into its checkpoint's folder unless another --output is given" {
                let requested (weights: string) (output: string) =
                    let struct (folder, reuse) =
                        TrainSteps.RequestedOutput(TrainOptions(Cfg = "c.cfg", Data = "d.data", Weights = weights, OutputDir = output))

                    folder, reuse

                let ckptDir = Path.GetFullPath(Path.Combine("runs", "exp7"))
                let ckpt = Path.Combine(ckptDir, "last.ckpt")
                Expect.equal (requested ckpt null) (ckptDir, true) "its own folder, reused"
                Expect.equal (requested ckpt (Path.Combine("runs", "exp7"))) (Path.Combine("runs", "exp7"), true) "the same folder named"
                Expect.equal (requested ckpt "elsewhere") ("elsewhere", false) "another folder: a new run there"
                Expect.equal (requested null null) (TrainOptions.DefaultOutputDir, false) "runs/train"
                Expect.equal (requested "w.weights" null) (TrainOptions.DefaultOutputDir, false) "weights are no resume"
            }
        ]

let options =
    testList
        "options refused"
        [
            test "TrainOptions: a time limit of 0 or less, an empty or file --output, a --result-name with a folder" {
                let root, cleanup = tempDir ()
                use _ = cleanup
                let file = Path.Combine(root, "f")
                File.WriteAllText(file, "")

                for bad, mention in
                    [
                        TrainOptions(Cfg = "c", Data = "d", TimeLimit = Nullable TimeSpan.Zero), "--time-limit"
                        TrainOptions(Cfg = "c", Data = "d", TimeLimit = Nullable(TimeSpan.FromMinutes -1.0)), "--time-limit"
                        TrainOptions(Cfg = "c", Data = "d", OutputDir = " "), "--output"
                        TrainOptions(Cfg = "c", Data = "d", OutputDir = file), file
                        TrainOptions(Cfg = "c", Data = "d", ResultName = "../r.txt"), "--result-name"
                        TrainOptions(Cfg = "c", Data = "d", ResultName = ""), "--result-name"
                    ] do
                    Expect.stringContains (TestUtil.throwsMessage<ArgumentException> (fun () -> bad.Validate())) mention mention

                TrainOptions(Cfg = "c", Data = "d").Validate()
            }
            test "detector and evaluation thresholds outside [0, 1], NaN included, are refused naming the option" {
                for conf, iou, mention in
                    [
                        2.0, 0.5, "--conf"
                        -0.1, 0.5, "--conf"
                        nan, 0.5, "--conf"
                        0.5, -1.0, "--iou"
                        0.5, nan, "--iou"
                    ] do
                    Expect.stringContains
                        (TestUtil.throwsMessage<ArgumentException> (fun () -> DetectorOptions(ConfThreshold = conf, IouThreshold = iou).Validate()))
                        mention
                        (sprintf "detector %g %g" conf iou)

                    Expect.stringContains
                        (TestUtil.throwsMessage<ArgumentException> (fun () -> EvaluationOptions(ConfThreshold = conf, IouThreshold = iou).Validate()))
                        mention
                        (sprintf "evaluation %g %g" conf iou)

                DetectorOptions(ConfThreshold = 0.0, IouThreshold = 1.0).Validate()
                Expect.throwsT<ArgumentException> (fun () -> DetectorOptions(DrawThreshold = 3.0).Validate()) "draw threshold"
            }
            test "a device other than cpu, cuda or cuda:N is refused listing those" {
                for bad in [ "tpu"; "xla"; "cuda:x"; "cuda:-1"; "cpu:0:1" ] do
                    let message =
                        TestUtil.throwsMessage<ArgumentException> (fun () -> Backend.ResolveDevice bad |> ignore)

                    Expect.stringContains message "cpu, cuda or cuda:N" bad

                Expect.equal (Backend.ResolveDevice " CPU ").``type`` TorchSharp.DeviceType.CPU "spacing and case"
            }
        ]

let facade =
    testList
        "façade"
        [
            test "Trainer.Run twice into one OutputDir: the second run's result names <output>2 and the first run is intact" {
                let root, cleanup = tempDir ()
                use _ = cleanup

                let data =
                    ShapesDataset.Generate(ShapesOptions(Path.Combine(root, "ds"), Train = 4, Val = 2, Size = 64, Seed = 1)).DataFile

                let cfg = Path.Combine(root, "tiny5.cfg")
                YoloSpp.Model.ModelCfg.WriteWithClasses(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"), cfg, 5)
                let out = Path.Combine(root, "run")

                let o (existOk: bool) =
                    Tiny.Options(cfg, data, out, epochs = 1, noTest = true, existOk = existOk)

                let messages = Collections.Generic.List<string>()
                let first = Trainer(o false).Run()
                let bytes = File.ReadAllBytes first.LastCheckpoint
                let second = Trainer(o false, Action<string> messages.Add).Run()
                Expect.equal (first.OutputDir, second.OutputDir) (out, out + "2") "numbered"
                Expect.equal second.LastCheckpoint (Path.Combine(out + "2", "last.ckpt")) "its checkpoint there"
                Expect.isTrue (File.ReadAllBytes first.LastCheckpoint = bytes) "the first run's checkpoint unchanged"
                Expect.exists messages (fun m -> m.Contains(out + "2")) "said where"
                let third = Trainer(o true).Run()
                Expect.equal third.OutputDir out "exist-ok reuses it"
            }
        ]

let tests = testList "run-folder" [ folders; options; facade ]
