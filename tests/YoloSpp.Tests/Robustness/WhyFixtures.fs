/// The robustness cases' fixtures: running the runner, expecting a refusal without a stack trace, tiny datasets,
/// cfgs and weights, and hostile files (truncated images, huge PNGs, edited cfgs).
module YoloSpp.Tests.Robustness.WhyFixtures

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

let shapesCfg = Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")

/// A pid that no process has now (for a temp file a killed process left).
let deadPid () =
    Seq.initInfinite (fun i -> 32000 - i)
    |> Seq.find (fun p -> p > 1000 && not (Directory.Exists(sprintf "/proc/%d" p)))
