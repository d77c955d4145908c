/// Checkpoints that describe themselves: what training records, what the commands and the façade take from it, the
/// overrides, weights that need a cfg, and a checkpoint written before any of this (tests/fixtures).
module YoloSpp.Tests.Training.CheckpointTests

open System
open System.IO
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Export
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests

/// A 2-epoch run of the tiny cfg (5 classes) at 64 px with the built-in shapes hyperparameters, once for this list.
let private run =
    lazy
        (let dir = TestUtil.fixtureDir "yolospp-ckpt-"

         let data =
             ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "data"), Train = 12, Val = 4, Size = 64, Seed = 6))

         let cfg = TinyRuns.tinyCfg dir
         let o = Tiny.Options(cfg, data.DataFile, Path.Combine(dir, "run"))

         let r = Trainer(o).Run()
         dir, data, cfg, r)

/// The checkpoint main wrote at 2aa7ce1, before checkpoints carried names, size or hyperparameters.
let private oldCheckpoint =
    Path.Combine(TestUtil.repoRoot, "tests", "fixtures", "checkpoint-main-2aa7ce1", "last.ckpt")

/// The validation images' folder of a generated shapes set.
let private valImages (data: ShapesSummary) =
    Path.Combine(data.Directory, "images", "val")

let private notices () =
    let lines = Collections.Generic.List<string>()
    lines, Action<string>(fun l -> lines.Add l)

/// The notice of `detect --conf best`: the confidence, or, for a run whose best mean F1 is 0, that it found nothing.
let private thresholdNotice (best: float) =
    if best > 0.0 then
        sprintf "confidence threshold %.3f: the best mean F1" best
    else
        "confidence threshold 0: the run that trained"

