using TorchSharp;

using YoloSpp.Distributed;

namespace YoloSpp.Platform;

/// <summary>Loads the libtorch backend and picks the device to compute on.</summary>
public static class Backend
{
    /// <summary>
    /// Loads the native libtorch libraries. Call it before the first <c>torch.nn</c> constructor: TorchSharp
    /// loads its natives on the first tensor operation, and a module constructor alone does not trigger that.
    /// It also applies the host memory policy (<see cref="HostMemory"/>).
    /// </summary>
    public static void Initialize()
    {
        HostMemory.Configure();
        torch.InitializeDeviceType(DeviceType.CPU);
    }

    /// <summary>Whether a CUDA device is usable (a CUDA backend package and a GPU are present).</summary>
    public static bool CudaAvailable
    {
        get
        {
            Initialize();
            return torch.cuda.is_available();
        }
    }

    /// <summary>The default device name: CUDA when a CUDA device is usable, else the CPU, chosen silently.</summary>
    public const string AutoDevice = "auto";

    /// <summary>
    /// Resolves a device name: <see cref="AutoDevice"/> ("auto", also for null or blank) is CUDA when available and
    /// the CPU otherwise, without a notice; "cpu", "cuda" or "cuda:1" are as asked, except that a CUDA request on a
    /// machine without CUDA falls back to the CPU and says so through <paramref name="notice"/>, as the reference
    /// trainer does.
    /// </summary>
    public static torch.Device ResolveDevice(string? name, Action<string>? notice = null)
    {
        Initialize();
        if (string.IsNullOrWhiteSpace(name) || name.Trim().Equals(AutoDevice, StringComparison.OrdinalIgnoreCase))
            return torch.cuda.is_available() ? new torch.Device(DeviceType.CUDA, 0) : torch.CPU;
        // libtorch knows more device types (xla, mps, …) than this build runs on: name the ones it does
        var parts = name.Trim().ToLowerInvariant().Split(':');
        bool known = parts[0] is "cpu" or "cuda" && (parts.Length == 1
            || (parts.Length == 2 && parts[0] == "cuda" && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)));
        if (!known) throw new ArgumentException($"--device {name}: expected auto, cpu, cuda or cuda:N (N = 0, 1, ...)");
        var device = new torch.Device(name.Trim().ToLowerInvariant());
        if (device.type == DeviceType.CUDA && !torch.cuda.is_available())
        {
            notice?.Invoke($"CUDA was requested ({name}) but is not available; using the CPU.");
            return torch.CPU;
        }
        return device;
    }

    /// <summary>
    /// <see cref="ResolveDevice(string, Action{string}?)"/> for one of several ranks: a CUDA device becomes one GPU per
    /// rank of this machine, GPU (index + local rank) mod the GPU count, so that "cuda" or "cuda:0" puts rank r of a
    /// machine on its GPU r (the local rank is OMPI_COMM_WORLD_LOCAL_RANK or MPI_LOCALRANKID). The CPU, and one
    /// process, are as asked.
    /// </summary>
    public static torch.Device ResolveDevice(string? name, Distributed.ICommunicator comm, Action<string>? notice = null)
    {
        ArgumentNullException.ThrowIfNull(comm);
        var device = ResolveDevice(name, notice);
        if (comm.Size <= 1 || device.type != DeviceType.CUDA) return device;
        int index = RankDeviceIndex(Math.Max(0, device.index), Distributed.Communicator.LocalRank ?? comm.Rank, torch.cuda.device_count());
        return new torch.Device(DeviceType.CUDA, index);
    }

    /// <summary>The GPU of a rank: (index + localRank) mod count.</summary>
    internal static int RankDeviceIndex(int index, int localRank, int count) => count <= 0 ? index : (index + localRank) % count;
}
