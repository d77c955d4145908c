/// bfloat16 as PyTorch's autocast runs it (--bf16): which ops see bfloat16, the channels-last layout of bfloat16
/// training, the check of the bfloat16 convolution kernels against float64, the decision of --bf16 auto, and
/// SyncBatchNorm on bfloat16 activations.
module YoloSpp.Tests.Training.Bf16Tests

open System
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Model
open YoloSpp.Platform
open YoloSpp.Training
open YoloSpp.Tests
open YoloSpp.Tests.FakeRanks

let private withDir = YoloSpp.Tests.Robustness.WhyFixtures.withDir

/// The log of a one-epoch run of the tiny network on 8 shapes, with bfloat16 forced (`bf16`) or left to `--bf16 auto`.
let private tinyRunLog (bf16: bool) =
    let messages = ResizeArray<string>()

    withDir (fun dir ->
        let data = TinyRuns.tinyShapes dir 8 4 3

        let o =
            Tiny.Options(TinyRuns.tinyCfg dir, data, Path.Combine(dir, "run"), epochs = 1, noTest = true)

        Trainer(
            TrainOptions(
                Cfg = o.Cfg,
                Data = o.Data,
                Hyp = o.Hyp,
                Epochs = 1,
                BatchSize = 4,
                ImageSize = 64,
                MultiScale = false,
                Mosaic = false,
                Warmup = false,
                Device = "cpu",
                OutputDir = o.OutputDir,
                Accumulate = Nullable 1,
                NoTest = true,
                Bf16 = bf16,
                Bf16Auto = not bf16
            ),
            Action<string>(messages.Add)
        )
            .Run()
        |> ignore)

    messages

// the CUDA driver API's entry points, as CudaInfo calls them: cuInit(flags), cuDeviceGet(&dev, ordinal),
// cuDeviceGetAttribute(&value, attribute, dev)
type private CuInit = delegate of uint32 -> int
type private CuDeviceGet = delegate of nativeint * int -> int
type private CuDeviceGetAttribute = delegate of nativeint * int * int -> int

/// A driver with two GPUs, cuda:0 of compute capability 8.6 and cuda:1 of 7.5, whose cuInit returns `init`.
let private fakeDriverCapability (init: int) (ordinal: int) =
    let cuInit = CuInit(fun _ -> init)

    let cuDeviceGet =
        CuDeviceGet(fun dev ordinal ->
            if ordinal < 2 then
                Runtime.InteropServices.Marshal.WriteInt32(dev, 10 + ordinal)
                0
            else
                101) // CUDA_ERROR_INVALID_DEVICE

    let cuDeviceGetAttribute =
        CuDeviceGetAttribute(fun value attribute dev ->
            match attribute, dev with
            | 75, 10 ->
                Runtime.InteropServices.Marshal.WriteInt32(value, 8)
                0
            | 76, 10 ->
                Runtime.InteropServices.Marshal.WriteInt32(value, 6)
                0
            | 75, 11 ->
                Runtime.InteropServices.Marshal.WriteInt32(value, 7)
                0
            | 76, 11 ->
                Runtime.InteropServices.Marshal.WriteInt32(value, 5)
                0
            | _ -> 1) // CUDA_ERROR_INVALID_VALUE

    let ptr (d: Delegate) =
        Runtime.InteropServices.Marshal.GetFunctionPointerForDelegate d

    let result =
        CudaInfo.ComputeCapability(ptr cuInit, ptr cuDeviceGet, ptr cuDeviceGetAttribute, ordinal)

    GC.KeepAlive cuInit
    GC.KeepAlive cuDeviceGet
    GC.KeepAlive cuDeviceGetAttribute
    result

