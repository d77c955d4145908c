using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Platform;

/// <summary>How one convolution configuration fared in bfloat16: relative L2 errors of the forward output, the input
/// gradient and the weight gradient, computed by libtorch in bfloat16, against the same convolution in float64 on the
/// same (bfloat16-rounded) values.</summary>
/// <param name="Config">The configuration.</param>
/// <param name="Forward">‖y − y_ref‖ / ‖y_ref‖.</param>
/// <param name="InputGrad">Same for dL/dx.</param>
/// <param name="WeightGrad">Same for dL/dw.</param>
public sealed record Bf16CheckResult(ConvConfig Config, double Forward, double InputGrad, double WeightGrad)
{
    /// <summary>
    /// Relative error above which a bfloat16 result is wrong. With the inputs rounded to bfloat16 before both
    /// computations, a right kernel differs from float64 by its float32 accumulation (about 1e-6) and the rounding of
    /// its output to bfloat16's 8-bit significand: at most 2^-9 of each value, about 2^-9/√3 ≈ 1.1e-3 in relative L2
    /// for uniformly spread rounding errors. 1e-2 leaves a factor of 9 above that; the wrong kernels the float32
    /// guard has met were off by 0.1 to 0.5.
    /// </summary>
    public const double Tolerance = 1e-2;

    /// <summary>The largest of the three errors.</summary>
    public double Worst => Math.Max(Forward, Math.Max(InputGrad, WeightGrad));

    /// <summary>Whether all three results are right.</summary>
    public bool Ok => Forward <= Tolerance && InputGrad <= Tolerance && WeightGrad <= Tolerance;

    /// <summary>"3x3/s1 20->16: forward 1.1e-3, input gradient 1.2e-3, weight gradient 1.0e-3".</summary>
    public override string ToString() =>
        $"{Config}: forward {Forward:0.0e0}, input gradient {InputGrad:0.0e0}, weight gradient {WeightGrad:0.0e0}{(Ok ? "" : " (wrong)")}";
}

/// <summary>
/// Whether bfloat16 is worth turning on here (<c>--bf16 auto</c>, <c>yolospp doctor</c>): native bfloat16 in the
/// CPU (oneDNN's avx512_core_bf16 or AMX; without it libtorch emulates bfloat16 and is several times slower than
/// float32) or the GPU (compute capability 8.0 or newer, as <c>torch.cuda.is_bf16_supported</c>), and the bfloat16
/// convolution kernels right on the network's configurations (<see cref="Check"/>).
/// </summary>
public static class Bf16Support
{
    /// <summary>Whether the CPU computes bfloat16 natively (oneDNN dispatches to avx512_core_bf16 or AMX).</summary>
    public static bool NativeCpu => CpuInfo.OneDnnIsa.Split(' ')[0] is "avx512_core_bf16" or "avx512_core_amx";

    /// <summary>Checks libtorch's bfloat16 convolution of each configuration (probe batch 2, a 2·stride + kernel-sized
    /// odd map, seeded values; input and weight channels-last when <paramref name="channelsLast"/>) against float64,
    /// forward and both gradients. What libtorch computes, before the guard's routing (<see cref="ConvGuard.PrepareBf16"/>);
    /// on <paramref name="device"/> (default the CPU; the float64 reference is computed on the CPU, by unfold and matmul).</summary>
    public static IReadOnlyList<Bf16CheckResult> Check(IEnumerable<ConvConfig> configs, bool channelsLast = false, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(configs);
        Backend.Initialize();
        var results = new List<Bf16CheckResult>();
        foreach (var c in configs.Distinct())
        {
            using var scope = NewDisposeScope();
            using var g = new Generator(17);
            // an odd, non-square map: no kernel's vector width divides it
            long h = 2 * c.Stride + c.Kernel + 5, w = 2 * c.Stride + c.Kernel + 8;
            var x = randn(new long[] { 2, c.InChannels, h, w }, generator: g).to(ScalarType.BFloat16);
            var wt = randn(new long[] { c.OutChannels, c.InChannels, c.Kernel, c.Kernel }, generator: g).mul(0.1).to(ScalarType.BFloat16);
            var xb = (channelsLast ? Layout.ChannelsLast(x) : x).to(device ?? CPU).detach().requires_grad_(true);
            var wb = (channelsLast ? Layout.ChannelsLast(wt) : wt).to(device ?? CPU).detach().requires_grad_(true);
            var y = ConvGuard.Kernel(xb, wb, null, c);
            var r = randn(y.shape, generator: g).to(ScalarType.BFloat16);
            y.to(ScalarType.Float32).mul(r.to(ScalarType.Float32).to(y.device)).sum().backward();
            var x64 = x.to(ScalarType.Float64).requires_grad_(true);
            var w64 = wt.to(ScalarType.Float64).requires_grad_(true);
            var y64 = UnfoldConv.Conv2d(x64, w64, null, c.Stride, c.Padding);
            y64.mul(r.to(ScalarType.Float64)).sum().backward();
            static double Rel(Tensor a, Tensor b)
            {
                var d = a.to(ScalarType.Float64).cpu().sub(b).norm().item<double>();
                var n = b.norm().item<double>();
                var e = n > 0 ? d / n : d;
                return double.IsFinite(e) ? e : double.PositiveInfinity;
            }
            results.Add(new Bf16CheckResult(c, Rel(y, y64), Rel(xb.grad!, x64.grad!), Rel(wb.grad!, w64.grad!)));
        }
        return results;
    }

