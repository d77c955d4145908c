using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using YoloSpp.IO;
using Summary = YoloSpp.Model.Summary;
using static TorchSharp.torch;

namespace YoloSpp.Platform;

/// <summary>How convolutions are computed (environment variable <c>YOLOSPP_CONV</c>).</summary>
public enum ConvMode
{
    /// <summary>Check libtorch's kernels on this CPU; if any result is wrong, turn oneDNN off (the default).</summary>
    Auto,
    /// <summary>libtorch's default kernels (oneDNN), unchecked.</summary>
    OneDnn,
    /// <summary>libtorch's native kernels: oneDNN off for the whole process, unchecked.</summary>
    Native,
    /// <summary>Check; keep oneDNN and send only the configurations that came out wrong through unfold + matmul.</summary>
    Route,
}

/// <summary>What the guard checked and chose.</summary>
/// <param name="Mode">The mode in force.</param>
/// <param name="Decision">What convolutions run on, in words.</param>
/// <param name="Checks">Every check of this process (libtorch's default oneDNN kernels first, then the native ones
/// where the guard switched); empty when the mode checks nothing or no network was built.</param>
/// <param name="Routed">Configurations sent through unfold + matmul.</param>
/// <param name="RoutesAll">Whether every convolution goes through unfold + matmul.</param>
/// <param name="OneDnnEnabled">Whether oneDNN is on now.</param>
/// <param name="CheckTime">Time the checks took in this process (zero when they came from the cache).</param>
/// <param name="CacheFile">Where the check results of this CPU and libtorch are kept, if anywhere.</param>
public sealed record ConvGuardReport(ConvMode Mode, string Decision, IReadOnlyList<ConvCheckResult> Checks, IReadOnlyList<ConvConfig> Routed,
    bool RoutesAll, bool OneDnnEnabled, TimeSpan CheckTime, string? CacheFile)
{
    /// <summary>The checks that came out wrong.</summary>
    public IReadOnlyList<ConvCheckResult> Failures => Checks.Where(c => !c.Ok).ToArray();

    /// <summary>Whether every convolution a network computes now is right: nothing checked on the kernels in use
    /// came out wrong unless it is routed (false for the unchecked modes).</summary>
    /// <summary>The bfloat16 checks of this process (<see cref="ConvGuard.PrepareBf16"/>, <c>--bf16 auto</c>).</summary>
    public IReadOnlyList<Bf16CheckResult> Bf16Checks { get; init; } = Array.Empty<Bf16CheckResult>();

    /// <summary>Configurations whose bfloat16 kernel checked wrong and that compute in float32 instead.</summary>
    public IReadOnlyList<ConvConfig> Bf16Routed { get; init; } = Array.Empty<ConvConfig>();

    public bool Correct =>
        RoutesAll || (Checks.Count > 0 && Checks.Where(c => c.Kernels == (OneDnnEnabled ? "oneDNN" : "native"))
            .All(c => c.Ok || Routed.Contains(c.Config)));
}

/// <summary>
/// Makes convolutions right on every CPU. libtorch 2.10's oneDNN kernels were seen computing wrong
/// convolutions on some processors (an AMD EPYC with AVX-512: 70 of 288 small configurations off by 10–50 %,
/// some NaN), while its native kernels (oneDNN off) were right there. Before the first network computes, the
/// guard checks forward, input gradient and weight gradient of a grid of configurations and of the network's own
/// against unfold + matmul in float64; the results are kept per CPU and libtorch version, so a machine pays for
/// the check once. In <see cref="ConvMode.Auto"/>, any wrong result turns oneDNN off for the process (failures
/// depend on the batch and image size as well as the channels, so a configuration that passes at the probe size
/// is not proven right at others), and the native kernels are checked in turn. Every network's convolutions go
/// through <see cref="Conv2d"/>.
/// </summary>
public static class ConvGuard
{
    const int GuardVersion = 1;
    const int ProbeBatch = 2;
    static readonly object Gate = new();
    static ConvMode? _mode;
    static bool _gridChecked;
    static volatile bool _routeAll;
    static readonly HashSet<ConvConfig> RoutedSet = new();
    // a copy the hot path reads without the lock
    static volatile ConvConfig[] _routed = Array.Empty<ConvConfig>();
    static readonly Dictionary<string, ConvCheckResult> Results = new();
    static readonly List<ConvCheckResult> ThisProcess = new();
    static readonly List<(ConvConfig Config, int H, int W)> Checked = new();
    static TimeSpan _checkTime;
    static string _decision = "not decided yet (no network built)";
    static bool _cacheLoaded;

