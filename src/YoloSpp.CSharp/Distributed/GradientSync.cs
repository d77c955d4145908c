using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace YoloSpp.Distributed;

/// <summary>
/// DDP's gradient averaging in one all-reduce: every trainable parameter's gradient is copied into one flat float32
/// buffer (a parameter without a gradient contributes zeros, so that every rank's buffer has the same layout),
/// the buffer is averaged over the ranks, and the averages are copied back.
/// </summary>
public static class GradientSync
{
    /// <summary>The floats one all-reduce of <see cref="AllReduceMean"/> carries: every parameter that requires a gradient.</summary>
    public static long Floats(IEnumerable<Parameter> parameters) => parameters.Where(p => p.requires_grad).Sum(p => p.numel());

    /// <summary>Averages the gradients of <paramref name="parameters"/> over the ranks of <paramref name="comm"/>;
    /// nothing to do for one process. Parameters that do not require gradients are left out (every rank must
    /// freeze the same ones). Returns the number of floats all-reduced.</summary>
    public static long AllReduceMean(ICommunicator comm, IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(comm);
        var ps = parameters.Where(p => p.requires_grad).ToArray();
        long total = ps.Sum(p => p.numel());
        if (comm.Size == 1 || total == 0) return total;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var device = ps[0].device;
        var flat = cat(ps.Select(p => (p.grad is { } g ? g : zeros_like(p)).detach().flatten().to(ScalarType.Float32)).ToArray())
            .cpu().contiguous();
        comm.AllReduceMean(flat);
        long offset = 0;
        foreach (var p in ps)
        {
            var mean = flat.narrow(0, offset, p.numel()).view(p.shape).to(p.dtype, device);
            if (p.grad is { } g) g.copy_(mean);
            else p.grad = mean.DetachFromDisposeScope();
            offset += p.numel();
        }
        return total;
    }

    /// <summary>
    /// DDP's start: every floating-point tensor of <paramref name="tensors"/> (a model's parameters and buffers) is
    /// overwritten with rank <paramref name="root"/>'s, in one flat float32 broadcast. Integer buffers (BatchNorm's
    /// num_batches_tracked, which a momentum makes unused) keep each rank's value. Returns the floats broadcast.
    /// </summary>
    public static long Broadcast(ICommunicator comm, IEnumerable<Tensor> tensors, int root = 0)
    {
        ArgumentNullException.ThrowIfNull(comm);
        var ts = tensors.Where(t => t.is_floating_point()).ToArray();
        long total = ts.Sum(t => t.numel());
        if (comm.Size == 1 || total == 0) return total;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = cat(ts.Select(t => t.detach().flatten().to(ScalarType.Float32, CPU)).ToArray()).contiguous();
        comm.Broadcast(flat, root);
        long offset = 0;
        foreach (var t in ts)
        {
            t.copy_(flat.narrow(0, offset, t.numel()).view(t.shape));
            offset += t.numel();
        }
        return total;
    }
}
