using System.Runtime.InteropServices;

namespace YoloSpp.Platform;

/// <summary>
/// What the NVIDIA driver says of a GPU, read through the CUDA driver API (libcuda.so.1 on Linux, nvcuda.dll on
/// Windows: installed with the driver, whatever CUDA toolkit or TorchSharp build is present). TorchSharp 0.107 has
/// no call for a device's compute capability; PyTorch's <c>torch.cuda.get_device_capability</c> reads the same
/// attributes. Devices are numbered as CUDA numbers them (after <c>CUDA_VISIBLE_DEVICES</c>), as TorchSharp's
/// <c>cuda:N</c>.
/// </summary>
public static unsafe class CudaInfo
{
    // CUdevice_attribute values of cuda.h
    const int ComputeCapabilityMajor = 75, ComputeCapabilityMinor = 76;

    static readonly Lazy<IntPtr> Driver = new(() =>
    {
        foreach (var name in OperatingSystem.IsWindows() ? new[] { "nvcuda.dll" } : new[] { "libcuda.so.1", "libcuda.so" })
            if (NativeLibrary.TryLoad(name, out var handle)) return handle;
        return IntPtr.Zero;
    });

    /// <summary>The compute capability (8.0 for an A100, 9.0 for an H100) of CUDA device <paramref name="ordinal"/>,
    /// or null when there is no NVIDIA driver, no such device, or the driver refuses (the reason is not kept: every
    /// caller falls back to float32).</summary>
    public static (int Major, int Minor)? ComputeCapability(int ordinal = 0)
    {
        var lib = Driver.Value;
        if (lib == IntPtr.Zero) return null;
        if (!NativeLibrary.TryGetExport(lib, "cuInit", out var init)
            || !NativeLibrary.TryGetExport(lib, "cuDeviceGet", out var get)
            || !NativeLibrary.TryGetExport(lib, "cuDeviceGetAttribute", out var attribute))
            return null;
        return ComputeCapability(init, get, attribute, ordinal);
    }

    /// <summary>
    /// The calls themselves, on the driver's entry points: <c>cuInit(0)</c>, <c>cuDeviceGet(&amp;dev, ordinal)</c>,
    /// <c>cuDeviceGetAttribute(&amp;v, attribute, dev)</c> for the major and minor numbers; any result other than
    /// CUDA_SUCCESS (0) gives null. Separate so that tests can hand it entry points of their own.
    /// </summary>
    internal static (int Major, int Minor)? ComputeCapability(IntPtr cuInit, IntPtr cuDeviceGet, IntPtr cuDeviceGetAttribute, int ordinal)
    {
        if (ordinal < 0) return null;
        var init = (delegate* unmanaged<uint, int>)cuInit;
        var get = (delegate* unmanaged<int*, int, int>)cuDeviceGet;
        var attribute = (delegate* unmanaged<int*, int, int, int>)cuDeviceGetAttribute;
        if (init(0) != 0) return null;
        int device = 0, major = 0, minor = 0;
        if (get(&device, ordinal) != 0) return null;
        if (attribute(&major, ComputeCapabilityMajor, device) != 0 || attribute(&minor, ComputeCapabilityMinor, device) != 0)
            return null;
        return (major, minor);
    }
}