    /// <summary>Where one-line notices go (the guard acting, the first check on a machine); stderr by default.</summary>
    public static Action<string> Notice { get; set; } = m => Console.Error.WriteLine(m);

    /// <summary>Test hook: makes the oneDNN path of matching configurations wrong (each output plus a quarter of its
    /// left neighbour: forward and gradients off by tens of percent, as the faulty kernels were); cleared by
    /// <see cref="Reset"/>.</summary>
    internal static Func<ConvConfig, bool>? InjectedFault { get; private set; }

    /// <summary>Test hook: as <see cref="InjectedFault"/>, for channels-last inputs only; cleared by <see cref="Reset"/>.</summary>
    internal static Func<ConvConfig, bool>? InjectedChannelsLastFault { get; set; }

    /// <summary>Test hook: as <see cref="InjectedFault"/>, for bfloat16 inputs only, whichever kernels run (float32
    /// stays right); cleared by <see cref="Reset"/>.</summary>
    internal static Func<ConvConfig, bool>? InjectedBf16Fault { get; set; }

    // bfloat16: the checks of this process (by configuration, layout and kernels) and the configurations sent
    // through float32 because their bfloat16 kernel came out wrong
    static readonly Dictionary<(ConvConfig, bool, string), Bf16CheckResult> Bf16Results = new();
    static readonly HashSet<ConvConfig> Bf16RoutedSet = new();
    static volatile ConvConfig[] _bf16Routed = Array.Empty<ConvConfig>();

    /// <summary>The mode: <c>YOLOSPP_CONV</c> = auto (default), onednn, native or route.</summary>
    public static ConvMode Mode
    {
        get
        {
            lock (Gate) return _mode ??= ParseMode(Environment.GetEnvironmentVariable("YOLOSPP_CONV"));
        }
    }

    /// <summary>The probe grid: kernels 1 and 3, strides 1 and 2, 12 input and 6 output widths (288 configurations,
    /// the grid on which wrong kernels were found), each on a [2, C, 40, 40] input.</summary>
    public static IReadOnlyList<ConvConfig> ProbeGrid { get; } =
        (from k in new[] { 1, 3 }
         from s in new[] { 1, 2 }
         from cin in new[] { 3, 4, 8, 12, 16, 20, 24, 32, 40, 48, 64, 128 }
         from cout in new[] { 4, 8, 16, 24, 40, 64 }
         select new ConvConfig(cin, cout, k, s, k / 2)).ToArray();

    /// <summary>What the guard checked and chose so far.</summary>
    public static ConvGuardReport Report
    {
        get
        {
            lock (Gate)
                return new ConvGuardReport(Mode, _decision, ThisProcess.ToArray(), RoutedSet.ToArray(), _routeAll, OneDnn.Enabled,
                    _checkTime, CacheFile)
                {
                    Bf16Checks = Bf16Results.Values.ToArray(),
                    Bf16Routed = Bf16RoutedSet.ToArray(),
                };
        }
    }

