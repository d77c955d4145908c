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

/// Runs the runner (Release build) in `cwd`; (exit code, stdout, stderr).
let run (cwd: string) (args: string list) =
    if not (File.Exists BuildTests.cliDll) then
        failtestf "%s is not built (dotnet fsi build.fsx build)" BuildTests.cliDll

    BuildTests.runProcess "dotnet" (BuildTests.cliDll :: args) cwd

/// No .NET stack trace and no unhandled-exception report reached the user.
let expectNoTrace (err: string) (what: string) =
    Expect.isFalse (err.Contains "   at ") (sprintf "%s: no stack trace in stderr:\n%s" what err)
    Expect.isFalse (err.Contains "Unhandled exception") (sprintf "%s: no unhandled exception:\n%s" what err)

/// Exit code 2 (bad input), each of `mentions` in stderr, no stack trace.
let expectRefused (code: int, _out: string, err: string) (mentions: string list) (what: string) =
    Expect.equal code 2 (sprintf "%s: exit code 2 (bad input); stderr:\n%s" what err)

    for m in mentions do
        Expect.stringContains err m (sprintf "%s: the message names '%s'" what m)

    expectNoTrace err what

/// A temp folder for one test, deleted afterwards.
let withDir (f: string -> unit) =
    let d = (Directory.CreateTempSubdirectory "yolospp-why-").FullName

    try
        f d
    finally
        try
            Directory.Delete(d, true)
        with _ ->
            ()

/// A shapes set (8 train, 4 val images at 64 px) in `dir`; its .data file.
let shapes (dir: string) =
    ShapesDataset.Generate(ShapesOptions(dir, Train = 8, Val = 4, Size = 64, Seed = 2)).DataFile

