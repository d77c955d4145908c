/// The cases of "Never train on nothing, never replace a run, never crash on a hostile file", one list per kind of
/// failure it reports, each run through the `yolospp` runner as a user meets it: the exit code, the message naming
/// the file, option or layer, and no stack trace. They use the runner and the library's long-standing API only, so
/// they build and run against earlier versions too (where they fail).
module YoloSpp.Tests.Robustness.WhyTests

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Text
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Tests

open YoloSpp.Platform
open YoloSpp.Tests.Robustness.WhyFixtures

let networks =
    testList
        "networks that cannot run"
        [
            test "a shortcut from a layer of another channel count runs, as the reference's WeightedFeatureFusion" {
                withDir (fun d ->
                    // layer 4 adds layer 2 (4 channels) to layer 3 (8 channels)
                    let cfg = editCfg shapesCfg (Path.Combine(d, "mismatch.cfg")) "from=-3" "from=-2"
                    let code, _, err = run d [ "info"; "--cfg"; cfg; "--img-size"; "64" ]
                    Expect.equal code 0 err
                    let data = shapes (Path.Combine(d, "ds"))
                    let weights = Path.Combine(d, "w.safetensors")
                    randomWeights cfg weights
                    let image, _ = firstTrain data
                    let names = Path.Combine(Path.GetDirectoryName data, "shapes.names")

                    let code, out, err =
                        run
                            d
                            [
                                "detect"
                                "--cfg"
                                cfg
                                "--weights"
                                weights
                                "--names"
                                names
                                "--source"
                                image
                                "--out"
                                Path.Combine(d, "det")
                                "--img-size"
                                "64"
                            ]

                    Expect.equal code 0 (out + err))
            }
            test "a route joining maps of different sizes is refused when read, naming the layer" {
                withDir (fun d ->
                    // the last route of the head joins the upsampled stride-8 map with layer 15 (stride 8); layer 22 is stride 16
                    let cfg =
                        editCfg shapesCfg (Path.Combine(d, "route.cfg")) "layers=-1,15" "layers=-1,22"

                    expectRefused (run d [ "info"; "--cfg"; cfg ]) [ cfg; "[route]"; "different" ] "info")
            }
            test "a shortcut from -0 (this layer itself) is refused when read" {
                withDir (fun d ->
                    let cfg = editCfg shapesCfg (Path.Combine(d, "self.cfg")) "from=-3" "from=-0"
                    expectRefused (run d [ "info"; "--cfg"; cfg ]) [ cfg; "-0" ] "info")
            }
            test "num=12 with 9 anchors and ignore_thresh=abc are refused naming their lines" {
                withDir (fun d ->
                    let num = editCfg shapesCfg (Path.Combine(d, "num.cfg")) "num=9" "num=12"
                    expectRefused (run d [ "info"; "--cfg"; num ]) [ num + ":"; "num=12" ] "num"

                    let thresh =
                        editCfg shapesCfg (Path.Combine(d, "thresh.cfg")) "ignore_thresh" "ignore_thresh=abc\n#"

                    expectRefused (run d [ "info"; "--cfg"; thresh ]) [ thresh + ":"; "abc" ] "ignore_thresh")
            }
            test "resuming with edited anchors is refused naming the layer, unless --allow-cfg-change" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let out = Path.Combine(d, "run")
                    let code, _, err = run d (trainArgs data cfg [ "--output"; out; "--notest" ])
                    Expect.equal code 0 err

                    let edited =
                        editCfg cfg (Path.Combine(d, "edited.cfg")) "anchors = 10,13," "anchors = 11,13,"

                    let resume extra =
                        run
                            d
                            (trainArgs
                                data
                                edited
                                ([ "--weights"; Path.Combine(out, "last.ckpt"); "--epochs"; "2"; "--notest" ]
                                 @ extra))

                    expectRefused (resume []) [ edited; "[yolo]"; "anchors" ] "resume"
                    let code, _, err = resume [ "--allow-cfg-change" ]
                    Expect.equal code 0 err)
            }
        ]

/// A safetensors file: the header length, then the header text, then `data`.
let safetensors (path: string) (length: uint64) (header: string) (data: byte[]) =
    File.WriteAllBytes(path, Array.concat [ BitConverter.GetBytes length; Encoding.UTF8.GetBytes header; data ])