    /// <summary>
    /// Makes sure the convolutions of a network about to be built will be right: in auto and route modes, checks
    /// the probe grid (once per process, or from the cache) and the configurations not checked yet, then decides.
    /// </summary>
    public static void Prepare(IEnumerable<ConvConfig> configs)
    {
        lock (Gate)
        {
            var mode = Mode;
            if (mode == ConvMode.OneDnn) { _decision = "oneDNN (YOLOSPP_CONV=onednn, unchecked)"; return; }
            if (mode == ConvMode.Native)
            {
                if (_routeAll) return;
                if (OneDnn.Enabled && !OneDnn.TrySetEnabled(false))
                {
                    RouteAll($"YOLOSPP_CONV=native, but {OneDnn.UnavailableReason}");
                    return;
                }
                _decision = "libtorch's native kernels (YOLOSPP_CONV=native, oneDNN off, unchecked)";
                return;
            }
            if (_routeAll) return;
            var todo = new List<(ConvConfig Config, int H, int W)>();
            if (!_gridChecked) todo.AddRange(ProbeGrid.Select(c => (c, 40, 40)));
            foreach (var c in configs.Distinct())
            {
                var (h, w) = ConvCheck.ProbeSize(c, ProbeBatch);
                todo.Add((c, h, w));
            }
            _gridChecked = true;
            todo = todo.Except(Checked).ToList();
            Checked.AddRange(todo);
            var failures = RunChecks(todo).Where(r => !r.Ok).ToArray();
            if (failures.Length == 0)
            {
                if (RoutedSet.Count == 0) _decision = OneDnn.Enabled ? "oneDNN (every check right)" : _decision;
                return;
            }
            if (mode == ConvMode.Auto && OneDnn.Enabled)
            {
                string what = Summary(failures, todo.Count, "oneDNN");
                if (!OneDnn.TrySetEnabled(false))
                {
                    RouteAll($"{what}, and oneDNN cannot be turned off: {OneDnn.UnavailableReason}");
                    return;
                }
                _decision = "libtorch's native kernels (oneDNN off: it computed wrong results here)";
                Notice($"conv guard: {what}; convolutions now run on libtorch's native kernels (oneDNN off). YOLOSPP_CONV=onednn|native|route|auto overrides");
                // the native kernels are checked in turn, on everything checked so far
                failures = RunChecks(Checked).Where(r => !r.Ok).ToArray();
                if (failures.Length == 0) return;
            }
            Route(failures, mode == ConvMode.Route ? "YOLOSPP_CONV=route" : "the native kernels are wrong too");
        }
    }

    /// <summary>
    /// Whether <paramref name="configs"/> compute right with channels-last inputs on the kernels in use (oneDNN takes
    /// other kernels for them than for contiguous ones): forward, input and weight gradients of each checked as in
    /// <see cref="Prepare"/> (results cached alike). True without checking in the unchecked modes (onednn, native);
    /// false when any of them is routed through unfold + matmul. Says so in a notice when a check fails.
    /// </summary>
    public static bool CheckChannelsLast(IEnumerable<ConvConfig> configs)
    {
        lock (Gate)
        {
            var mode = Mode;
            if (mode is ConvMode.OneDnn or ConvMode.Native) return true;
            var list = configs.Distinct().ToArray();
            if (_routeAll || list.Any(RoutedSet.Contains)) return false;
            var todo = list.Select(c => { var (h, w) = ConvCheck.ProbeSize(c, ProbeBatch); return (c, h, w); }).ToArray();
            var failures = RunChecks(todo, channelsLast: true).Where(r => !r.Ok).ToArray();
            if (failures.Length == 0) return true;
            Notice($"conv guard: {Summary(failures, todo.Length, KernelsNow + " channels-last")}; this network computes in the contiguous layout");
            return false;
        }
    }

    /// <summary>Re-checks the grid and <paramref name="configs"/> on the kernels in use now, and
    /// <paramref name="channelsLast"/> with channels-last inputs, ignoring the cache (for <c>yolospp doctor</c>);
    /// returns the results. The decision already taken is not changed.</summary>
    public static IReadOnlyList<ConvCheckResult> CheckNow(IEnumerable<ConvConfig> configs, IEnumerable<ConvConfig>? channelsLast = null)
    {
        lock (Gate)
        {
            static (ConvConfig, int, int) Sized(ConvConfig c) { var (h, w) = ConvCheck.ProbeSize(c, ProbeBatch); return (c, h, w); }
            var list = ProbeGrid.Select(c => (c, 40, 40)).Concat(configs.Distinct().Select(Sized))
                .Select(t => (t.Item1, t.Item2, t.Item3, false))
                .Concat((channelsLast ?? Enumerable.Empty<ConvConfig>()).Distinct().Select(Sized).Select(t => (t.Item1, t.Item2, t.Item3, true)))
                .ToArray();
            var sw = Stopwatch.StartNew();
            var results = list.Select(t => ConvCheck.Run(t.Item1, ProbeBatch, t.Item2, t.Item3, Compute, Seed(t.Item1),
                KernelsNow + (t.Item4 ? " channels-last" : ""), t.Item4)).ToArray();
            _checkTime += sw.Elapsed;
            return results;
        }
    }

