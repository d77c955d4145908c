using TorchSharp;
using YoloSpp.Distributed;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace YoloSpp.Model;

/// <summary>
/// BatchNorm2d as PyTorch's (eps 1e-5, momentum 0.1, batch statistics in train mode, running statistics in eval
/// mode; parameters <c>weight</c>, <c>bias</c> and buffers <c>running_mean</c>, <c>running_var</c>,
/// <c>num_batches_tracked</c>), with the one difference that matters here: TorchSharp's own module counts batches
/// with <c>num_batches_tracked.add_(1)</c>, two temporary Scalars left to the finalizer that a GC on another
/// thread can free while libtorch reads them. This one counts with an owned Scalar. With <see cref="Sync"/> set to a
/// communicator of several ranks, train mode normalises with the statistics of every rank's batch (SyncBatchNorm).
/// </summary>
internal sealed class BatchNorm2d : TorchSharp.Modules.BatchNorm
{
    /// <summary>A BatchNorm2d over <paramref name="features"/> channels.</summary>
    public BatchNorm2d(long features, double eps = 1e-5, double momentum = 0.1)
        : base(features, eps, momentum, affine: true, track_running_stats: true, device: null, dtype: null, name: nameof(BatchNorm2d)) { }

    /// <summary>The ranks whose batches share statistics in train mode (SyncBatchNorm); null: this process's batch only.</summary>
    public Distributed.ICommunicator? Sync { get; set; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        ValidateInputDimensions(input);
        if (training) num_batches_tracked?.add_(Tensors.one, Tensors.one);
        if (training && Sync is { Size: > 1 } comm)
            return Distributed.SyncBatchNormForward.Forward(input, weight, bias, running_mean, running_var, momentum ?? 0.0, eps, comm);
        return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum ?? 0.0, eps);
    }

    /// <inheritdoc/>
    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.ndim != 4) throw new ArgumentException($"BatchNorm2d expects a 4-D input [N, C, H, W], got {input.ndim}-D");
    }
}

/// <summary>LeakyReLU (in place, as the reference builds it) whose negative slope is an owned Scalar: TorchSharp's
/// module converts the slope to a temporary Scalar on every call and leaves it to the finalizer.</summary>
internal sealed class LeakyReLU : nn.Module<Tensor, Tensor>
{
    readonly Scalar _slope;

    /// <summary>The negative slope (0.1 in Darknet cfgs).</summary>
    public double NegativeSlope { get; }

    /// <summary>Creates the activation.</summary>
    public LeakyReLU(double negativeSlope) : base(nameof(LeakyReLU))
    {
        NegativeSlope = negativeSlope;
        _slope = negativeSlope.ToScalar();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input) => input.leaky_relu_(_slope).alias();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _slope.Dispose();
        base.Dispose(disposing);
    }
}