let traces =
    testList
        "stack traces instead of messages"
        [
            test "malformed safetensors: empty, not JSON, truncated, header beyond the file, offsets beyond it, a [1e9, 1e9] shape" {
                withDir (fun d ->
                    let cfg = Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg")
                    let f name = Path.Combine(d, name + ".safetensors")
                    let tensor = """{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"""
                    File.WriteAllBytes(f "empty", [||])
                    safetensors (f "notjson") 5UL "hello" [||]
                    safetensors (f "beyond") 100000UL tensor [||]
                    safetensors (f "offsets") (uint64 tensor.Length) tensor (Array.zeroCreate 8)

                    let huge =
                        """{"w":{"dtype":"F32","shape":[1000000000,1000000000],"data_offsets":[0,16]}}"""

                    safetensors (f "huge") (uint64 huge.Length) huge (Array.zeroCreate 16)

                    let whole =
                        Array.concat
                            [
                                BitConverter.GetBytes(uint64 tensor.Length)
                                Encoding.UTF8.GetBytes tensor
                                Array.zeroCreate 16
                            ]

                    File.WriteAllBytes(f "truncated", whole[.. whole.Length - 6])

                    for name in [ "empty"; "notjson"; "beyond"; "offsets"; "huge"; "truncated" ] do
                        expectRefused (run d [ "info"; "--cfg"; cfg; "--weights"; f name ]) [ f name ] name)
            }
            test "filters=1000000000 is refused naming the layer" {
                withDir (fun d ->
                    let cfg =
                        editCfg shapesCfg (Path.Combine(d, "wide.cfg")) "filters=8\nsize=3\nstride=1" "filters=1000000000\nsize=3\nstride=1"

                    expectRefused (run d [ "info"; "--cfg"; cfg ]) [ cfg; "filters=1000000000" ] "info")
            }
            test "info on filters=200000 answers at once (it ran over 300 s at 5 GB)" {
                withDir (fun d ->
                    let cfg =
                        editCfg shapesCfg (Path.Combine(d, "wide.cfg")) "filters=8\nsize=3\nstride=1" "filters=200000\nsize=3\nstride=1"

                    let watch = Stopwatch.StartNew()

                    let psi =
                        ProcessStartInfo("dotnet", [ BuildTests.cliDll; "info"; "--cfg"; cfg ], RedirectStandardError = true, RedirectStandardOutput = true)

                    use p = Process.Start psi
                    let err = p.StandardError.ReadToEndAsync()

                    if not (p.WaitForExit 30000) then
                        p.Kill true
                        failtest "info still ran after 30 s"

                    Expect.equal p.ExitCode 2 err.Result
                    Expect.stringContains err.Result "filters=200000" "names the value"
                    // process start and the runtime included; the check itself is arithmetic on the cfg
                    Expect.isLessThan watch.Elapsed.TotalSeconds 10.0 "answers in seconds")
            }
            test "a 30000x30000 PNG is refused from its header by check-data, train and detect, naming it" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    File.Delete image
                    let big = Path.ChangeExtension(image, ".png")
                    File.Copy(hugePng.Force(), big)
                    // the list names the .jpg: point it at the .png
                    let list = Path.Combine(Path.GetDirectoryName data, "train.txt")
                    File.WriteAllText(list, File.ReadAllText(list).Replace("000000.jpg", "000000.png"))
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ big; "pixels" ] "check-data"
                    let cfg = tinyCfg d
                    expectRefused (run d (trainArgs data cfg [ "--output"; Path.Combine(d, "run") ])) [ big; "pixels" ] "train"
                    let weights = Path.Combine(d, "w.safetensors")
                    randomWeights cfg weights
                    let names = Path.Combine(Path.GetDirectoryName data, "shapes.names")

                    expectRefused
                        (run
                            d
                            [
                                "detect"
                                "--cfg"
                                cfg
                                "--weights"
                                weights
                                "--names"
                                names
                                "--source"
                                big
                                "--out"
                                Path.Combine(d, "det")
                            ])
                        [ big; "pixels" ]
                        "detect")
            }
            test "a hyp file nested 50,000 deep is refused without overflowing the stack" {
                withDir (fun d ->
                    let hyp = Path.Combine(d, "deep.yaml")
                    File.WriteAllText(hyp, "giou: " + String('[', 50000) + String(']', 50000) + "\n")
                    expectRefused (run d [ "hyp"; hyp ]) [ hyp; "nested" ] "hyp"
                    File.WriteAllText(hyp, "giou: " + String.replicate 50000 "{a: " + "1" + String('}', 50000) + "\n")
                    expectRefused (run d [ "hyp"; hyp ]) [ hyp; "nested" ] "hyp, nested mappings")
            }
            test "--output under /sys is refused naming it" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let out = "/sys/yolospp-test-run"
                    expectRefused (run d (trainArgs data (tinyCfg d) [ "--output"; out ])) [ out ] "train")
            }
        ]