    /// <summary>
    /// Makes the bfloat16 convolutions of a network right before it computes in bfloat16 (<c>DarkNet.ComputeType</c>
    /// on the CPU): in auto and route modes checks each configuration not checked yet in this process, in the layout
    /// given, forward and both gradients against float64 (<see cref="Bf16Support.Check"/>), and sends the ones that
    /// come out wrong through float32 (input, weight and bias cast to float32, the float32 path, the output cast
    /// back: right, slower), saying so in a notice. Returns the checks (empty in the unchecked modes).
    /// </summary>
    public static IReadOnlyList<Bf16CheckResult> PrepareBf16(IEnumerable<ConvConfig> configs, bool channelsLast = false)
    {
        ArgumentNullException.ThrowIfNull(configs);
        lock (Gate)
        {
            if (Mode is ConvMode.OneDnn or ConvMode.Native) return Array.Empty<Bf16CheckResult>();
            var results = CheckBf16(configs, channelsLast);
            var wrong = results.Where(r => !r.Ok).ToArray();
            var added = wrong.Select(r => r.Config).Where(Bf16RoutedSet.Add).ToArray();
            if (added.Length > 0)
            {
                _bf16Routed = Bf16RoutedSet.ToArray();
                var worst = wrong.OrderByDescending(r => r.Worst).First();
                Notice($"conv guard: libtorch's {KernelsNow}{(channelsLast ? " channels-last" : "")} bfloat16 kernels computed {wrong.Length} of {results.Count} checked convolutions wrong on {CpuInfo.Model} (worst: {worst}); {string.Join(", ", added.Take(6))}{(added.Length > 6 ? ", …" : "")} now run in float32");
            }
            return results;
        }
    }

    /// <summary>The bfloat16 checks of <paramref name="configs"/> on the kernels in use, run once a process (no
    /// routing: what libtorch computes).</summary>
    internal static IReadOnlyList<Bf16CheckResult> CheckBf16(IEnumerable<ConvConfig> configs, bool channelsLast)
    {
        lock (Gate)
        {
            var kernels = KernelsNow;
            var list = configs.Distinct().ToArray();
            var missing = list.Where(c => !Bf16Results.ContainsKey((c, channelsLast, kernels))).ToArray();
            var sw = Stopwatch.StartNew();
            foreach (var r in Bf16Support.Check(missing, channelsLast)) Bf16Results[(r.Config, channelsLast, kernels)] = r;
            _checkTime += sw.Elapsed;
            return list.Select(c => Bf16Results[(c, channelsLast, kernels)]).ToArray();
        }
    }

    /// <summary>
    /// The network's convolution: libtorch's kernel, or unfold + matmul for a configuration the guard routes.
    /// Input, weight and bias may be float16/bfloat16 (mixed precision); a bfloat16 configuration whose bfloat16
    /// kernel checked wrong (<see cref="PrepareBf16"/>) computes in float32.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, ConvConfig c)
    {
        // the array first: empty unless a bfloat16 kernel checked wrong, so the common case asks libtorch nothing
        if (_bf16Routed.Length > 0 && Array.IndexOf(_bf16Routed, c) >= 0 && x.dtype == ScalarType.BFloat16 && x.device_type == DeviceType.CPU)
        {
            using var scope = NewDisposeScope();
            var y = Conv2d(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias?.to(ScalarType.Float32), c);
            return y.to(ScalarType.BFloat16).MoveToOuterDisposeScope();
        }
        return Kernel(x, weight, bias, c);
    }

