/// Tests of the build itself: the native load fix, and the `yolospp` runner as a user calls it.
module YoloSpp.Tests.BuildTests

open System
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open Expecto
open YoloSpp.Tests

/// Runs a program to completion; returns (exit code, stdout, stderr).
let runProcess (exe: string) (args: string list) (cwd: string) =
    let psi =
        ProcessStartInfo(exe, args, WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)

    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    p.WaitForExit()
    p.ExitCode, out.Result, err.Result

let systemHasGlibcxx332 () =
    [
        "/usr/lib/x86_64-linux-gnu"
        "/lib/x86_64-linux-gnu"
        "/usr/lib64"
        "/lib64"
        "/usr/lib"
        "/lib"
    ]
    |> List.map (fun d -> Path.Combine(d, "libstdc++.so.6"))
    |> List.exists (fun f ->
        File.Exists f
        && (Text.Encoding.ASCII.GetString(File.ReadAllBytes f)).Contains "GLIBCXX_3.4.32\000")

/// The flags readelf prints for the GLIBCXX_3.4.32 requirement of a library ("WEAK" or "none").
let versionFlags (lib: string) =
    let code, out, err = runProcess "readelf" [ "-V"; lib ] "."

    if code <> 0 then
        failtestf "readelf -V %s failed: %s" lib err

    out.Split('\n')
    |> Array.tryFind (fun l -> l.Contains "Name: GLIBCXX_3.4.32")
    |> Option.map (fun l -> l.Substring(l.IndexOf "Flags:" + 6).Trim().Split(' ').[0])

let private linuxWithReadelf () =
    if not (RuntimeInformation.IsOSPlatform OSPlatform.Linux) then
        skiptest "Linux only"

    if
        (try
            (let c, _, _ = runProcess "readelf" [ "--version" ] "." in c <> 0)
         with _ ->
             true)
    then
        skiptest "readelf (binutils) not installed"

