using System.Runtime.InteropServices;


namespace YoloSpp.Platform;

/// <summary>How freed host memory of CPU tensors is handled (environment variable <c>YOLOSPP_MALLOC</c>).</summary>
public enum HostMemoryPolicy
{
    /// <summary>Freed blocks up to 32 MiB stay in the process heap for the next step's tensors (the default on glibc).</summary>
    Keep,
    /// <summary>The C library's defaults: large blocks are mapped per allocation and returned when freed.</summary>
    System,
}

/// <summary>
/// libtorch allocates every CPU tensor with the C library's malloc. glibc serves a block above its mmap threshold
/// with a fresh mapping and unmaps it on free, and gives the top of its heap back to the system once more than its
/// trim threshold is free there. Both thresholds start at 128 KiB and adapt (the trim threshold to twice the mmap
/// threshold, which grows to at most 32 MiB), so a training step whose activations are tens of MiB touches new
/// pages for many of them every step, and the kernel zero-fills each 4 KiB page on its first write (a page fault):
/// on yolov3-spp at 512² a training step took 6.6–6.7 s with glibc's defaults and 5.7–5.9 s without the faults.
/// Under <see cref="HostMemoryPolicy.Keep"/> the mmap threshold is fixed at glibc's maximum (32 MiB:
/// <c>M_MMAP_THRESHOLD</c>) and the heap is never trimmed (<c>M_TRIM_THRESHOLD</c> at its maximum), so blocks up to
/// 32 MiB reuse the pages of the last step; larger ones are still mapped per block (taking those from the heap as
/// well fragments it: 4.2–5.0 GB resident instead of 4.1–4.3 GB for the same steps). The resident memory stays at
/// the largest step's heap, as a caching allocator's does. The reuse is complete for the main thread's heap (the
/// runner's and a C# program's training loop): glibc gives the extra heaps of other threads' arenas (an F#
/// script's evaluation thread, thread-pool threads) back whole when they empty, whatever the trim threshold; blocks
/// below 32 MiB still avoid a mapping of their own there. Only glibc is changed; elsewhere (musl, macOS, Windows)
/// nothing is, and <see cref="Description"/> says so.
/// </summary>
public static class HostMemory
{
    const int M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3;
    const int MmapThresholdMax = 32 << 20;
    static readonly object Gate = new();
    static string? _description;

    /// <summary>The policy asked for: <c>YOLOSPP_MALLOC</c> = keep (default) or system.</summary>
    public static HostMemoryPolicy RequestedPolicy => Parse(Environment.GetEnvironmentVariable("YOLOSPP_MALLOC"));

    /// <summary>What was done, in words (for <c>doctor</c> and <c>bench</c>); applies the policy on first use.</summary>
    public static string Description
    {
        get
        {
            Configure();
            return _description!;
        }
    }

    internal static HostMemoryPolicy Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "keep" => HostMemoryPolicy.Keep,
        "system" => HostMemoryPolicy.System,
        var v => throw new ArgumentException($"YOLOSPP_MALLOC={v}: expected keep or system"),
    };

    /// <summary>Applies <see cref="RequestedPolicy"/> once per process (called by <see cref="Backend.Initialize"/>).</summary>
    public static void Configure()
    {
        lock (Gate)
        {
            if (_description is not null) return;
            var policy = RequestedPolicy;
            _description = policy == HostMemoryPolicy.System ? "the C library's defaults (YOLOSPP_MALLOC=system)" : Keep();
        }
    }

    static unsafe string Keep()
    {
        if (!OperatingSystem.IsLinux()) return "the system allocator's defaults (not glibc)";
        if (!NativeLibrary.TryLoad("libc.so.6", out var libc)
            || !NativeLibrary.TryGetExport(libc, "gnu_get_libc_version", out _)
            || !NativeLibrary.TryGetExport(libc, "mallopt", out var mallopt))
            return "the C library's defaults (not glibc)";
        var set = (delegate* unmanaged<int, int, int>)mallopt;
        // mallopt returns 1 on success
        if (set(M_MMAP_THRESHOLD, MmapThresholdMax) != 1 || set(M_TRIM_THRESHOLD, int.MaxValue) != 1)
            return "the C library's defaults (glibc refused mallopt)";
        return "freed blocks up to 32 MiB kept for reuse (glibc malloc: mmap threshold 32 MiB, no trimming)";
    }
}