    /// <summary>What <see cref="Conv2d"/> computes without the bfloat16 routing: libtorch's kernel, or unfold + matmul
    /// for a configuration routed in float32 (what the bfloat16 check tests).</summary>
    internal static Tensor Kernel(Tensor x, Tensor weight, Tensor? bias, ConvConfig c)
    {
        if (_routeAll || (_routed.Length > 0 && Array.IndexOf(_routed, c) >= 0))
            return UnfoldConv.Conv2d(x, weight, bias, c.Stride, c.Padding);
        var y = nn.functional.conv2d(x, weight, bias, strides: new long[] { c.Stride, c.Stride },
            padding: new long[] { c.Padding, c.Padding }, dilation: new long[] { 1, 1 }, groups: 1);
        if ((InjectedFault is { } fault && fault(c) || InjectedChannelsLastFault is { } clFault && clFault(c) && Layout.IsChannelsLast(x)) && OneDnn.Enabled)
        {
            // mixes each output with its left neighbour: wrong forward and gradients that BatchNorm cannot normalise away
            using var wrong = 0.25.ToScalar();
            y = y.add(y.roll(1, 3), wrong);
        }
        else if (InjectedBf16Fault is { } bf16Fault && x.dtype == ScalarType.BFloat16 && bf16Fault(c))
        {
            using var wrong = 0.25.ToScalar();
            y = y.add(y.roll(1, 3), wrong);
        }
        return y;
    }

    /// <summary>Test hook: forgets every check and decision, restores oneDNN, and sets the mode (null: from the
    /// environment) and an injected fault; the cache is neither read nor written while a fault is injected.</summary>
    internal static void Reset(ConvMode? mode, Func<ConvConfig, bool>? fault = null)
    {
        lock (Gate)
        {
            _mode = mode;
            InjectedFault = fault;
            InjectedChannelsLastFault = null;
            InjectedBf16Fault = null;
            Bf16Results.Clear();
            Bf16RoutedSet.Clear();
            _bf16Routed = Array.Empty<ConvConfig>();
            _gridChecked = false;
            _routeAll = false;
            RoutedSet.Clear();
            _routed = Array.Empty<ConvConfig>();
            Results.Clear();
            ThisProcess.Clear();
            Checked.Clear();
            _cacheLoaded = false;
            _checkTime = TimeSpan.Zero;
            _decision = "not decided yet (no network built)";
            OneDnn.TrySetEnabled(true);
        }
    }

    static string KernelsNow => OneDnn.Enabled ? "oneDNN" : "native";

    static Tensor Compute(Tensor x, Tensor w, ConvConfig c) => Conv2d(x, w, null, c);

    // the same numbers for a configuration wherever it is checked
    static ulong Seed(ConvConfig c) => (ulong)(c.InChannels * 1_000_003L + c.OutChannels * 1009L + c.Kernel * 31L + c.Stride * 7L + c.Padding);

    static List<ConvCheckResult> RunChecks(IReadOnlyList<(ConvConfig Config, int H, int W)> todo, bool channelsLast = false)
    {
        LoadCache();
        var kernels = KernelsNow + (channelsLast ? " channels-last" : "");
        var missing = todo.Where(t => !Results.ContainsKey(Key(t.Config, t.H, t.W, kernels))).Distinct().ToArray();
        if (missing.Length > 20)
            Notice($"conv guard: checking {missing.Length} convolution configurations ({kernels} kernels) on this CPU ({CpuInfo.Model}); the results are kept for the next runs");
        var sw = Stopwatch.StartNew();
        foreach (var (c, h, w) in missing)
            Results[Key(c, h, w, kernels)] = ConvCheck.Run(c, ProbeBatch, h, w, Compute, Seed(c), kernels, channelsLast);
        if (missing.Length > 0)
        {
            _checkTime += sw.Elapsed;
            SaveCache();
        }
        var results = todo.Select(t => Results[Key(t.Config, t.H, t.W, kernels)]).ToList();
        ThisProcess.AddRange(results.Where(r => !ThisProcess.Contains(r)));
        return results;
    }

    static string Summary(IReadOnlyList<ConvCheckResult> failures, int count, string kernels)
    {
        var worst = failures.OrderByDescending(f => Math.Max(f.Forward, Math.Max(f.InputGrad, f.WeightGrad))).First();
        return $"libtorch's {kernels} kernels computed {failures.Count} of {count} checked convolutions wrong on {CpuInfo.Model} (worst: {worst.Describe()})";
    }

