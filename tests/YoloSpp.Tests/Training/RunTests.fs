/// A training run as a user starts it from a folder of their own: the built-in recipes by name, `--device auto`,
/// one epoch numbering everywhere, and a summary that names only what was written.
module YoloSpp.Tests.Training.RunTests

open System
open System.Diagnostics
open System.IO
open System.Threading
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests

open YoloSpp.Platform

/// `yolospp` in a folder of the test's.
let private yolosppIn (cwd: string) (args: string list) =
    runProcess "dotnet" (cliDll :: args) cwd

let private withDir (prefix: string) (f: string -> unit) =
    let dir = (Directory.CreateTempSubdirectory prefix).FullName

    try
        f dir
    finally
        try
            Directory.Delete(dir, true)
        with _ ->
            ()

let private tinyData (dir: string) (train: int) =
    ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "data"), Train = train, Val = 4, Size = 64, Seed = 7)).DataFile

let tests =
    testList
        "runs"
        [
            test "the built-in recipes are the repository's cfg/ files, embedded: shapes, reference and shapes-spp" {
                let repo name =
                    Path.Combine(TestUtil.repoRoot, "cfg", name)

                Expect.equal (HyperParameters.Shapes.ToString()) (HyperParameters.Load(repo "hyp.shapes.yaml").ToString()) "shapes"
                Expect.equal (HyperParameters.Reference.ToString()) (HyperParameters.Load(repo "hyp.yaml").ToString()) "reference"
                Expect.equal (HyperParameters.Reference.ToString()) (HyperParameters.Default.ToString()) "reference = the defaults"
                Expect.equal (HyperParameters.Named("SHAPES").ToString()) (HyperParameters.Shapes.ToString()) "by name"

                Expect.equal
                    (ModelCfg.Topology("shapes-spp", 5).ToCfgText())
                    (File.ReadAllText(repo "shapes-spp.cfg"))
                    "shapes-spp is cfg/shapes-spp.cfg, comments included"

                let three = ModelCfg.Topology("shapes-spp", 3)
                Expect.equal three.NumClasses 3 "another class count"
                Expect.equal three.ModuleCount (ModelCfg.Load(repo "shapes-spp.cfg")).ModuleCount "the same modules"
                Expect.throwsT<ArgumentException> (fun () -> HyperParameters.Named "yolov5" |> ignore) "an unknown name"

                let missing = Path.Combine(Path.GetTempPath(), "no-such-hyp.yaml")

                Expect.equal
                    (TestUtil.throwsMessage<InvalidInputException> (fun () -> HyperParameters.LoadOrNamed missing |> ignore))
                    (sprintf "%s: no such hyp file (nor a built-in recipe: shapes, reference)" missing)
                    "a missing file"

                Expect.equal TrainOptions.ShapesDemo.Cfg "shapes-spp" "the demo's network by name"
                Expect.equal TrainOptions.ShapesDemo.Hyp "shapes" "the demo's hyperparameters by name"
            }
            test "yolospp train runs from a folder outside the repository with the built-in names; a missing --cfg or --hyp is exit 2 in one line" {
                withDir "yolospp-anywhere-" (fun dir ->
                    let data = tinyData dir 8

                    let small =
                        [ "--data"; data; "--epochs"; "1"; "--img-size"; "64"; "--batch-size"; "4" ]

                    let code, out, err = yolosppIn dir ("train" :: small)
                    Expect.equal code 0 (out + err)
                    Expect.isTrue (File.Exists(Path.Combine(dir, "runs", "train", "last.ckpt"))) "outputs in the current folder"
                    Expect.isFalse ((out + err).Contains "CUDA") "--device auto: no CUDA notice on a CPU machine"
                    let info = CheckpointFile.ReadInfo(Path.Combine(dir, "runs", "train", "last.ckpt"))
                    Expect.isTrue (ModelCfg.Parse("ckpt", info.Cfg).SameNetworkAs(ModelCfg.Topology("shapes-spp", 5))) "shapes-spp"
                    Expect.equal info.Hyp (HyperParameters.Shapes.ToString()) "the shapes recipe"

                    let code, _, err = yolosppIn dir ("train" :: small @ [ "--hyp"; "nothere.yaml" ])
                    Expect.equal code 2 "a missing hyp file"
                    Expect.equal (err.Trim()) "nothere.yaml: no such hyp file (nor a built-in recipe: shapes, reference)" "one line"

                    let code, _, err = yolosppIn dir ("train" :: small @ [ "--cfg"; "nothere.cfg" ])
                    Expect.equal code 2 "a missing cfg file"
                    Expect.stringStarts (err.Trim()) "nothere.cfg: no such cfg file (nor a built-in topology" "one line"
                    Expect.isFalse (err.Trim().Contains "\n") "one line"

                    let code, out, err = yolosppIn dir [ "hyp"; "reference" ]
                    Expect.equal code 0 err
                    Expect.equal out (HyperParameters.Reference.ToString()) "hyp prints a built-in recipe")
            }
            test "--device auto is the default everywhere: CUDA when available, else the CPU, without a notice" {
                Expect.equal Backend.AutoDevice "auto" "the name"
                Expect.equal TrainOptions.ShapesDemo.Device "auto" "TrainOptions.ShapesDemo"
                Expect.equal (TrainOptions(Cfg = "shapes-spp", Data = "x.data")).Device "auto" "TrainOptions"
                Expect.equal (YoloSpp.Detection.DetectorOptions()).Device "auto" "DetectorOptions"
                let notices = Collections.Generic.List<string>()
                let notice = Action<string>(fun l -> notices.Add l)
                let cuda = TorchSharp.torch.cuda.is_available ()
                let auto = Backend.ResolveDevice("auto", notice)

                Expect.equal
                    auto.``type``
                    (if cuda then
                         TorchSharp.DeviceType.CUDA
                     else
                         TorchSharp.DeviceType.CPU)
                    "CUDA when available, else the CPU"

                Expect.isEmpty notices "silently"

                if not cuda then
                    Backend.ResolveDevice("cuda", notice) |> ignore
                    Expect.equal notices.Count 1 "an explicit cuda request that falls back says so"

                for command in [ "train"; "eval"; "detect" ] do
                    let _, help, _ = yolospp [ command; "--help" ]
                    Expect.stringContains help "auto (" (sprintf "%s --help names auto as the default" command)
            }
            test "one epoch numbering, from 0: the console, results.txt, epochs.csv, the checkpoint and TrainProgress" {
                withDir "yolospp-epochs-" (fun dir ->
                    let data = tinyData dir 8

                    let code, out, err =
                        yolosppIn
                            dir
                            [
                                "train"
                                "--data"
                                data
                                "--epochs"
                                "2"
                                "--img-size"
                                "64"
                                "--batch-size"
                                "4"
                            ]

                    Expect.equal code 0 (out + err)

                    for line in [ "epoch 0/1  mAP@0.5"; "epoch 1/1  mAP@0.5" ] do
                        Expect.stringContains out line "the console counts from 0"

                    Expect.isFalse (out.Contains "epoch 2/") "no epoch 2 of 2"
                    let run = Path.Combine(dir, "runs", "train")

                    Expect.equal
                        (File.ReadAllLines(Path.Combine(run, "results.txt"))
                         |> Array.map (fun l -> l.Split(' ')[0]))
                        [| "epoch:0"; "epoch:1" |]
                        "results.txt, as the reference's train.py writes it"

                    Expect.equal
                        (File.ReadAllLines(Path.Combine(run, "epochs.csv"))
                         |> Array.skip 1
                         |> Array.map (fun l -> l.Split(',')[0]))
                        [| "0"; "1" |]
                        "epochs.csv"

                    let info = CheckpointFile.ReadInfo(Path.Combine(run, "last.ckpt"))
                    Expect.equal info.Epoch 1 "the checkpoint's last epoch"
                    Expect.equal info.Epochs (Nullable 2) "of 2"

                    let seen = Collections.Concurrent.ConcurrentBag<int>()

                    let progress =
                        { new IProgress<TrainProgress> with
                            member _.Report p = seen.Add p.Epoch
                        }

                    let options = Tiny.Options("shapes-spp", data, Path.Combine(dir, "api"))

                    Trainer(options).Run(progress) |> ignore
                    Expect.equal (Set.ofSeq seen) (set [ 0; 1 ]) "TrainProgress.Epoch")
            }
            test "a run stopped before its first epoch ends names only what it wrote: last.ckpt, no results, plot or csv" {
                withDir "yolospp-stopped-" (fun dir ->
                    let data = tinyData dir 16
                    use cts = new CancellationTokenSource()

                    let progress =
                        { new IProgress<TrainProgress> with
                            member _.Report _ = cts.Cancel()
                        }

                    let options =
                        Tiny.Options("shapes-spp", data, Path.Combine(dir, "run"), batchSize = 1)

                    let r = Trainer(options).Run(progress, cts.Token)
                    Expect.isTrue r.Cancelled "stopped"
                    Expect.equal r.EpochsDone 0 "in its first epoch"
                    Expect.isTrue (File.Exists r.LastCheckpoint) "last.ckpt (resumable) written"
                    Expect.isNull r.BestCheckpoint "no best"
                    Expect.isNull r.ResultsFile "no results.txt"
                    Expect.isNull r.PlotFile "no plot"
                    Expect.isNull r.EpochsFile "no epochs.csv"

                    for path in
                        [
                            r.LastCheckpoint
                            r.BestCheckpoint
                            r.ResultsFile
                            r.PlotFile
                            r.TensorBoardDir
                            r.EpochsFile
                        ] do
                        if not (isNull path) then
                            Expect.isTrue (File.Exists path || Directory.Exists path) (sprintf "%s exists" path))
            }
            test "Ctrl+C: yolospp train stops after the batch, exits 130 and its summary names only files that exist" {
                if not (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) then
                    skiptest "sends SIGINT with kill"

                withDir "yolospp-ctrlc-" (fun dir ->
                    let data = tinyData dir 400

                    // a process started from a background job inherits SIGINT ignored (as a shell's `cmd &` does), and
                    // .NET then leaves it ignored: GNU env restores the default, as a terminal's foreground process has it
                    let psi =
                        ProcessStartInfo(
                            "env",
                            [
                                "--default-signal=INT"
                                "dotnet"
                                cliDll
                                "train"
                                "--data"
                                data
                                "--epochs"
                                "1"
                                "--img-size"
                                "64"
                                "--batch-size"
                                "1"
                            ],
                            WorkingDirectory = dir,
                            RedirectStandardOutput = true,
                            RedirectStandardError = true,
                            UseShellExecute = false
                        )

                    use p = Process.Start psi
                    let err = p.StandardError.ReadToEndAsync()
                    let lines = Collections.Generic.List<string>()
                    let mutable signalled = false

                    let mutable line = p.StandardOutput.ReadLine()

                    while not (isNull line) do
                        lines.Add line
                        // the first progress line (a quarter of the epoch): stop it there
                        if not signalled && line.StartsWith "epoch 0/0  " then
                            signalled <- true
                            use kill = Process.Start("kill", [ "-INT"; string p.Id ])
                            kill.WaitForExit()

                        line <- p.StandardOutput.ReadLine()

                    p.WaitForExit()
                    let out = String.Join("\n", lines)
                    Expect.isTrue signalled (sprintf "saw a progress line: %s %s" out err.Result)
                    Expect.equal p.ExitCode 130 (sprintf "exit 130: %s %s" out err.Result)
                    Expect.stringContains out "no evaluation ran" "stopped before the evaluation"
                    Expect.stringContains out "weights: runs/train/last.ckpt" "the resumable checkpoint"

                    for label in [ "results:"; "epochs:"; "plot:" ] do
                        Expect.isFalse (out.Contains label) (sprintf "no '%s' line for a file never written" label)

                    for l in lines do
                        match l.Split(": ", 2) with
                        | [| ("weights" | "results" | "epochs" | "plot" | "tensorboard"); path |] ->
                            let path = path.Split(' ')[0]
                            let full = Path.Combine(dir, path)
                            Expect.isTrue (File.Exists full || Directory.Exists full) (sprintf "%s exists" path)
                        | _ -> ())
            }
        ]
