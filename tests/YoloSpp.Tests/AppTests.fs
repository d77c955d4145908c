/// The app layer's promise: `yolospp train` and scripts/train.fsx are one training loop (bit-identical runs for the
/// same options), and `yolospp cfg` writes the reference's network back as a cfg.
module YoloSpp.Tests.AppTests

open System
open System.IO
open System.Text.Json
open Expecto
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests

let tests =
    testList
        "cli-app"
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