    static void Route(IReadOnlyList<ConvCheckResult> failures, string why)
    {
        var added = failures.Select(f => f.Config).Where(RoutedSet.Add).ToArray();
        _routed = RoutedSet.ToArray();
        _decision = (OneDnn.Enabled ? "oneDNN" : "libtorch's native kernels") + $", with {RoutedSet.Count} configurations through unfold + matmul ({why})";
        if (added.Length > 0)
            Notice($"conv guard: {Summary(failures, Checked.Count, KernelsNow)}; {string.Join(", ", added.Take(6))}{(added.Length > 6 ? ", …" : "")} now run as unfold + matmul ({why})");
    }

    static void RouteAll(string why)
    {
        _routeAll = true;
        _decision = $"unfold + matmul for every convolution ({why})";
        Notice($"conv guard: {why}; every convolution now runs as unfold + matmul");
    }

    internal static ConvMode ParseMode(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => ConvMode.Auto,
        "onednn" or "mkldnn" => ConvMode.OneDnn,
        "native" or "off" => ConvMode.Native,
        "route" => ConvMode.Route,
        var v => throw new ArgumentException($"YOLOSPP_CONV={v}: expected auto, onednn, native or route"),
    };

    static string Key(ConvConfig c, int h, int w, string kernels) =>
        $"{kernels} {c.Kernel} {c.Stride} {c.Padding} {c.InChannels} {c.OutChannels} {ProbeBatch}x{h}x{w}";

    // ---- the per-machine cache: results of checks, keyed by what decides the kernels libtorch picks

    static string? CacheFile
    {
        get
        {
            if (InjectedFault is not null || InjectedChannelsLastFault is not null) return null;
            var dir = Environment.GetEnvironmentVariable("YOLOSPP_CACHE_DIR");
            if (string.IsNullOrWhiteSpace(dir))
            {
                var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
                var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
                dir = !string.IsNullOrWhiteSpace(xdg) ? Path.Combine(xdg, "yolospp")
                    : OperatingSystem.IsWindows() ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "yolospp")
                    : string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".cache", "yolospp");
            }
            if (dir is null) return null;
            var identity = string.Join("\n", GuardVersion, CpuInfo.Model, string.Join(' ', CpuInfo.Flags), torch.__version__,
                typeof(torch).Assembly.GetName().Version, get_num_threads(),
                Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA"), Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA"));
            var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..16].ToLowerInvariant();
            return Path.Combine(dir, $"conv-guard-{hash}.json");
        }
    }

    sealed record CacheEntry(string Key, int In, int Out, int K, int S, int P, long[] Shape, double Forward, double InputGrad, double WeightGrad, string Kernels);

    static void LoadCache()
    {
        if (_cacheLoaded) return;
        _cacheLoaded = true;
        var file = CacheFile;
        if (file is null || !File.Exists(file)) return;
        try
        {
            var entries = JsonSerializer.Deserialize<CacheEntry[]>(File.ReadAllText(file)) ?? Array.Empty<CacheEntry>();
            foreach (var e in entries)
                Results[e.Key] = new ConvCheckResult(new ConvConfig(e.In, e.Out, e.K, e.S, e.P), e.Shape, e.Forward, e.InputGrad, e.WeightGrad, e.Kernels);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            Notice($"conv guard: ignoring an unreadable cache {file} ({e.Message}); checking again");
        }
    }

    static void SaveCache()
    {
        var file = CacheFile;
        if (file is null) return;
        try
        {
            var entries = Results.Select(kv => new CacheEntry(kv.Key, kv.Value.Config.InChannels, kv.Value.Config.OutChannels, kv.Value.Config.Kernel,
                kv.Value.Config.Stride, kv.Value.Config.Padding, kv.Value.InputShape,
                Finite(kv.Value.Forward), Finite(kv.Value.InputGrad), Finite(kv.Value.WeightGrad), kv.Value.Kernels)).ToArray();
            AtomicFile.WriteAllText(file, JsonSerializer.Serialize(entries));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a read-only home only costs the check again next time
        }
    }

    // JSON has no infinity: a wrong result is stored as a large error
    static double Finite(double e) => double.IsFinite(e) ? e : 1e300;
}