let vague =
    testList
        "vague messages"
        [
            test "a 10000x20 image trains (its short side keeps one pixel)" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    RgbImage.Filled(10000, 20, 90uy).Save image

                    let code, out, err =
                        run d (trainArgs data (tinyCfg d) [ "--output"; Path.Combine(d, "run") ])

                    Expect.equal code 0 (out + err))
            }
            test "--device tpu names the devices there are" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    expectRefused (run d (trainArgs data (tinyCfg d) [ "--device"; "tpu" ])) [ "tpu"; "cpu"; "cuda" ] "train")
            }
            test "--output empty or naming a file is refused naming the option" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    expectRefused (run d (trainArgs data cfg [ "--output"; "" ])) [ "--output" ] "empty"
                    let file = Path.Combine(d, "afile")
                    File.WriteAllText(file, "x")
                    expectRefused (run d (trainArgs data cfg [ "--output"; file ])) [ "--output"; file ] "a file")
            }
        ]

let nonsense =
    testList
        "accepted nonsense"
        [
            test "--time-limit -1 is refused and writes nothing" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let out = Path.Combine(d, "run")
                    expectRefused (run d (trainArgs data (tinyCfg d) [ "--output"; out; "--time-limit"; "-1" ])) [ "--time-limit" ] "train"
                    Expect.isFalse (Directory.Exists out) "no run folder")
            }
            test "--rect with --mosaic true is a conflict named as such" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    expectRefused (run d (trainArgs data (tinyCfg d) [ "--rect"; "--mosaic"; "true" ])) [ "--rect"; "--mosaic" ] "train")
            }
            test "detect --conf 2 and --iou -1 are refused naming the option" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let weights = Path.Combine(d, "w.safetensors")
                    randomWeights cfg weights
                    let image, _ = firstTrain data
                    let names = Path.Combine(Path.GetDirectoryName data, "shapes.names")

                    let detect extra =
                        run
                            d
                            ([
                                "detect"
                                "--cfg"
                                cfg
                                "--weights"
                                weights
                                "--names"
                                names
                                "--source"
                                image
                                "--out"
                                Path.Combine(d, "det")
                             ]
                             @ extra)

                    expectRefused (detect [ "--conf"; "2" ]) [ "--conf" ] "conf"
                    expectRefused (detect [ "--iou"; "-1" ]) [ "--iou" ] "iou")
            }
            test "iou with a negative width or a NaN is refused" {
                withDir (fun d ->
                    expectRefused (run d [ "iou"; "10,10,-4,4"; "12,11,4,6" ]) [ "box1"; "negative" ] "negative width"
                    expectRefused (run d [ "iou"; "10,10,4,4"; "12,NaN,4,6" ]) [ "box2" ] "NaN")
            }
            test "hyp --nc 0 is refused" {
                withDir (fun d -> expectRefused (run d [ "hyp"; Path.Combine(TestUtil.repoRoot, "cfg", "hyp.yaml"); "--nc"; "0" ]) [ "--nc" ] "hyp")
            }
            test "cocoeval warns about negative boxes, unknown images and categories and duplicate ids; --strict refuses them" {
                withDir (fun d ->
                    let gt = Path.Combine(d, "gt.json")
                    let dt = Path.Combine(d, "dt.json")

                    File.WriteAllText(
                        gt,
                        """{"images":[{"id":1,"width":100,"height":100}],"categories":[{"id":1,"name":"a"}],"annotations":[
{"id":1,"image_id":1,"category_id":1,"bbox":[10,10,20,20],"area":400,"iscrowd":0},
{"id":1,"image_id":1,"category_id":1,"bbox":[50,50,20,20],"area":400,"iscrowd":0},
{"id":2,"image_id":1,"category_id":1,"bbox":[60,60,-5,10],"area":50,"iscrowd":0},
{"id":3,"image_id":7,"category_id":1,"bbox":[10,10,20,20],"area":400,"iscrowd":0},
{"id":4,"image_id":1,"category_id":9,"bbox":[10,10,20,20],"area":400,"iscrowd":0}]}"""
                    )

                    File.WriteAllText(dt, """[{"image_id":1,"category_id":1,"bbox":[10,10,20,20],"score":0.9}]""")
                    let code, _, err = run d [ "cocoeval"; "--gt"; gt; "--dt"; dt ]
                    Expect.equal code 0 err

                    for m in
                        [
                            "annotation id 1 is used twice"
                            "negative size"
                            "image_id 7"
                            "category_id 9"
                        ] do
                        Expect.stringContains err m (sprintf "warns: %s" m)

                    expectNoTrace err "cocoeval"
                    expectRefused (run d [ "cocoeval"; "--gt"; gt; "--dt"; dt; "--strict" ]) [ gt; "--strict" ] "--strict")
            }
        ]

/// Every list of the issue's "Why", in its order.
let tests =
    testList
        "robustness.why"
        [
            WhyDataTests.labels
            WhyDataTests.images
            WhyDataTests.runs
            WhyDataTests.cache
            networks
            traces
            vague
            nonsense
        ]