/// The tiny test network for the shapes' 5 classes, written to dir/tiny5.cfg.
let tinyCfg (dir: string) =
    let cfg = Path.Combine(dir, "tiny5.cfg")
    ModelCfg.WriteWithClasses(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"), cfg, 5)
    cfg

/// `yolospp train` for one short epoch at 64 px on the CPU.
let trainArgs (data: string) (cfg: string) (extra: string list) =
    [
        "train"
        "--data"
        data
        "--cfg"
        cfg
        "--hyp"
        Path.Combine(TestUtil.repoRoot, "cfg", "hyp.shapes.yaml")
        "--epochs"
        "1"
        "--img-size"
        "64"
        "--batch-size"
        "4"
        "--device"
        "cpu"
    ]
    @ extra

/// Random weights of a cfg, saved as safetensors (for detect).
let randomWeights (cfg: string) (path: string) =
    Backend.Initialize()
    use m = DarkNet.FromCfgFile cfg
    ModelWeights.Save(m, path)

/// A JPEG of the set cut to `share` of its bytes.
let truncate (image: string) (share: float) =
    let bytes = File.ReadAllBytes image
    File.WriteAllBytes(image, bytes[.. int (float bytes.Length * share) - 1])

/// A valid 8-bit greyscale PNG of w × h zero pixels: IHDR, one zlib IDAT, IEND (900 kB for 30000 × 30000).
let bigPng (path: string) (w: int) (h: int) =
    let crc (data: byte[]) =
        let table =
            Array.init 256 (fun n ->
                let mutable c = uint32 n

                for _ in 1..8 do
                    c <-
                        if c &&& 1u <> 0u then
                            0xEDB88320u ^^^ (c >>> 1)
                        else
                            c >>> 1

                c)

        let mutable c = 0xFFFFFFFFu

        for b in data do
            c <- table.[int ((c ^^^ uint32 b) &&& 0xFFu)] ^^^ (c >>> 8)

        c ^^^ 0xFFFFFFFFu

    let be (v: uint32) =
        [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]

    let chunk (kind: string) (data: byte[]) =
        let body = Array.append (Encoding.ASCII.GetBytes kind) data
        Array.concat [ be (uint32 data.Length); body; be (crc body) ]

    let ihdr =
        Array.concat [ be (uint32 w); be (uint32 h); [| 8uy; 0uy; 0uy; 0uy; 0uy |] ]

    let idat =
        use ms = new MemoryStream()

        (use z = new ZLibStream(ms, CompressionLevel.Fastest, true)
         let row = Array.zeroCreate<byte> (w + 1)

         for _ in 1..h do
             z.Write(row, 0, row.Length))

        ms.ToArray()

    File.WriteAllBytes(
        path,
        Array.concat
            [
                [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]
                chunk "IHDR" ihdr
                chunk "IDAT" idat
                chunk "IEND" [||]
            ]
    )

/// A 30000 × 30000 PNG, made once.
let hugePng =
    lazy
        (let p = Path.Combine(TestUtil.fixtureDir "yolospp-why-png-", "huge.png")
         bigPng p 30000 30000
         p)

/// The first training image of a shapes set and its label file.
let firstTrain (data: string) =
    let dir = Path.GetDirectoryName data
    Path.Combine(dir, "images", "train", "000000.jpg"), Path.Combine(dir, "labels", "train", "000000.txt")

/// The first training image whose label file has rows, and that label file.
let firstLabelled (data: string) =
    let dir = Path.GetDirectoryName data

    Directory.GetFiles(Path.Combine(dir, "labels", "train"))
    |> Array.sort
    |> Array.find (fun l -> File.ReadAllText(l).Trim() <> "")
    |> fun l -> Path.Combine(dir, "images", "train", Path.GetFileNameWithoutExtension l + ".jpg"), l

/// A text edit of a cfg: `old` replaced by `replacement` once (the text must hold it).
let editCfg (source: string) (target: string) (old: string) (replacement: string) =
    let text = File.ReadAllText source
    let i = text.IndexOf(old: string)

    if i < 0 then
        failtestf "%s does not hold '%s'" source old

    File.WriteAllText(target, text.Substring(0, i) + replacement + text.Substring(i + old.Length))
    target

let private shapesCfg = Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")

let labels =
    testList
        "no labels"
        [
            test "a dataset under a parent folder named images finds its labels (the last images folder becomes labels)" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "images", "proj"))
                    let code, out, err = run d [ "check-data"; "--data"; data ]
                    Expect.equal code 0 err
                    Expect.stringContains out "missing 0" (sprintf "every label found:\n%s" out)
                    Expect.isFalse (out.Contains "found 0,") "labels found")
            }
            test "train on a set without a labels folder exits 2 naming where it looked, as the reference's 'No labels found'" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let labels = Path.Combine(d, "ds", "labels")
                    Directory.Delete(labels, true)
                    let out = Path.Combine(d, "run")
                    let r = run d (trainArgs data (tinyCfg d) [ "--output"; out ])
                    expectRefused r [ "no labels"; Path.Combine(labels, "train") ] "train without labels"
                    Expect.isFalse (File.Exists(Path.Combine(out, "last.ckpt"))) "nothing trained"
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ "no labels" ] "check-data without labels")
            }
            test "a folder where a label file should be is an error naming it" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let _, label = firstTrain data
                    File.Delete label
                    Directory.CreateDirectory label |> ignore
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ label ] "check-data")
            }
        ]

let images =
    testList
        "corrupt images"
        [
            test "check-data names a truncated JPEG and one with a corrupt header, and exits 2" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    truncate image 0.43
                    let other = Path.Combine(Path.GetDirectoryName image, "000001.jpg")
                    let bytes = File.ReadAllBytes other
                    // overwrite the quantisation and Huffman tables: the header is still found, the data is not decodable
                    Array.fill bytes 20 200 0x5Auy
                    File.WriteAllBytes(other, bytes)
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ image; other ] "check-data")
            }
            test "train skips a truncated JPEG with a warning naming it instead of training on its black rows" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    truncate image 0.43

                    let code, out, err =
                        run d (trainArgs data (tinyCfg d) [ "--output"; Path.Combine(d, "run"); "--notest" ])

                    Expect.equal code 0 (out + err)
                    Expect.stringContains out (image + ": truncated image") "warned, naming the image"
                    Expect.stringContains out "skipped 1 corrupt" "counted in the summary")
            }
            test "detect on a truncated JPEG exits 2 naming it and draws no black picture" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    truncate image 0.43
                    let cfg = tinyCfg d
                    let weights = Path.Combine(d, "w.safetensors")
                    randomWeights cfg weights
                    let out = Path.Combine(d, "det")
                    let names = Path.Combine(Path.GetDirectoryName data, "shapes.names")

                    let r =
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
                                out
                                "--img-size"
                                "64"
                            ]

                    expectRefused r [ image; "truncated" ] "detect"
                    Expect.isFalse (File.Exists(Path.Combine(out, "000000.jpg"))) "no annotated picture")
            }
        ]

