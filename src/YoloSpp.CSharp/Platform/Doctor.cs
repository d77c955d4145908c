using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Platform;

/// <summary>A short timing of this machine's kernels.</summary>
/// <param name="ConvMilliseconds">Median of a 3×3 convolution 64→64 on [8, 64, 40, 40], forward and backward.</param>
/// <param name="ConvGflops">Its GFLOP/s (forward, input gradient and weight gradient: 3 × 2·MACs).</param>
/// <param name="MatmulGflops">GFLOP/s of a float32 512×512 by 512×512 matmul.</param>
public sealed record SpeedProbe(double ConvMilliseconds, double ConvGflops, double MatmulGflops);

/// <summary>The convolutions a machine is checked on: every distinct configuration of some networks, and those that
/// run channels-last.</summary>
/// <param name="Configs">The configurations (in their default layout).</param>
/// <param name="ChannelsLast">The ones computed channels-last as well (the wide networks' inference).</param>
public sealed record ConvWorkload(IReadOnlyList<ConvConfig> Configs, IReadOnlyList<ConvConfig> ChannelsLast);

/// <summary>What <see cref="Doctor.Run"/> found.</summary>
/// <param name="YoloSppVersion">This library's version.</param>
/// <param name="TorchSharpVersion">TorchSharp's assembly version.</param>
/// <param name="LibTorchVersion">The libtorch native package version.</param>
/// <param name="CpuModel">The processor.</param>
/// <param name="OneDnnIsa">The instruction set oneDNN dispatches to.</param>
/// <param name="Avx512Flags">The AVX-512 flags of the CPU ("none" without AVX-512).</param>
/// <param name="TorchThreads">libtorch's intra-op threads.</param>
/// <param name="Processors">Logical processors .NET sees.</param>
/// <param name="HostMemory">What the host memory policy did (<see cref="YoloSpp.Platform.HostMemory"/>).</param>
/// <param name="CudaDevices">CUDA devices usable (0 with the CPU backend).</param>
/// <param name="Guard">The convolution guard's decision for the built-in networks.</param>
/// <param name="Checks">The convolution check made now, on the kernels in use, without the cache.</param>
/// <param name="Speed">The speed probe, or null when skipped.</param>
/// <param name="Problems">Why the environment does not compute correctly; empty when it does.</param>
public sealed record DoctorReport(string YoloSppVersion, string TorchSharpVersion, string LibTorchVersion, string CpuModel, string OneDnnIsa,
    string Avx512Flags, int TorchThreads, int Processors, string HostMemory, int CudaDevices, ConvGuardReport Guard, IReadOnlyList<ConvCheckResult> Checks,
    SpeedProbe? Speed, IReadOnlyList<string> Problems)
{
    /// <summary>Whether every check came out right (or was routed around).</summary>
    public bool Ok => Problems.Count == 0;
}

/// <summary>The environment check a user runs first (<c>yolospp doctor</c>): versions, CPU, threads, CUDA, the
/// convolution guard's decision and a fresh check of the kernels in use, and a short speed probe.</summary>
public static class Doctor
{
    /// <summary>Runs every check (the convolution check takes a few seconds, the speed probe about one) on the
    /// convolutions of <paramref name="workload"/> (the library's networks: <c>DarkNet.BuiltInWorkload()</c>).</summary>
    public static DoctorReport Run(ConvWorkload workload, bool speedProbe = true)
    {
        ArgumentNullException.ThrowIfNull(workload);
        Backend.Initialize();
        // the decision training would take, for these networks
        var configs = workload.Configs.ToArray();
        var channelsLast = workload.ChannelsLast.ToArray();
        ConvGuard.Prepare(configs);
        var guard = ConvGuard.Report;
        var checks = ConvGuard.CheckNow(configs, channelsLast);
        var problems = new List<string>();
        var wrong = checks.Where(c => !c.Ok && !guard.RoutesAll && !guard.Routed.Contains(c.Config)).ToArray();
        if (wrong.Length > 0)
            problems.Add($"{wrong.Length} of {checks.Count} convolution checks are wrong on the kernels in use ({guard.Decision}); worst: "
                + wrong.OrderByDescending(c => Math.Max(c.Forward, Math.Max(c.InputGrad, c.WeightGrad))).First().Describe());
        int cuda = 0;
        try { cuda = torch.cuda.is_available() ? (int)torch.cuda.device_count() : 0; }
        catch (Exception e) when (e is InvalidOperationException or DllNotFoundException) { }
        var speed = speedProbe ? Probe() : null;
        return new DoctorReport(
            typeof(Doctor).Assembly.GetName().Version?.ToString(3) ?? "?",
            typeof(torch).Assembly.GetName().Version?.ToString() ?? "?",
            torch.__version__,
            CpuInfo.Model, CpuInfo.OneDnnIsa, CpuInfo.Avx512Flags, get_num_threads(), Environment.ProcessorCount, YoloSpp.Platform.HostMemory.Description, cuda,
            guard, checks, speed, problems);
    }

    static SpeedProbe Probe()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(0);
        var x = randn(new long[] { 8, 64, 40, 40 }, generator: g).requires_grad_(true);
        var w = randn(new long[] { 64, 64, 3, 3 }, generator: g).requires_grad_(true);
        var c = new ConvConfig(64, 64, 3, 1, 1);
        double Conv()
        {
            using var s = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            var y = ConvGuard.Conv2d(x, w, null, c);
            y.sum().backward();
            return sw.Elapsed.TotalMilliseconds;
        }
        var a = randn(new long[] { 512, 512 }, generator: g);
        var b = randn(new long[] { 512, 512 }, generator: g);
        double Matmul()
        {
            using var s = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            a.matmul(b).sum().item<float>();
            return sw.Elapsed.TotalMilliseconds;
        }
        for (int i = 0; i < 2; i++) { Conv(); Matmul(); }
        var convMs = Median(Enumerable.Range(0, 7).Select(_ => Conv()));
        var mmMs = Median(Enumerable.Range(0, 7).Select(_ => Matmul()));
        double convFlops = 3 * 2.0 * 8 * 64 * 64 * 9 * 40 * 40;
        return new SpeedProbe(convMs, convFlops / (convMs * 1e6), 2.0 * 512 * 512 * 512 / (mmMs * 1e6));
    }

    static double Median(IEnumerable<double> xs)
    {
        var a = xs.OrderBy(v => v).ToArray();
        return a[a.Length / 2];
    }
}
