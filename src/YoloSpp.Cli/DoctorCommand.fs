/// `yolospp doctor`: the environment check to run first. Versions, CPU and instruction set, threads, CUDA, the
/// convolution guard's decision and a fresh convolution check, a speed probe; exit 0 only when everything
/// computes correctly.
module YoloSpp.Cli.DoctorCommand

open System
open Argu
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training

type DoctorArgs =
    | No_Speed
    | Verbose

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | No_Speed -> "skip the speed probe"
            | Verbose -> "list every convolution check that came out wrong"

/// Runs the command; returns the exit code (0 all right, 1 a problem, with the reason).
let run (args: ParseResults<DoctorArgs>) : int =
    let r = Doctor.Run(not (args.Contains No_Speed))
    let g = r.Guard
    printfn "YoloSpp %s, TorchSharp %s, libtorch %s" r.YoloSppVersion r.TorchSharpVersion r.LibTorchVersion
    printfn "CPU: %s (%d logical processors)" r.CpuModel r.Processors
    printfn "instruction set: oneDNN %s; AVX-512: %s" r.OneDnnIsa r.Avx512Flags

    printfn
        "int8 (export --int8, ONNX Runtime): %s"
        (if CpuInfo.HasVnni then
             "VNNI, full-range int8 weights"
         else
             "no VNNI: export with --reduce-range (7-bit weights), 8-bit ones can saturate here")

    printfn "threads: %d libtorch intra-op" r.TorchThreads
    printfn "host memory: %s" r.HostMemory

    printfn
        "CUDA: %s"
        (if r.CudaDevices > 0 then
             sprintf "%d device(s)" r.CudaDevices
         else
             "not available (CPU backend or no GPU)")

    let failed (xs: seq<ConvCheckResult>) =
        xs |> Seq.filter (fun c -> not c.Ok) |> Seq.length

    let oneDnnChecks =
        g.Checks |> Seq.filter (fun c -> c.Kernels = "oneDNN") |> Seq.toArray

    printfn "conv guard: YOLOSPP_CONV=%s; %s" (g.Mode.ToString().ToLowerInvariant()) g.Decision

    if oneDnnChecks.Length > 0 then
        printfn
            "  libtorch's default (oneDNN) kernels: %d of %d checked convolutions wrong%s"
            (failed oneDnnChecks)
            oneDnnChecks.Length
            (match g.CacheFile with
             | null -> ""
             | f -> sprintf " (results kept in %s)" f)

    printfn
        "conv check now (%s kernels, forward, input and weight gradients against unfold + matmul in float64): %d of %d wrong"
        (if g.RoutesAll then "unfold + matmul"
         elif g.OneDnnEnabled then "oneDNN"
         else "native")
        (failed r.Checks)
        r.Checks.Count

    let channelsLast =
        r.Checks
        |> Seq.filter (fun c -> c.Kernels.EndsWith "channels-last")
        |> Seq.toArray

    if channelsLast.Length > 0 then
        printfn "  of which channels-last (wide networks' inference): %d of %d wrong" (failed channelsLast) channelsLast.Length

    if args.Contains Verbose then
        for c in r.Checks do
            if not c.Ok then
                printfn "  %s" (c.Describe())

    match r.Speed with
    | null -> ()
    | s ->
        printfn
            "speed: conv 3x3 64->64 [8, 64, 40, 40] fwd+bwd %.1f ms (%.1f GFLOP/s); matmul 512^3 %.1f GFLOP/s"
            s.ConvMilliseconds
            s.ConvGflops
            s.MatmulGflops

    if r.Ok then
        printfn "OK: convolutions compute correctly here"
        0
    else
        for p in r.Problems do
            eprintfn "problem: %s" p

        1
