/// `yolospp doctor`: the environment check to run first. Versions, CPU and instruction set, ONNX Runtime's int8
/// convolutions, threads, CUDA, the convolution guard's decision and a fresh convolution check, a speed probe; exit 0
/// only when everything computes correctly.
module YoloSpp.Cli.DoctorCommand

open System
open Argu
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training

open YoloSpp.Platform

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
    let r = Doctor.Run(DarkNet.BuiltInWorkload(), not (args.Contains No_Speed))
    let g = r.Guard
    printfn "YoloSpp %s, TorchSharp %s, libtorch %s" r.YoloSppVersion r.TorchSharpVersion r.LibTorchVersion
    printfn "CPU: %s (%d logical processors)" r.CpuModel r.Processors
    printfn "instruction set: oneDNN %s; AVX-512: %s" r.OneDnnIsa r.Avx512Flags
    // bfloat16: native or emulated, and its convolutions checked against float64 where native (train --bf16 auto)
    let struct (_, bf16Why) = Bf16Support.Decide(DarkNet.BuiltInWorkload().Configs)
    printfn "%s (train --bf16 auto)" bf16Why

    // ONNX Runtime's int8 convs (export --int8), checked as the guard checks libtorch's
    let int8Full = YoloSpp.Platform.OnnxInt8Check.Run false
    let int8Reduced = YoloSpp.Platform.OnnxInt8Check.Run true

    let int8Verdict (rs: Collections.Generic.IReadOnlyList<YoloSpp.Platform.Int8ConvResult>) =
        match rs |> Seq.filter (fun r -> not r.Ok) |> Seq.toList with
        | [] ->
            match rs |> Seq.sumBy (fun r -> r.Mismatches) with
            | 0 -> "right (exact)"
            | n -> sprintf "right (%d of %d outputs one step off)" n (rs |> Seq.sumBy (fun r -> r.Elements))
        | bad ->
            let worst = bad |> List.maxBy (fun r -> r.WorstSteps)

            sprintf
                "%d of %d shapes wrong (worst: %s, %d outputs off, by up to %d steps)"
                bad.Length
                rs.Count
                (string worst.Shape)
                worst.Mismatches
                worst.WorstSteps

    printfn
        "int8 check (export --int8: ONNX Runtime's QLinearConv against exact integer sums, %d shapes; VNNI %s): full-range weights %s; 7-bit weights (--reduce-range) %s"
        int8Full.Count
        (if CpuInfo.HasVnni then "yes" else "no")
        (int8Verdict int8Full)
        (int8Verdict int8Reduced)

    let int8FullOk = int8Full |> Seq.forall (fun r -> r.Ok)
    let int8ReducedOk = int8Reduced |> Seq.forall (fun r -> r.Ok)

    if not int8FullOk && int8ReducedOk then
        printfn "  here: export --int8 with --reduce-range"

    printfn "threads: %d libtorch intra-op" r.TorchThreads
    printfn "host memory: %s" r.HostMemory

    printfn
        "CUDA: %s"
        (if r.CudaDevices > 0 then
             sprintf "%d device(s)" r.CudaDevices
         else
             "not available (CPU backend or no GPU)")

    // each GPU's bfloat16: its compute capability, and its bfloat16 convolutions checked where it is native
    for i in 0 .. r.CudaDevices - 1 do
        let struct (_, why) =
            Bf16Support.Decide(DarkNet.BuiltInWorkload().Configs, TorchSharp.torch.device ($"cuda:{i}"))

        printfn "  cuda:%d %s (train --device cuda:%d --bf16 auto)" i why i

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

    if r.Ok && int8ReducedOk then
        printfn "OK: convolutions compute correctly here"
        0
    else
        for p in r.Problems do
            eprintfn "problem: %s" p

        if not int8ReducedOk then
            eprintfn "problem: ONNX Runtime's int8 convolutions are wrong here even with 7-bit weights: do not use export --int8"

        1