    /// <summary>The decision of <c>--bf16 auto</c> for these configurations on the CPU: on when the CPU has native
    /// bfloat16 and every check is right; the reason in words either way.</summary>
    public static (bool On, string Why) Decide(IEnumerable<ConvConfig> configs)
    {
        if (!NativeCpu)
            return (false, $"bfloat16 off: oneDNN uses {CpuInfo.OneDnnIsa} here, without native bfloat16 (emulated, slower than float32)");
        return Verdict($"native ({CpuInfo.OneDnnIsa})", ConvGuard.CheckBf16(configs, channelsLast: false));
    }

    /// <summary>The decision of <c>--bf16 auto</c> for a run on <paramref name="device"/>: on the CPU as
    /// <see cref="Decide(IEnumerable{ConvConfig})"/>; on a CUDA GPU on when its compute capability is 8.0 or newer
    /// (<see cref="CudaInfo.ComputeCapability(int)"/>) and every check, run on that GPU, is right.</summary>
    public static (bool On, string Why) Decide(IEnumerable<ConvConfig> configs, Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.type switch
        {
            DeviceType.CPU => Decide(configs),
            DeviceType.CUDA => DecideGpu(CudaInfo.ComputeCapability(Math.Max(device.index, 0)), () => Check(configs, false, device)),
            _ => (false, $"bfloat16 off: --bf16 auto decides on the CPU and on CUDA GPUs, not on {device} (--bf16 turns it on)"),
        };
    }

    /// <summary>The GPU's decision from its compute capability (null: unreadable) and the checks run on it, which are
    /// run only when the capability allows.</summary>
    internal static (bool On, string Why) DecideGpu((int Major, int Minor)? capability, Func<IReadOnlyList<Bf16CheckResult>> check)
    {
        if (capability is not { } cc)
            return (false, "bfloat16 off: the GPU's compute capability could not be read (no NVIDIA driver library, or it refused)");
        if (cc.Major < 8)
            return (false, $"bfloat16 off: the GPU has compute capability {cc.Major}.{cc.Minor}, without native bfloat16 (it needs 8.0, Ampere, or newer)");
        return Verdict($"native (GPU compute capability {cc.Major}.{cc.Minor})", check());
    }

    static (bool On, string Why) Verdict(string native, IReadOnlyList<Bf16CheckResult> checks)
    {
        var wrong = checks.Where(c => !c.Ok).ToArray();
        return wrong.Length == 0
            ? (true, $"bfloat16 on: {native}, the bfloat16 convolutions right on {checks.Count} configurations (worst relative error {(checks.Count == 0 ? 0 : checks.Max(c => c.Worst)):0.0e0})")
            : (false, $"bfloat16 off: {wrong.Length} of {checks.Count} bfloat16 convolution checks are wrong here; first: {wrong[0]}");
    }

    /// <summary>What a forced <c>--bf16</c> should be told on <paramref name="device"/>: a warning where bfloat16 is
    /// emulated (a CPU without native bfloat16: several times slower than float32; a GPU older than compute
    /// capability 8.0), else null.</summary>
    public static string? ForcedWarning(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.type == DeviceType.CPU && !NativeCpu)
            return $"warning: --bf16 on a CPU without native bfloat16 (oneDNN uses {CpuInfo.OneDnnIsa}): libtorch emulates it, several times slower than float32 (--bf16 auto would keep float32 here)";
        if (device.type == DeviceType.CUDA && CudaInfo.ComputeCapability(Math.Max(device.index, 0)) is { Major: < 8 } cc)
            return $"warning: --bf16 on a GPU of compute capability {cc.Major}.{cc.Minor}, without native bfloat16 (it needs 8.0 or newer; --amp true gives float16 with loss scaling)";
        return null;
    }
}