/// A pid that no process has now (for a temp file a killed process left).
let deadPid () =
    Seq.initInfinite (fun i -> 32000 - i)
    |> Seq.find (fun p -> p > 1000 && not (Directory.Exists(sprintf "/proc/%d" p)))

let runs =
    testList
        "runs replaced"
        [
            test "a second train into the same --output writes to <output>2, saying so, and leaves the first run's files" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let out = Path.Combine(d, "run")
                    let code, _, err = run d (trainArgs data cfg [ "--output"; out; "--notest" ])
                    Expect.equal code 0 err
                    let first = File.ReadAllBytes(Path.Combine(out, "last.ckpt"))

                    let code, stdout, err =
                        run d (trainArgs data cfg [ "--output"; out; "--notest"; "--seed"; "7" ])

                    Expect.equal code 0 err
                    Expect.stringContains stdout (out + "2") "says where it writes"
                    Expect.isTrue (File.Exists(Path.Combine(out + "2", "last.ckpt"))) "the second run's checkpoint"
                    Expect.isTrue (File.ReadAllBytes(Path.Combine(out, "last.ckpt")) = first) "the first run's checkpoint unchanged")
            }
            test "the default runs/train gives way to runs/train2 too" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d

                    for _ in 1..2 do
                        let code, _, err = run d (trainArgs data cfg [ "--notest" ])
                        Expect.equal code 0 err

                    Expect.isTrue (File.Exists(Path.Combine(d, "runs", "train", "last.ckpt"))) "first run"
                    Expect.isTrue (File.Exists(Path.Combine(d, "runs", "train2", "last.ckpt"))) "second run")
            }
            test "two runs started together into one folder both keep their checkpoints" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let out = Path.Combine(d, "run")

                    let start seed =
                        let psi =
                            ProcessStartInfo(
                                "dotnet",
                                BuildTests.cliDll
                                :: trainArgs data cfg [ "--output"; out; "--notest"; "--seed"; string seed ],
                                WorkingDirectory = d,
                                RedirectStandardOutput = true,
                                RedirectStandardError = true
                            )

                        let p = Process.Start psi
                        let o, e = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
                        p, o, e

                    let a, b = start 1, start 2

                    for p, o, e in [ a; b ] do
                        p.WaitForExit()
                        Expect.equal p.ExitCode 0 (o.Result + e.Result)

                    let ckpts =
                        [ out; out + "2" ]
                        |> List.map (fun f -> Path.Combine(f, "last.ckpt"))
                        |> List.filter File.Exists

                    Expect.equal ckpts.Length 2 "one checkpoint per run, in two folders")
            }
            test "a temp checkpoint a killed process left is removed when its folder is resumed" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let out = Path.Combine(d, "run")
                    let code, _, err = run d (trainArgs data cfg [ "--output"; out; "--notest" ])
                    Expect.equal code 0 err
                    // what AtomicFile leaves when its process is killed inside the write
                    let temp =
                        Path.Combine(out, sprintf ".last.ckpt.%d.%s.tmp" (deadPid ()) (Guid.NewGuid().ToString "N"))

                    File.WriteAllBytes(temp, Array.zeroCreate 4096)

                    let code, _, err =
                        run d (trainArgs data cfg [ "--notest"; "--weights"; Path.Combine(out, "last.ckpt"); "--epochs"; "2" ])

                    Expect.equal code 0 err
                    Expect.isFalse (File.Exists temp) "the dead process's temp file is gone")
            }
        ]

let cache =
    testList
        "stale label cache"
        [
            test "a label edited without changing its size and time is read again" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let code, _, err = run d [ "check-data"; "--data"; data ]
                    Expect.equal code 0 err
                    let _, label = firstLabelled data
                    let time = File.GetLastWriteTimeUtc label
                    let text = File.ReadAllText label
                    // the first row's class becomes 9 (out of range for 5 classes): same size, same time
                    File.WriteAllText(label, "9" + text.Substring 1)
                    File.SetLastWriteTimeUtc(label, time)
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ label + ":1"; "class 9" ] "the edit is seen")
            }
        ]

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
    testList "robustness.why" [ labels; images; runs; cache; networks; traces; vague; nonsense ]