let tests =
    testList
        "bf16"
        [
            test "bf16 as autocast: a conv's BatchNorm and activation run on bfloat16, the heads get float32" {
                use _ = torch.NewDisposeScope()
                use m = DarkNet.FromCfgFile(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"))
                m.train () |> ignore
                let seen = ResizeArray<string * torch.ScalarType * torch.ScalarType>()

                for i, md in Seq.indexed m.Modules do
                    match md with
                    | :? TorchSharp.Modules.Sequential as block ->
                        for struct (name, child) in block.named_children () do
                            match child with
                            | :? torch.nn.Module<torch.Tensor, torch.Tensor> as c when name <> "Conv2d" ->
                                c.register_forward_hook (fun _ input output ->
                                    seen.Add(sprintf "%d.%s" i name, input.dtype, output.dtype)
                                    output)
                                |> ignore
                            | _ -> ()
                    | _ -> ()

                m.ComputeType <- Nullable torch.ScalarType.BFloat16
                let raw = m.forward(torch.rand (2L, 3L, 64L, 64L)).Raw
                Expect.isNonEmpty seen "BatchNorm and activations ran"

                for name, input, output in seen do
                    Expect.equal (input, output) (torch.ScalarType.BFloat16, torch.ScalarType.BFloat16) (name + " in and out bfloat16")

                Expect.isTrue (raw |> Array.forall (fun r -> r.dtype = torch.ScalarType.Float32)) "the heads float32"
            }
            test "bf16 training in channels-last computes what contiguous bf16 training does: loss and gradients close" {
                use _ = torch.NewDisposeScope()
                torch.manual_seed 4L |> ignore
                use m = DarkNet.FromCfgFile(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"))
                m.train () |> ignore
                m.ComputeType <- Nullable torch.ScalarType.BFloat16
                // a non-square input whose width is no multiple of 16
                let x = torch.rand (2L, 3L, 64L, 96L)

                let step () =
                    m.zero_grad ()
                    let raw = m.forward(x).Raw

                    let loss =
                        raw
                        |> Array.map (fun t -> t.square().mean ())
                        |> Array.reduce (fun a b -> a.add (b))

                    loss.backward ()
                    let grads: torch.Tensor[] = [| for p in m.parameters () -> p.grad.flatten () |]
                    loss.item<float32> (), torch.cat(grads, 0L).clone ()

                let l0, g0 = step ()
                m.ChannelsLast <- true
                let l1, g1 = step ()
                Expect.isLessThan (abs (l1 - l0) / l0) 1e-2f "the loss within 1 %"

                let cos = torch.nn.functional.cosine_similarity(g1, g0, 0L).item<float32> ()

                Expect.isGreaterThan cos 0.999f "the gradients point the same way"
            }
            test "--bf16 auto: on with native bfloat16 and right kernels, off otherwise, and the run says which" {
                let configs =
                    [
                        ConvConfig(3, 8, 3, 1, 1)
                        ConvConfig(24, 16, 3, 1, 1)
                        ConvConfig(16, 32, 3, 2, 1)
                        ConvConfig(32, 16, 1, 1, 0)
                    ]

                let checks = Bf16Support.Check configs
                Expect.equal checks.Count 4 "one check a configuration"

                for c in checks do
                    Expect.isTrue c.Ok (string c)
                    Expect.isGreaterThan c.Forward 0.0 "bfloat16's rounding shows against float64"

                let struct (on, why) = Bf16Support.Decide configs

                if Bf16Support.NativeCpu then
                    Expect.isTrue on why
                    Expect.stringContains why "bfloat16 on: native" "says why"
                else
                    Expect.isFalse on why
                    Expect.stringContains why "without native bfloat16" "says why"

                let messages = tinyRunLog false
                Expect.exists messages (fun m -> m.StartsWith "bfloat16 on" || m.StartsWith "bfloat16 off") "the decision in the log"

                Expect.equal
                    (messages
                     |> Seq.exists (fun m -> m.Contains "bfloat16 convolutions, float32 master weights"))
                    on
                    "trains in bfloat16 exactly when it said on"
            }
            test "--bf16 auto on a GPU: the driver's compute capability, 8.0 or newer and the checks right" {
                let cc (major: int, minor: int) =
                    Nullable<struct (int * int)>(struct (major, minor))

                Expect.equal (fakeDriverCapability 0 0) (cc (8, 6)) "cuda:0 read through the driver's entry points"
                Expect.equal (fakeDriverCapability 0 1) (cc (7, 5)) "cuda:1"
                Expect.isFalse (fakeDriverCapability 0 2).HasValue "no cuda:2"
                Expect.isFalse (fakeDriverCapability 100 0).HasValue "cuInit failing (CUDA_ERROR_NO_DEVICE)"

                let configs = [ ConvConfig(3, 8, 3, 1, 1); ConvConfig(8, 16, 3, 2, 1) ]
                let checks = Bf16Support.Check configs
                let mutable checkedOnGpu = 0

                let decide capability (results: Collections.Generic.IReadOnlyList<Bf16CheckResult>) =
                    let struct (on, why) =
                        Bf16Support.DecideGpu(
                            capability,
                            fun () ->
                                checkedOnGpu <- checkedOnGpu + 1
                                results
                        )

                    on, why

                let on, why = decide (cc (7, 5)) checks
                Expect.isFalse on why
                Expect.stringContains why "compute capability 7.5" "names the GPU's capability"
                Expect.equal checkedOnGpu 0 "no check on a GPU without native bfloat16"
                let on, why = decide (Nullable()) checks
                Expect.isFalse on why
                Expect.stringContains why "could not be read" "says why"
                let on, why = decide (cc (8, 0)) checks
                Expect.isTrue on why
                Expect.stringContains why "native (GPU compute capability 8.0)" "says why"
                Expect.equal checkedOnGpu 1 "checked the kernels"

                let wrong =
                    [ checks[0]; Bf16CheckResult(checks[1].Config, 0.3, 0.2, 0.1) ] :> Collections.Generic.IReadOnlyList<_>

                let on, why = decide (cc (9, 0)) wrong
                Expect.isFalse on "a wrong bfloat16 kernel keeps float32"
                Expect.stringContains why "1 of 2 bfloat16 convolution checks are wrong" why
            }
            test "--bf16 forced where bfloat16 is emulated: the run warns, auto keeps float32" {
                let cap = Environment.GetEnvironmentVariable "ONEDNN_MAX_CPU_ISA"

                try
                    // what the library sees of oneDNN's ISA (.NET's environment, not libtorch's: its kernels stay native)
                    Environment.SetEnvironmentVariable("ONEDNN_MAX_CPU_ISA", "AVX2")
                    Expect.isFalse Bf16Support.NativeCpu "capped to AVX2: no native bfloat16"
                    let warning = Bf16Support.ForcedWarning torch.CPU
                    Expect.isNotNull warning "a warning"
                    Expect.stringContains warning "without native bfloat16" warning
                    let struct (on, why) = Bf16Support.Decide([ ConvConfig(3, 8, 3, 1, 1) ], torch.CPU)
                    Expect.isFalse on why

                    if CpuInfo.Flags |> Seq.contains "avx512_bf16" then
                        Environment.SetEnvironmentVariable("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
                        Expect.isTrue Bf16Support.NativeCpu "capped at its own level the CPU stays native"
                        Expect.isNull (Bf16Support.ForcedWarning torch.CPU) "and --bf16 is not warned"
                        Environment.SetEnvironmentVariable("ONEDNN_MAX_CPU_ISA", "AVX2")

                    let messages = tinyRunLog true
                    Expect.exists messages (fun m -> m = warning) "the run warns"
                    Expect.exists messages (fun m -> m.Contains "bfloat16 convolutions, float32 master weights") "and trains in bfloat16, as told"
                finally
                    Environment.SetEnvironmentVariable("ONEDNN_MAX_CPU_ISA", cap)
            }
            test "--bf16 auto under mpirun: bfloat16 only where every rank decided on, and the log names a rank that did not" {
                let says (on: bool) (why: string) =
                    Text.Encoding.UTF8.GetBytes((if on then "1" else "0") + why)

                let agree other on why =
                    let struct (o, w) = TrainSteps.AgreeOnBf16(new TwoRanksOtherSays(other), on, why)
                    o, w

                let on, why = agree (says true "bfloat16 on: native") true "bfloat16 on: native"
                Expect.isTrue on why
                Expect.stringContains why "every one of 2 ranks" "says all agreed"

                let on, why =
                    agree (says false "bfloat16 off: oneDNN uses avx2 here") true "bfloat16 on: native"

                Expect.isFalse on "one rank without native bfloat16 turns it off on all"
                Expect.stringContains why "rank 1 of 2" "names the rank"
                Expect.stringContains why "oneDNN uses avx2 here" "and its reason"

                let on, why =
                    agree (says true "bfloat16 on: native") false "bfloat16 off: 1 of 38 checks are wrong here"

                Expect.isFalse on why
                Expect.stringContains why "rank 0 of 2" "names this rank"
            }
            test "yolospp train --bf16 [on|off|auto]: alone it is on, auto says why, a wrong value is refused" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 8 4 3
                    let cfg = TinyRuns.tinyCfg dir

                    let train name extra =
                        BuildTests.yolospp (
                            [
                                "train"
                                "--cfg"
                                cfg
                                "--data"
                                data
                                "--epochs"
                                "1"
                                "--batch-size"
                                "4"
                                "--img-size"
                                "64"
                                "--device"
                                "cpu"
                                "--notest"
                                "--output"
                                Path.Combine(dir, name)
                            ]
                            @ extra
                        )

                    let inBf16 (out: string) =
                        out.Contains "mixed precision: bfloat16 convolutions"

                    for name, extra, expected in
                        [
                            "alone", [ "--bf16" ], true
                            "on", [ "--bf16"; "on" ], true
                            "off", [ "--bf16"; "off" ], false
                        ] do
                        let code, out, err = train name extra
                        Expect.equal code 0 (sprintf "%s: %s %s" name out err)
                        Expect.equal (inBf16 out) expected (sprintf "--bf16 %s trains in bfloat16: %b\n%s" name expected out)

                        Expect.equal
                            (out.Contains "warning: --bf16 on a CPU without native bfloat16")
                            (expected && not Bf16Support.NativeCpu)
                            ("warned exactly where bfloat16 is emulated\n" + out)

                    let code, out, err = train "auto" [ "--bf16"; "auto" ]
                    Expect.equal code 0 (sprintf "auto: %s %s" out err)
                    let said = out.Contains "bfloat16 on: "
                    Expect.isTrue (said || out.Contains "bfloat16 off: ") ("the decision in the log\n" + out)
                    Expect.equal (inBf16 out) said "trains in bfloat16 exactly when it said on"
                    Expect.equal said Bf16Support.NativeCpu "on exactly with native bfloat16 here (its kernels check right)"

                    let code, out, err = train "wrong" [ "--bf16"; "sometimes" ]
                    Expect.equal code 2 (sprintf "a wrong value: %s %s" out err)
                    Expect.stringContains err "sometimes" "names the value"
                    Expect.stringContains err "--bf16 [<auto|on|off>]" "shows the accepted values"
                    Expect.isFalse (err.Contains "   at ") "no stack trace")
            }
            test "SyncBatchNorm in bfloat16 (--bf16 under mpirun): bfloat16 out, the statistics and gradients of float64 to bfloat16's rounding" {
                Backend.Initialize()
                use _ = torch.NewDisposeScope()
                use g = new torch.Generator(1UL)
                // one rank's bfloat16 activations (odd, non-square), off-centre as a convolution's output is
                let x =
                    (torch.randn ([| 2L; 16L; 10L; 13L |], generator = g) * 3.0 + 1.5).to_type torch.bfloat16

                let w = torch.rand ([| 16L |], generator = g) + 0.5
                let b = torch.randn ([| 16L |], generator = g)
                let dy = torch.randn ([| 2L; 16L; 10L; 13L |], generator = g)
                let xs = x.detach().requires_grad_ true
                let ws = w.detach().requires_grad_ true
                let bs = b.detach().requires_grad_ true
                let runningMean, runningVar = torch.zeros 16L, torch.ones 16L

                let y =
                    YoloSpp.Distributed.SyncBatchNormForward.Forward(xs, ws, bs, runningMean, runningVar, 0.1, 1e-5, new TwoIdenticalRanks())

                Expect.equal y.dtype torch.bfloat16 "bfloat16 out, as BatchNorm on a bfloat16 input"
                (y.to_type torch.float32 * dy).sum().backward ()
                // the same over both ranks' batches (two copies) in float64, the gradient of one copy's share
                let f64 (t: torch.Tensor) =
                    t.detach().to_type(torch.float64).requires_grad_ true

                let x64, w64, b64 = f64 x, f64 w, f64 b

                let y64 =
                    torch.nn.functional.batch_norm (
                        torch.cat ([| x64; x64 |], 0L),
                        torch.zeros (16L, dtype = torch.float64),
                        torch.ones (16L, dtype = torch.float64),
                        w64,
                        b64,
                        true,
                        0.1,
                        1e-5
                    )

                // the output gradient reaches SyncBatchNorm in bfloat16 (through the cast of its bfloat16 output)
                (y64.narrow (0L, 0L, 2L) * dy.to_type(torch.bfloat16).to_type torch.float64).sum().backward ()

                let rel (a: torch.Tensor) (e: torch.Tensor) =
                    (a.to_type torch.float64 - e).norm().ToDouble() / e.norm().ToDouble()

                // bfloat16 keeps 8 significant bits: a value rounded to it is off by at most 2^-9 (2e-3), about 1.1e-3
                // in relative L2; the float32 arithmetic before the rounding adds nothing visible
                let rounding =
                    rel (y64.detach().narrow(0L, 0L, 2L).to_type torch.bfloat16) (y64.detach().narrow (0L, 0L, 2L))

                Expect.isLessThan (rel y (y64.detach().narrow (0L, 0L, 2L))) (1.01 * rounding) "the output is float64's rounded to bfloat16"
                Expect.isLessThan (rel xs.grad x64.grad) 4e-3 "input gradient (bfloat16, as the input)"
                Expect.isLessThan (rel ws.grad w64.grad) 1e-5 "weight gradient (float32)"
                Expect.isLessThan (rel bs.grad b64.grad) 1e-5 "bias gradient (float32)"
                let m64 = torch.cat([| x64; x64 |], 0L).detach().mean ([| 0L; 2L; 3L |])
                Expect.isLessThan (rel runningMean (m64 * 0.1)) 1e-6 "running mean from float32 statistics of the bfloat16 values"
            }
        ]