let private pristineGlue () =
    let cache =
        match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
        | null
        | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        | d -> d

    let f =
        Path.Combine(cache, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

    if not (File.Exists f) then
        skiptest (sprintf "%s not in the NuGet cache" f)

    f

let nativeFixTests =
    testList
        "native-fix"
        [
            test "the libLibTorchSharp.so this test run loaded has GLIBCXX_3.4.32 weak when the system lacks it" {
                linuxWithReadelf ()

                let glue =
                    Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

                Expect.isTrue (File.Exists glue) glue
                let expected = if systemHasGlibcxx332 () then None else Some "WEAK"

                if expected.IsSome then
                    Expect.equal (versionFlags glue) expected "flags in the output copy"
            }
            test "the build step patches a pristine copy once, changes one byte, and is idempotent" {
                linuxWithReadelf ()

                if systemHasGlibcxx332 () then
                    skiptest "the system libstdc++ has GLIBCXX_3.4.32: nothing to patch"

                let pristine = pristineGlue ()
                Expect.equal (versionFlags pristine) (Some "none") "the NuGet cache's copy is never patched"
                let dir = Directory.CreateTempSubdirectory "yolospp-nativefix-"

                try
                    let native =
                        Directory.CreateDirectory(Path.Combine(dir.FullName, "runtimes", "linux-x64", "native"))

                    let copy = Path.Combine(native.FullName, "libLibTorchSharp.so")
                    File.Copy(pristine, copy)
                    let targets = Path.Combine(TestUtil.repoRoot, "build", "NativeFix.targets")

                    let msbuild () =
                        runProcess
                            "dotnet"
                            [
                                "msbuild"
                                targets
                                "-t:YoloSppNativeFix"
                                "-nologo"
                                sprintf "-p:OutDir=%s/" dir.FullName
                            ]
                            dir.FullName

                    let code1, out1, _ = msbuild ()
                    Expect.equal code1 0 out1
                    Expect.stringContains out1 "marked it weak" "one line when it acts"
                    Expect.equal (versionFlags copy) (Some "WEAK") "patched"
                    let a, b = File.ReadAllBytes pristine, File.ReadAllBytes copy
                    Expect.equal a.Length b.Length "same size"
                    Expect.equal (Seq.zip a b |> Seq.filter (fun (x, y) -> x <> y) |> Seq.length) 1 "one byte (the flag) differs"
                    let code2, out2, _ = msbuild ()
                    Expect.equal code2 0 out2
                    Expect.isFalse (out2.Contains "marked it weak") "silent when already patched"
                    Expect.sequenceEqual (File.ReadAllBytes copy) b "unchanged by the second run"
                finally
                    dir.Delete true
            }
        ]

let cliDll =
    Path.Combine(TestUtil.repoRoot, "src", "YoloSpp.Cli", "bin", "Release", "net10.0", "yolospp.dll")

/// Runs `yolospp` (the Release build of the runner).
let yolospp (args: string list) =
    if not (File.Exists cliDll) then
        failtestf "%s is not built (dotnet fsi build.fsx build)" cliDll

    runProcess "dotnet" (cliDll :: args) TestUtil.repoRoot

let benchDll =
    Path.Combine(TestUtil.repoRoot, "bench", "YoloSpp.Bench", "bin", "Release", "net10.0", "yolospp-bench.dll")

/// Runs `yolospp-bench` (the Release build of the benchmarks, bench/YoloSpp.Bench).
let yolosppBench (args: string list) =
    if not (File.Exists benchDll) then
        failtestf "%s is not built (dotnet fsi build.fsx build)" benchDll

    runProcess "dotnet" (benchDll :: args) TestUtil.repoRoot

let cliTests =
    testList
        "cli"
        [
            test "--help lists the commands and exits 0" {
                let code, out, _ = yolospp [ "--help" ]
                Expect.equal code 0 "exit code"
                Expect.stringContains out "USAGE: yolospp" "usage"
                Expect.stringContains out "iou" "iou command"
            }
            test "doctor prints versions, the CPU, the guard's decision and a fresh conv check, and exits 0 when they are right" {
                let code, out, err = yolospp [ "doctor"; "--no-speed" ]

                for line in
                    [
                        "TorchSharp 0.107"
                        "libtorch 2.10"
                        "CPU: "
                        "instruction set: oneDNN "
                        "int8 check (export --int8: ONNX Runtime's QLinearConv against exact integer sums"
                        "; 7-bit weights (--reduce-range) right"
                        "threads: "
                        "CUDA: "
                        "conv guard: YOLOSPP_CONV=auto"
                        "conv check now"
                    ] do
                    Expect.stringContains out line (sprintf "prints '%s'" line)
                // exit 0 only when the fresh check finds every convolution on the kernels in use right
                if out.Contains "OK: convolutions compute correctly here" then
                    Expect.equal code 0 "exit code"
                else
                    Expect.equal code 1 "exit code of a problem"
                    Expect.stringContains err "problem:" "the reason"
            }
            test "--version prints the version" {
                let code, out, _ = yolospp [ "--version" ]
                Expect.equal code 0 "exit code"
                Expect.stringStarts out "yolospp 0.1.0" "version"
            }
            test "iou prints the four IoU kinds of two boxes" {
                let code, out, err = yolospp [ "iou"; "10,10,4,4"; "12,11,4,6" ]
                Expect.equal code 0 err
                Expect.stringContains out "IoU   0.25" "iou"
                Expect.stringContains out "GIoU  0.1388888888888889" "giou"
            }
            test "a malformed box is exit code 2 with a one-line reason" {
                let code, _, err = yolospp [ "iou"; "10,10,4"; "12,11,4,6" ]
                Expect.equal code 2 "exit code"
                Expect.equal (err.Trim()) "box1: '10,10,4' is not four comma-separated numbers" "message"
            }
            test "no command is a usage error (exit 2)" {
                let code, _, err = yolospp []
                Expect.equal code 2 "exit code"
                Expect.stringContains err "a command is required" "message"
            }
            test "hyp checks a file and prints it adjusted for a dataset" {
                let code, out, err =
                    yolospp [ "hyp"; "cfg/hyp.yaml"; "--nc"; "20"; "--img-size"; "640" ]

                Expect.equal code 0 err
                Expect.stringContains out "cls: 9.35" "cls * 20/80"
                Expect.stringContains out "obj: 128.6" "obj * 640/320"
            }
            test "hyp on a bad file is exit code 2 naming file and line" {
                let f =
                    Path.Combine(Path.GetTempPath(), sprintf "yolospp-bad-%d.yaml" (Random.Shared.Next()))

                File.WriteAllText(f, "giou: 3.54\nwat: 1\n")

                try
                    let code, _, err = yolospp [ "hyp"; f ]
                    Expect.equal code 2 "exit code"
                    Expect.stringContains err (f + ":2: unknown key 'wat'") "message"
                finally
                    File.Delete f
            }
        ]

let private goldenFile name =
    Path.Combine(TestUtil.repoGoldenDir, name)

let infoTests =
    testList
        "cli-info"
        [
            test "info prints layers, totals, GFLOPs and the fused tensor count" {
                let code, out, err =
                    yolospp
                        [
                            "info"
                            "--cfg"
                            goldenFile "tiny-spp.cfg"
                            "--weights"
                            goldenFile "tiny-spp-random.weights"
                            "--img-size"
                            "128"
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "Model summary: 56 modules, 102 parameter tensors, 91,303 parameters, 91,303 gradients" "totals"
                Expect.stringContains out "Fused for inference (conv+BN folded): 70 parameter tensors" "fused count"
                Expect.stringContains out "Weights: loaded 198/198 tensors" "weights (conv and BN state; the anchors are no state)"
                Expect.stringContains out "   38  yolo           3x4x4x7" "a yolo row"
            }
            test "info --json is machine-readable" {
                let code, out, err =
                    yolospp [ "info"; "--cfg"; goldenFile "yolov3-spp.cfg"; "--json" ]

                Expect.equal code 0 err
                use doc = Text.Json.JsonDocument.Parse out
                Expect.equal (doc.RootElement.GetProperty("parameters").GetInt64()) 62998749L "parameters"
                Expect.equal (doc.RootElement.GetProperty("layers").GetArrayLength()) 114 "layers"
            }
            test "info on a bad cfg is exit 2 with file:line: reason and no stack trace" {
                let f =
                    Path.Combine(Path.GetTempPath(), sprintf "yolospp-bad-%d.cfg" (Random.Shared.Next()))

                File.WriteAllText(f, "[net]\nwidth=64\n[convolutional]\nfilters=8\nsize=3\nactivation=swish\n")

                try
                    let code, out, err = yolospp [ "info"; "--cfg"; f ]
                    Expect.equal code 2 out
                    Expect.equal (err.Trim()) (sprintf "%s:6: unknown activation 'swish' for 'activation' (supported: leaky, linear)" f) "message"
                finally
                    File.Delete f
            }
            test "info with weights that do not fit the cfg is exit 2 naming the layer" {
                let code, _, err =
                    yolospp
                        [
                            "info"
                            "--cfg"
                            goldenFile "yolov3-spp.cfg"
                            "--weights"
                            goldenFile "tiny-spp-random.weights"
                        ]

                Expect.equal code 2 "exit code"
                Expect.stringContains err "ran out at layer" "message"
                Expect.isFalse (err.Contains "   at ") "no stack trace"
            }
        ]

let exampleTests =
    testList
        "examples"
        [
            test "the C# TrainAndDetect example trains one epoch and detects on an image" {
                let dll =
                    Path.Combine(TestUtil.repoRoot, "examples", "TrainAndDetect", "bin", "Release", "net10.0", "TrainAndDetect.dll")

                if not (File.Exists dll) then
                    failtestf "%s is not built (dotnet fsi build.fsx build)" dll

                // runs never replace runs: an earlier run of the example would send this one to runs/example2
                let previous = Path.Combine(TestUtil.repoRoot, "runs", "example")

                if Directory.Exists previous then
                    Directory.Delete(previous, true)

                let code, out, err = runProcess "dotnet" [ dll ] TestUtil.repoRoot
                Expect.equal code 0 (out + err)
                Expect.stringContains out "weights runs/example/last.ckpt" "trained and saved"
                Expect.stringContains out "detections (after one epoch" "detected"
            }
        ]
