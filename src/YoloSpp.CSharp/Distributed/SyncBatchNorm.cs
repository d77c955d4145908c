using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Distributed;

/// <summary>
/// A sum over the ranks as an autograd operation: the forward all-reduces the values, the backward all-reduces the
/// gradients (every rank's output is the same sum, so the gradient of each rank's input is the sum of every rank's
/// output gradient). This makes SyncBatchNorm's backward follow from the forward.
/// </summary>
internal sealed class AllReduceSumFunction : autograd.SingleTensorFunction<AllReduceSumFunction>
{
    /// <inheritdoc/>
    public override string Name => nameof(AllReduceSumFunction);

    /// <summary>vars: the tensor, the <see cref="ICommunicator"/>.</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var comm = (ICommunicator)vars[1];
        ctx.save_data("comm", comm);
        return Reduce(comm, (Tensor)vars[0]);
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output) =>
        [Reduce((ICommunicator)ctx.get_data("comm"), grad_output), null!];

    static Tensor Reduce(ICommunicator comm, Tensor x)
    {
        var buffer = x.detach().to(ScalarType.Float32, CPU).contiguous().clone();
        comm.AllReduceSum(buffer);
        return buffer.to(x.dtype, x.device);
    }

    /// <summary>The sum of <paramref name="x"/> over the ranks, differentiable.</summary>
    public static Tensor Apply(Tensor x, ICommunicator comm) => apply(x, comm);
}

/// <summary>
/// SyncBatchNorm's train-mode forward (torch.nn.SyncBatchNorm): the batch statistics are those of every rank's
/// batch together, as if one process had the whole global batch. Two passes, as a single process computes them:
/// the per-channel sums and element counts are all-reduced for the mean, then the sums of squared deviations from it
/// for the (biased) variance. Gradients flow through both all-reduces. The running statistics are updated as
/// BatchNorm does (momentum, unbiased variance of the global batch), identically on every rank.
/// </summary>
internal static class SyncBatchNormForward
{
    /// <summary>Normalises <paramref name="input"/> [N, C, H, W] with the statistics of every rank's batch.</summary>
    public static Tensor Forward(Tensor input, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar,
        double momentum, double eps, ICommunicator comm)
    {
        var x = input.dtype == ScalarType.Float32 ? input : input.to(ScalarType.Float32);
        long c = x.shape[1];
        long[] dims = [0, 2, 3], channel = [1, c, 1, 1];
        long localCount = x.shape[0] * x.shape[2] * x.shape[3];
        using var count = tensor(new float[] { localCount }, device: x.device);
        var totals = AllReduceSumFunction.Apply(cat([x.sum(dims), count]), comm);
        double n = totals[c].cpu().item<float>();
        if (n <= 1)
            throw new ArgumentException($"SyncBatchNorm needs more than one value per channel over every rank, got input [{string.Join(", ", input.shape)}] on each");
        // owned Scalars only (additions take the process-wide alpha): a temporary one left to the finalizer can be
        // freed while libtorch reads it
        using Scalar inverseCount = (1.0 / n).ToScalar(), epsilon = eps.ToScalar(), keep = (1 - momentum).ToScalar(),
            meanRate = momentum.ToScalar(), varRate = (n / (n - 1) * momentum).ToScalar();
        var mean = totals.narrow(0, 0, c).mul(inverseCount);
        var centred = x - mean.view(channel);
        var variance = AllReduceSumFunction.Apply((centred * centred).sum(dims), comm).mul(inverseCount);
        var y = centred * variance.add(epsilon, Tensors.one).rsqrt().view(channel);
        if (weight is not null) y = y * weight.view(channel);
        if (bias is not null) y = y.add(bias.view(channel), Tensors.one);
        using (no_grad())
        {
            runningMean?.mul_(keep).add_(mean.detach().mul(meanRate), Tensors.one);
            runningVar?.mul_(keep).add_(variance.detach().mul(varRate), Tensors.one);
        }
        return input.dtype == ScalarType.Float32 ? y : y.to(input.dtype);
    }
}
