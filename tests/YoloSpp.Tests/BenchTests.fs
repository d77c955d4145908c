/// `yolospp bench`: the one loop (the runner and scripts/train.fsx give bit-identical runs), every figure on a tiny
/// setting with its JSON and baseline ratio, and bad options.
module YoloSpp.Tests.BenchTests

open System
open System.IO
open Expecto
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests

let tests =
    testList
        "cli-bench"
        [
            test "yolospp train and scripts/train.fsx give bit-identical results for the same options" {
                let dir = (Directory.CreateTempSubdirectory "yolospp-one-loop-").FullName

                try
                    let data =
                        YoloSpp.Data.ShapesDataset
                            .Generate(YoloSpp.Data.ShapesOptions(Path.Combine(dir, "data"), Train = 12, Val = 4, Size = 64, Seed = 4))
                            .DataFile

                    let cfg = Path.Combine(dir, "tiny5.cfg")
                    YoloSpp.Model.ModelCfg.WriteWithClasses(TestUtil.goldenFile "tiny-spp.cfg", cfg, 5)

                    let args out =
                        [
                            "--cfg"
                            cfg
                            "--data"
                            data
                            "--epochs"
                            "2"
                            "--batch-size"
                            "4"
                            "--img-size"
                            "64"
                            "--device"
                            "cpu"
                            "--multi-scale"
                            "true"
                            "--mosaic"
                            "true"
                            "--accumulate"
                            "2"
                            "--seed"
                            "3"
                            "--output"
                            Path.Combine(dir, out)
                        ]

                    let code, out, err = yolospp ("train" :: args "cli")
                    Expect.equal code 0 (sprintf "yolospp train: %s %s" out err)

                    let code, out, err =
                        runProcess
                            "dotnet"
                            ([ "fsi"; Path.Combine(TestUtil.repoRoot, "scripts", "train.fsx") ]
                             @ args "script")
                            TestUtil.repoRoot

                    Expect.equal code 0 (sprintf "scripts/train.fsx: %s %s" out err)

                    let entry (run: string) (name: string) =
                        use z = IO.Compression.ZipFile.OpenRead(Path.Combine(dir, run, "last.ckpt"))
                        use s = z.GetEntry(name).Open()
                        use ms = new MemoryStream()
                        s.CopyTo ms
                        ms.ToArray()

                    for name in [ "model.safetensors"; "optimizer.safetensors" ] do
                        Expect.isTrue (entry "cli" name = entry "script" name) (sprintf "%s bit-identical" name)

                    Expect.equal
                        (File.ReadAllText(Path.Combine(dir, "script", "results.txt")))
                        (File.ReadAllText(Path.Combine(dir, "cli", "results.txt")))
                        "results.txt"
                finally
                    try
                        Directory.Delete(dir, true)
                    with _ ->
                        ()
            }
            test "bench runs every figure on a tiny setting, prints one line each and writes them to JSON" {
                let dir = Directory.CreateTempSubdirectory "yolospp-bench-test-"

                try
                    let json = Path.Combine(dir.FullName, "b.json")

                    let code, out, err =
                        yolospp
                            [
                                "bench"
                                "--cfg"
                                "shapes-spp"
                                "--classes"
                                "5"
                                "--img-size"
                                "64"
                                "--batch-size"
                                "2"
                                "--train-steps"
                                "2"
                                "--repeats"
                                "1"
                                "--warmup"
                                "0"
                                "--loader-images"
                                "4"
                                "--nms-boxes"
                                "300"
                                "--coco-images"
                                "20"
                                "--output"
                                json
                            ]

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
                        Expect.isTrue (out.Split('\n') |> Array.exists (fun l -> l.StartsWith(n + ": "))) (sprintf "a '%s: ' line in\n%s" n out)

                    use doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText json)
                    let figures = doc.RootElement.GetProperty "figures"

                    for n in names do
                        let f = figures.GetProperty n
                        Expect.isTrue (Double.IsFinite(f.GetProperty("median").GetDouble())) (n + " median is a number")

                    Expect.stringContains out ("json: " + json) "prints the JSON path"
                    // a second run compares with the first
                    let code2, out2, err2 =
                        yolospp
                            [
                                "bench"
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
                                Path.Combine(dir.FullName, "c.json")
                            ]

                    Expect.equal code2 0 (out2 + err2)
                    Expect.stringContains out2 "x baseline" "ratio to the baseline"
                finally
                    dir.Delete true
            }
            test "bench rejects an unknown figure and a bad size with exit code 2" {
                let code, _, err = yolospp [ "bench"; "--only"; "gpu" ]
                Expect.equal code 2 "exit code"
                Expect.stringContains err "unknown figure 'gpu'" "names the figure"
                let code2, _, err2 = yolospp [ "bench"; "--img-size"; "100" ]
                Expect.equal code2 2 "exit code"
                Expect.stringContains err2 "--img-size 100" "names the option"
            }
            test "cfg writes yolov3-spp as a cfg that parses back to the reference's network" {
                let f =
                    Path.Combine(Path.GetTempPath(), sprintf "yolospp-%d.cfg" (Random.Shared.Next()))

                try
                    let code, out, err =
                        yolospp [ "cfg"; "--topology"; "yolov3-spp"; "--classes"; "20"; "--output"; f ]

                    Expect.equal code 0 err
                    Expect.stringContains out "114 layers" "layer count"
                    let c = YoloSpp.Model.ModelCfg.Load f
                    Expect.sequenceEqual c.YoloLayerIndices [ 89; 101; 113 ] "yolo layers"
                    let code2, _, err2 = yolospp [ "cfg"; "--topology"; "yolov9"; "--output"; f ]
                    Expect.equal code2 2 "unknown topology is bad input"
                    Expect.stringContains err2 "yolov9" "names it"
                finally
                    File.Delete f
            }
        ]