let tests =
    testList
        "checkpoints"
        [
            test "a run draws the best epoch's curves and confusion matrix, records its best confidence, and detect --conf best uses it" {
                let _, data, _, r = run.Force()
                let dir = Path.GetDirectoryName r.LastCheckpoint

                for f in
                    [
                        "PR_curve.png"
                        "F1_curve.png"
                        "P_curve.png"
                        "R_curve.png"
                        "confusion_matrix.png"
                        "confusion_matrix_counts.png"
                        "confusion_matrix.csv"
                        "classes.csv"
                        "train_batch0.jpg"
                    ] do
                    Expect.contains (r.Plots |> Seq.map Path.GetFileName) f (f + " listed")
                    Expect.isTrue (File.Exists(Path.Combine(dir, f))) (f + " written")

                Expect.stringEnds
                    (File.ReadLines r.EpochsFile |> Seq.head)
                    ",precision,recall,val_box_loss,val_obj_loss,val_cls_loss"
                    "epochs.csv has precision, recall and the validation losses"

                let info = CheckpointFile.ReadInfo r.LastCheckpoint
                Expect.isTrue info.BestConfidence.HasValue "best confidence recorded"
                let out = Path.Combine(dir, "detect-best")

                let code, stdout, err =
                    yolospp
                        [
                            "detect"
                            "--weights"
                            r.LastCheckpoint
                            "--source"
                            valImages data
                            "--conf"
                            "best"
                            "--out"
                            out
                        ]

                Expect.equal code 0 (stdout + err)
                Expect.stringContains (stdout + err) (thresholdNotice info.BestConfidence.Value) "says which"

                let code, _, err =
                    yolospp
                        [
                            "detect"
                            "--weights"
                            r.LastCheckpoint
                            "--source"
                            valImages data
                            "--conf"
                            "most"
                        ]

                Expect.equal code 2 "a word other than best"
                Expect.stringContains err "--conf most" "names it"
            }
            test "a checkpoint records its cfg, class names, image size, hyperparameters, dataset, version, epochs and best mAP" {
                let _, data, cfg, r = run.Force()
                let info = CheckpointFile.ReadInfo r.LastCheckpoint
                Expect.equal info.Cfg (File.ReadAllText cfg) "the cfg text, comments included"
                Expect.sequenceEqual info.ClassNames Shapes.classNames "class names"
                Expect.equal info.ImageSize (Nullable 64) "image size"
                Expect.equal info.Hyp (HyperParameters.Shapes.ToString()) "the hyperparameters as given (the shapes recipe)"
                Expect.equal info.Dataset data.DataFile "the .data file"
                Expect.equal info.Version Checkpoint.LibraryVersion "the version that wrote it"
                Expect.stringStarts info.Version "0." "a version"
                Expect.equal info.Epoch 1 "last completed epoch, from 0"
                Expect.equal info.Epochs (Nullable 2) "epochs planned"
                // the best mAP@0.5:0.95 of the epochs, as epochs.csv has them (column AP50-95)
                let maps =
                    File.ReadAllLines r.EpochsFile
                    |> Array.skip 1
                    |> Array.map (fun l -> float (l.Split(',')[6]))

                Expect.equal info.BestMap (Array.max maps) "best mAP@0.5:0.95 so far"
            }
            test "TrainedModel, Detector.Load, Evaluator.Evaluate and OnnxExport.Export take the checkpoint alone" {
                let dir, data, cfg, r = run.Force()
                let m = TrainedModel.Open r.LastCheckpoint
                Expect.isTrue (m.Config.SameNetworkAs(ModelCfg.Load cfg)) "the checkpoint's network"
                Expect.equal m.ImageSize 64 "its training size"
                Expect.sequenceEqual m.ClassNames Shapes.classNames "its names"
                Expect.isNull m.ImageSizeNotice "a recorded size needs no notice"

                use detector = Detector.Load r.LastCheckpoint
                Expect.equal detector.ImageSize 64 "detects at the training size"
                Expect.sequenceEqual detector.ClassNames Shapes.classNames "names"

                let e = Evaluator.Evaluate(r.LastCheckpoint, data.DataFile)
                Expect.equal e.Images 4 "evaluated the valid list"

                let onnx = Path.Combine(dir, "model.onnx")
                OnnxExport.Export(r.LastCheckpoint, onnx)
                use ort = OnnxRuntimeNetwork.Load onnx
                Expect.sequenceEqual ort.ClassNames Shapes.classNames "the names in the model"
                Expect.equal ort.TrainedImageSize (Nullable 64) "the training size in the model"
                // the best confidence travels into the ONNX metadata, and detect --conf best reads it there
                let best = (CheckpointFile.ReadInfo r.LastCheckpoint).BestConfidence
                Expect.equal ort.BestConfidence best "best_conf in the metadata"

                let code, out, err =
                    yolospp
                        [
                            "detect"
                            "--weights"
                            onnx
                            "--backend"
                            "onnxruntime"
                            "--source"
                            valImages data
                            "--conf"
                            "best"
                            "--out"
                            Path.Combine(dir, "detect-onnx-best")
                        ]

                Expect.equal code 0 (out + err)
                Expect.stringContains (out + err) (thresholdNotice best.Value) "the model's"
            }
            test "a cfg, names or size given for a checkpoint override it, each with a one-line notice when it differs" {
                let dir, data, cfg, r = run.Force()
                let lines, notice = notices ()

                let same =
                    TrainedModel.Open(r.LastCheckpoint, cfg, (Path.Combine(data.Directory, "shapes.names")), Nullable 64, notice)

                Expect.isEmpty lines "the checkpoint's own values: no notice"
                Expect.equal same.CfgSource cfg "the cfg given"

                let names = Path.Combine(dir, "other.names")
                File.WriteAllLines(names, [ "a"; "b"; "c"; "d"; "e" ])

                let other =
                    TrainedModel.Open(r.LastCheckpoint, "shapes-spp", names, Nullable 96, notice)

                Expect.equal lines.Count 3 (sprintf "one line each: %A" lines)
                Expect.stringContains lines[0] "--cfg shapes-spp: not the network" "cfg"
                Expect.stringContains lines[1] "--names" "names"
                Expect.stringContains lines[2] "--img-size 96" "size"
                Expect.equal other.ImageSize 96 "the size given"
                Expect.sequenceEqual other.ClassNames [ "a"; "b"; "c"; "d"; "e" ] "the names given"
                Expect.equal other.Config.NumClasses 5 "a built-in name takes the checkpoint's class count"
            }
            test "weights that hold only tensors need a cfg: a clear error, exit 2 from every command" {
                let _, data, _, _ = run.Force()
                let weights = TestUtil.goldenFile "tiny-spp-random.weights"

                let message =
                    TestUtil.throwsMessage<InvalidInputException> (fun () -> TrainedModel.Open weights |> ignore)

                Expect.stringContains message "hold only tensors: give the network's cfg (--cfg FILE" "says what to give"

                for args in
                    [
                        [ "eval"; "--weights"; weights; "--data"; data.DataFile ]
                        [ "detect"; "--weights"; weights; "--source"; valImages data ]
                        [
                            "export"
                            "--weights"
                            weights
                            "--output"
                            Path.Combine(data.Directory, "x.onnx")
                        ]
                        [ "info"; "--weights"; weights ]
                    ] do
                    let code, _, err = yolospp args
                    Expect.equal code 2 (sprintf "%s: exit 2" args[0])
                    Expect.stringContains err "give the network's cfg" args[0]
                    Expect.isFalse (err.Contains "   at ") "no stack trace"

                // with its cfg it loads
                let code, out, err =
                    yolospp
                        [
                            "info"
                            "--weights"
                            weights
                            "--cfg"
                            TestUtil.goldenFile "tiny-spp.cfg"
                            "--img-size"
                            "128"
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "Weights: loaded 198/198 tensors" "loaded"
            }
            test "eval, detect, export and info need only --weights for a checkpoint; info prints its run" {
                let dir, data, _, r = run.Force()
                let out = Path.Combine(dir, "cli")

                let ok (args: string list) =
                    let code, stdout, err = yolospp args
                    Expect.equal code 0 (sprintf "%s: %s %s" args[0] stdout err)
                    Expect.equal (err.Trim()) "" (sprintf "%s: nothing on stderr" args[0])
                    stdout

                let eval = ok [ "eval"; "--weights"; r.LastCheckpoint; "--data"; data.DataFile ]
                Expect.stringContains eval "64x64, batch 1" "at the training size"

                let detect =
                    ok
                        [
                            "detect"
                            "--weights"
                            r.LastCheckpoint
                            "--source"
                            valImages data
                            "--out"
                            out
                        ]

                Expect.stringContains detect "5 classes (circle, square, triangle, star, ring), image size 64" "names and size"
                Expect.isTrue (File.Exists(Path.Combine(out, "detections.json"))) "detections.json"

                let export =
                    ok
                        [
                            "export"
                            "--weights"
                            r.LastCheckpoint
                            "--output"
                            Path.Combine(out, "m.onnx")
                        ]

                Expect.stringContains export "(5 classes, opset 12" "exported"
                let info = ok [ "info"; "--weights"; r.LastCheckpoint ]

                for line in
                    [
                        "trained: epoch 1 of 0-1 (epochs count from 0), best mAP@0.5:0.95"
                        "image size: 64"
                        "classes (5): circle, square, triangle, star, ring"
                        sprintf "dataset: %s" data.DataFile
                        "hyperparameters: giou 3.54"
                        "written by: YoloSpp 0."
                    ] do
                    Expect.stringContains info line "info prints the run"
            }
            test "a checkpoint written by main at 2aa7ce1 still loads: info, eval and export with --weights alone, detect with --names" {
                let dir, data, _, _ = run.Force()
                // the fixture's network: 5 classes, as the shapes data
                let info = CheckpointFile.ReadInfo oldCheckpoint
                Expect.isNull info.ClassNames "no names recorded"
                Expect.isFalse info.ImageSize.HasValue "no size recorded"

                let code, out, err = yolospp [ "info"; "--weights"; oldCheckpoint ]
                Expect.equal code 0 err
                Expect.stringContains out "Weights: loaded 166/166 tensors" "every tensor"
                Expect.stringContains out "classes: not recorded (an older checkpoint); give --names to detect" "says what it lacks"

                let code, out, err =
                    yolospp
                        [
                            "eval"
                            "--weights"
                            oldCheckpoint
                            "--data"
                            data.DataFile
                            "--img-size"
                            "64"
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "4 images" "evaluated"

                let code, _, err =
                    yolospp
                        [
                            "export"
                            "--weights"
                            oldCheckpoint
                            "--output"
                            Path.Combine(dir, "old.onnx")
                        ]

                Expect.equal code 0 err

                let code, _, err =
                    yolospp
                        [
                            "detect"
                            "--weights"
                            oldCheckpoint
                            "--source"
                            valImages data
                            "--out"
                            Path.Combine(dir, "old")
                        ]

                Expect.equal code 2 "detect without names"

                Expect.stringContains err "records no class names (an older checkpoint): give a .names file (--names), one class a line" "a clear message"

                let code, out, err =
                    yolospp
                        [
                            "detect"
                            "--weights"
                            oldCheckpoint
                            "--source"
                            valImages data
                            "--names"
                            (Path.Combine(data.Directory, "shapes.names"))
                            "--out"
                            Path.Combine(dir, "old")
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "image size 512" "the size defaults to 512"
                Expect.stringContains err "does not record its training image size (an older checkpoint): using 512" "and says so"

                // the façade
                let lines, notice = notices ()

                use detector =
                    Detector.Load(null, oldCheckpoint, (Path.Combine(data.Directory, "shapes.names")), DetectorOptions(ImageSize = Nullable 64), notice)

                Expect.equal detector.ImageSize 64 "the size given"
                Expect.isEmpty lines "no notice for a size given"

                let e = Evaluator.Evaluate(null, oldCheckpoint, data.DataFile, notice = notice)

                Expect.equal e.Images 4 "evaluates"
                Expect.equal lines.Count 1 "one notice: the size"
            }
        ]
