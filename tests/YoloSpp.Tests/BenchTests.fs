/// `yolospp-bench` (bench/YoloSpp.Bench): every figure on a tiny
/// setting with its JSON and baseline ratio, the opt-in split of the training step, and bad options.
module YoloSpp.Tests.BenchTests

open System
open System.IO
open System.Text.Json
open Expecto
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests

/// Runs `yolospp-bench` on the demo network at 64 px, batch 2, with `options` and its JSON in a fresh folder, then
/// `check` with the exit code, the output (stdout and stderr) and the JSON's path; the folder is removed after.
let private tinyBench (options: string list) (check: int -> string -> string -> string -> unit) =
    let dir = Directory.CreateTempSubdirectory "yolospp-bench-test-"

    try
        let json = Path.Combine(dir.FullName, "b.json")

        let code, out, err =
            yolosppBench (
                [
                    "--cfg"
                    "shapes-spp"
                    "--classes"
                    "5"
                    "--img-size"
                    "64"
                    "--batch-size"
                    "2"
                ]
                @ options
                @ [ "--output"; json ]
            )

        check code out err json
    finally
        dir.Delete true

/// A `<name>: ` line in the bench's output.
let private expectLine (out: string) (name: string) =
    Expect.isTrue (out.Split('\n') |> Array.exists (fun l -> l.StartsWith(name + ": "))) (sprintf "a '%s: ' line in\n%s" name out)

/// The median of a figure in a bench JSON file.
let private median (json: string) (name: string) =
    use doc = JsonDocument.Parse(File.ReadAllText json)
    doc.RootElement.GetProperty("figures").GetProperty(name).GetProperty("median").GetDouble()

let tests =
    testList
        "cli-bench"
        [
            test "bench runs every figure on a tiny setting, prints one line each and writes them to JSON" {
                let options =
                    [
                        "--train-steps"
                        "2"
                        "--repeats"
                        "1"
                        "--warmup"
                        "0"
                        "--loader-images"
                        "4"
                    ]
                    @ [ "--nms-boxes"; "300"; "--coco-images"; "20" ]

                tinyBench options (fun code out err json ->
                    Expect.equal code 0 (out + err)

                    let names =
                        [
                            "train_step"
                            "rss_growth"
                            "inference"
                            "inference_fused"
                            "inference_onnxruntime"
                            "inference_onnxruntime_int8"
                            "loader_train"
                            "loader_eval"
                            "nms"
                            "cocoeval"
                            "loader_vs_train"
                        ]

                    for n in names do
                        expectLine out n
                        Expect.isTrue (Double.IsFinite(median json n)) (n + " median is a number")

                    Expect.isFalse (out.Contains "train_forward") "the phase split is opt-in"
                    Expect.stringContains out ("json: " + json) "prints the JSON path"
                    // a second run compares with the first
                    let code2, out2, err2 =
                        yolosppBench
                            [
                                "--cfg"
                                "shapes-spp"
                                "--classes"
                                "5"
                                "--only"
                                "nms"
                                "--nms-boxes"
                                "300"
                                "--repeats"
                                "1"
                                "--baseline"
                                json
                                "--output"
                                Path.Combine(Path.GetDirectoryName json, "c.json")
                            ]

                    Expect.equal code2 0 (out2 + err2)
                    Expect.stringContains out2 "x baseline" "ratio to the baseline")
            }
            test "bench --only train_phases splits the trainer's step into forward, loss, backward and optimizer" {
                tinyBench [ "--train-steps"; "3"; "--warmup"; "1"; "--only"; "train_phases" ] (fun code out err json ->
                    Expect.equal code 0 (out + err)
                    Expect.isFalse (out.Contains "train_step:") "only the split"
                    let parts = [ "train_forward"; "train_loss"; "train_backward"; "train_optimizer" ]
                    use doc = JsonDocument.Parse(File.ReadAllText json)

                    let sumMax =
                        doc.RootElement.GetProperty("figures").GetProperty("train_phases_sum").GetProperty("max")

                    for n in parts do
                        expectLine out n
                        Expect.isGreaterThan (median json n) 0.0 (n + " took time")
                        // each step's sum is its four parts: no part's median exceeds the largest sum
                        Expect.isLessThanOrEqual (median json n) (sumMax.GetDouble()) (n + " within a step's sum"))
            }
            test "bench --only diagnostics times the validation metrics, results.png and the end-of-run pictures" {
                tinyBench [ "--only"; "diagnostics"; "--repeats"; "1"; "--warmup"; "0" ] (fun code out err json ->
                    Expect.equal code 0 (out + err)

                    for n in [ "validation_metrics"; "results_png"; "validation_plots" ] do
                        expectLine out n
                        Expect.isGreaterThan (median json n) 0.0 (n + " took time"))
            }
            test "bench rejects an unknown figure and a bad size with exit code 2" {
                let code, _, err = yolosppBench [ "--only"; "gpu" ]
                Expect.equal code 2 "exit code"
                Expect.stringContains err "unknown figure 'gpu'" "names the figure"
                let code2, _, err2 = yolosppBench [ "--img-size"; "100" ]
                Expect.equal code2 2 "exit code"
                Expect.stringContains err2 "--img-size 100" "names the option"
            }
        ]
