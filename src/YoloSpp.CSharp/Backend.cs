using TorchSharp;

namespace YoloSpp;

/// <summary>Loads the libtorch backend and picks the device to compute on.</summary>
public static class Backend
{
    /// <summary>
    /// Loads the native libtorch libraries. Call it before the first <c>torch.nn</c> constructor: TorchSharp
    /// loads its natives on the first tensor operation, and a module constructor alone does not trigger that.
    /// </summary>
    public static void Initialize() => torch.InitializeDeviceType(DeviceType.CPU);

    /// <summary>Whether a CUDA device is usable (a CUDA backend package and a GPU are present).</summary>
    public static bool CudaAvailable
    {
        get
        {
            Initialize();
            return torch.cuda.is_available();
        }
    }

    /// <summary>
    /// Resolves a device name such as "cpu", "cuda" or "cuda:1". A CUDA request on a machine without CUDA falls
    /// back to the CPU and says so through <paramref name="notice"/>, as the reference trainer does.
    /// </summary>
    public static torch.Device ResolveDevice(string name, Action<string>? notice = null)
    {
        Initialize();
        if (string.IsNullOrWhiteSpace(name)) name = "cpu";
        var device = new torch.Device(name);
        if (device.type == DeviceType.CUDA && !torch.cuda.is_available())
        {
            notice?.Invoke($"CUDA was requested ({name}) but is not available; using the CPU.");
            return torch.CPU;
        }
        return device;
    }
}
