using System.Runtime.InteropServices;
using TorchSharp;


namespace YoloSpp.Platform;

/// <summary>
/// libtorch's switch for oneDNN (MKL-DNN) kernels, <c>at::globalContext().setUserEnabledMkldnn(bool)</c>, the switch
/// behind PyTorch's <c>torch.backends.mkldnn.enabled</c>. TorchSharp does not expose it, so it is bound from
/// libtorch_cpu's exported C++ symbols (Itanium names on Linux and macOS, MSVC names on Windows). Where the
/// symbols cannot be found, <see cref="Available"/> is false and nothing is changed.
/// </summary>
internal static class OneDnn
{
    // at::Context& at::globalContext(); void at::Context::setUserEnabledMkldnn(bool); bool at::Context::userEnabledMkldnn() const
    static readonly (string Context, string Set, string Get) Itanium =
        ("_ZN2at13globalContextEv", "_ZN2at7Context20setUserEnabledMkldnnEb", "_ZNK2at7Context17userEnabledMkldnnEv");
    static readonly (string Context, string Set, string Get) Msvc =
        ("?globalContext@at@@YAAEAVContext@1@XZ", "?setUserEnabledMkldnn@Context@at@@QEAAX_N@Z", "?userEnabledMkldnn@Context@at@@QEBA_NXZ");

    unsafe sealed class Bindings
    {
        public delegate* unmanaged<IntPtr> GlobalContext;
        public delegate* unmanaged<IntPtr, byte, void> SetEnabled;
        public delegate* unmanaged<IntPtr, byte> GetEnabled;
    }

    static readonly Lazy<(Bindings? Bindings, string Why)> Bound = new(Bind);

    /// <summary>Test hook: behave as if the switch could not be bound (as on a libtorch build without the symbols).</summary>
    internal static bool SimulateUnavailable { get; set; }

    static Bindings? Bindings_ => SimulateUnavailable ? null : Bound.Value.Bindings;

    /// <summary>Whether the switch could be bound in this process.</summary>
    public static bool Available => Bindings_ is not null;

    /// <summary>Why the switch is unavailable (empty when it is available).</summary>
    public static string UnavailableReason => SimulateUnavailable ? "unavailable (simulated by a test)" : Bound.Value.Why;

    /// <summary>Whether libtorch may use oneDNN kernels (true where the switch is unavailable: libtorch's default).</summary>
    public static unsafe bool Enabled
    {
        get
        {
            var b = Bindings_;
            return b is null || b.GetEnabled(b.GlobalContext()) != 0;
        }
    }

    /// <summary>Turns oneDNN on or off for every later operation; false when the switch is unavailable.</summary>
    public static unsafe bool TrySetEnabled(bool enabled)
    {
        var b = Bindings_;
        if (b is null) return false;
        b.SetEnabled(b.GlobalContext(), enabled ? (byte)1 : (byte)0);
        return true;
    }

    static unsafe (Bindings?, string) Bind()
    {
        Backend.Initialize();
        var names = OperatingSystem.IsWindows() ? Msvc : Itanium;
        foreach (var lib in LibraryCandidates())
        {
            if (!NativeLibrary.TryLoad(lib, typeof(torch).Assembly, null, out var handle) && !NativeLibrary.TryLoad(lib, out handle))
                continue;
            if (NativeLibrary.TryGetExport(handle, names.Context, out var ctx)
                && NativeLibrary.TryGetExport(handle, names.Set, out var set)
                && NativeLibrary.TryGetExport(handle, names.Get, out var get))
            {
                return (new Bindings
                {
                    GlobalContext = (delegate* unmanaged<IntPtr>)ctx,
                    SetEnabled = (delegate* unmanaged<IntPtr, byte, void>)set,
                    GetEnabled = (delegate* unmanaged<IntPtr, byte>)get,
                }, "");
            }
            return (null, $"{lib} does not export at::Context::setUserEnabledMkldnn");
        }
        return (null, "libtorch_cpu could not be located");
    }

    static IEnumerable<string> LibraryCandidates()
    {
        if (OperatingSystem.IsWindows()) return new[] { "torch_cpu", "torch_cpu.dll" };
        if (OperatingSystem.IsMacOS()) return new[] { "libtorch_cpu.dylib", "torch_cpu" };
        return new[] { "libtorch_cpu.so", "torch_cpu" };
    }
}
