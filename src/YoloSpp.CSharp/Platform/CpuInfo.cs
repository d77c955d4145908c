using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;


namespace YoloSpp.Platform;

/// <summary>
/// The processor, as the numbers computed on it depend on it: libtorch's oneDNN picks its kernels by instruction
/// set, and kernels differ between CPUs (and have been seen to be wrong on some).
/// </summary>
public static class CpuInfo
{
    static readonly Lazy<(string Model, string[] Flags)> Read = new(ReadCpu);

    /// <summary>The model name (lscpu's "Model name"), or the architecture when the OS does not say.</summary>
    public static string Model => Read.Value.Model;

    /// <summary>The CPU feature flags as Linux's /proc/cpuinfo names them (avx2, avx512f, avx512_bf16, …); on other
    /// systems the ones .NET can detect.</summary>
    public static IReadOnlyList<string> Flags => Read.Value.Flags;

    /// <summary>The AVX-512 flags (avx512f, avx512_bf16, …) joined with spaces, or "none".</summary>
    public static string Avx512Flags
    {
        get
        {
            var f = Flags.Where(x => x.StartsWith("avx512", StringComparison.Ordinal)).ToArray();
            return f.Length == 0 ? "none" : string.Join(' ', f);
        }
    }

    /// <summary>Whether the CPU has VNNI (avx512_vnni or avx_vnni): 8-bit dot products without 16-bit intermediate
    /// sums, so ONNX Runtime's u8s8 kernels cannot saturate on an int8 export's full-range weights.</summary>
    public static bool HasVnni => Flags.Contains("avx512_vnni") || Flags.Contains("avx_vnni");

    /// <summary>
    /// The instruction set oneDNN dispatches to on this CPU (its names: avx512_core_bf16, avx512_core_vnni,
    /// avx512_core, avx2_vnni, avx2, avx, sse41), capped by ONEDNN_MAX_CPU_ISA when that is set.
    /// </summary>
    public static string OneDnnIsa
    {
        get
        {
            var has = new HashSet<string>(Flags, StringComparer.Ordinal);
            bool core = has.Contains("avx512f") && has.Contains("avx512bw") && has.Contains("avx512vl") && has.Contains("avx512dq");
            var levels = new (string Name, bool Ok)[]
            {
                ("avx512_core_amx", core && has.Contains("amx_tile") && has.Contains("amx_bf16")),
                ("avx512_core_bf16", core && has.Contains("avx512_bf16")),
                ("avx512_core_vnni", core && has.Contains("avx512_vnni")),
                ("avx512_core", core),
                ("avx2_vnni", has.Contains("avx2") && has.Contains("avx_vnni")),
                ("avx2", has.Contains("avx2") && has.Contains("fma")),
                ("avx", has.Contains("avx")),
                ("sse41", has.Contains("sse4_1")),
            };
            var cap = Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") ?? Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA");
            int start = 0;
            if (!string.IsNullOrWhiteSpace(cap))
            {
                int i = Array.FindIndex(levels, l => l.Name.Equals(cap.Trim(), StringComparison.OrdinalIgnoreCase));
                if (i >= 0) start = i;
            }
            for (int i = start; i < levels.Length; i++)
                if (levels[i].Ok) return levels[i].Name + (start > 0 ? $" (capped by ONEDNN_MAX_CPU_ISA={cap})" : "");
            return RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        }
    }

    static (string, string[]) ReadCpu()
    {
        string? model = null;
        string[]? flags = null;
        try
        {
            if (OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo"))
            {
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                {
                    int colon = line.IndexOf(':');
                    if (colon < 0) continue;
                    var key = line[..colon].Trim();
                    var value = line[(colon + 1)..].Trim();
                    if (model is null && (key == "model name" || key == "Model")) model = value;
                    if (flags is null && (key == "flags" || key == "Features")) flags = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (model is not null && flags is not null) break;
                }
            }
            else if (OperatingSystem.IsWindows())
                model = Environment.GetEnvironmentVariable("PROCESSOR_IDENTIFIER");
            else if (OperatingSystem.IsMacOS())
                model = RunQuiet("sysctl", "-n machdep.cpu.brand_string");
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return (string.IsNullOrWhiteSpace(model) ? RuntimeInformation.ProcessArchitecture.ToString() : model!, flags ?? IntrinsicFlags());
    }

    static string[] IntrinsicFlags()
    {
        var f = new List<string>();
        if (Sse41.IsSupported) f.Add("sse4_1");
        if (Avx.IsSupported) f.Add("avx");
        if (Avx2.IsSupported) f.Add("avx2");
        if (Fma.IsSupported) f.Add("fma");
        if (Avx512F.IsSupported) f.Add("avx512f");
        if (Avx512BW.IsSupported) f.Add("avx512bw");
        if (Avx512DQ.IsSupported) f.Add("avx512dq");
        if (Avx512F.VL.IsSupported) f.Add("avx512vl");
        if (AvxVnni.IsSupported) f.Add("avx_vnni");
        return f.ToArray();
    }

    static string? RunQuiet(string file, string args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, UseShellExecute = false });
            if (p is null) return null;
            var text = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit(2000);
            return text;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
