using System.Runtime;

namespace YoloSpp;

/// <summary>
/// Keeps the garbage collector out of a stretch of TorchSharp calls while other threads (the data loader)
/// allocate. TorchSharp passes temporary Scalars (e.g. the implicit alpha of tensor + tensor, or BatchNorm's
/// num_batches_tracked += 1) by handle and leaves them to the finalizer; a GC started by another thread during
/// the native call can free one mid-call, which corrupts the operation ("For integral input tensors, argument
/// alpha must not be a floating point number"). Inside this scope no GC runs (a no-GC region sized for the
/// loader's allocations); a GC, if one is due, runs when the scope starts or ends, in managed code.
/// </summary>
public readonly struct NativeCallGuard : IDisposable
{
    static readonly long[] Budgets = { 240L << 20, 64L << 20, 16L << 20 };
    readonly bool _active;

    NativeCallGuard(bool active) => _active = active;

    /// <summary>Enters a no-GC region if the runtime allows one here (nesting and unsupported sizes fall back to none).</summary>
    public static NativeCallGuard Enter()
    {
        if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) return new NativeCallGuard(false);
        foreach (var budget in Budgets)
        {
            try
            {
                if (GC.TryStartNoGCRegion(budget)) return new NativeCallGuard(true);
            }
            catch (ArgumentOutOfRangeException) { }
            catch (InvalidOperationException) { return new NativeCallGuard(false); }
        }
        return new NativeCallGuard(false);
    }

    /// <summary>Leaves the no-GC region (if it is still in force: allocating past the budget ends it early).</summary>
    public void Dispose()
    {
        if (!_active || GCSettings.LatencyMode != GCLatencyMode.NoGCRegion) return;
        try { GC.EndNoGCRegion(); } catch (InvalidOperationException) { }
    }
}
