using TorchSharp;
using YoloSpp.Distributed;
using YoloSpp.Platform;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// The reference's train.py in one call: the five <see cref="TrainSteps"/> (data, model, optimizer, loss, fit) with
/// the options given. SGD (nesterov) over the trainable parameters, cosine LR per epoch with the epoch-0 warmup,
/// gradient accumulation, multi-scale batches, the F# core's loss, evaluation each epoch, checkpoints, results,
/// TensorBoard and a plot. Under an MPI launcher (mpirun -np N), every rank runs it: data-parallel training as the
/// reference's train_multi_GPU.py (see <see cref="TrainSteps"/>), rank 0 writing the outputs.
/// </summary>
public sealed class Trainer
{
    readonly TrainOptions _o;
    readonly Action<string> _log;
    readonly ICommunicator? _comm;

    /// <summary>Creates a trainer; <paramref name="log"/> receives one-line notices (device fallback, weights report…),
    /// on rank 0 only. <paramref name="communicator"/>: the ranks of a data-parallel run (the caller keeps it); null:
    /// <see cref="Run"/> opens <see cref="Communicator.FromEnvironment"/> itself, which is one process without mpirun.</summary>
    /// <exception cref="ArgumentException">An option is out of range (see <see cref="TrainOptions.Validate"/>).</exception>
    public Trainer(TrainOptions options, Action<string>? log = null, ICommunicator? communicator = null)
    {
        _o = options ?? throw new ArgumentNullException(nameof(options));
        _o.Validate();
        _log = log ?? (_ => { });
        _comm = communicator;
    }

    /// <summary>Runs the training. Cancellation stops after the current batch and saves a resumable last.ckpt.</summary>
    public TrainResult Run(IProgress<TrainProgress>? progress = null, CancellationToken cancellation = default)
    {
        using var own = _comm is null ? Communicator.FromEnvironment() : null;
        var comm = _comm ?? own!;
        var device = Backend.ResolveDevice(_o.Device, comm, comm.Rank == 0 ? _log : _ => { });
        var data = TrainSteps.Data(_o, _log, comm);
        using var model = TrainSteps.Model(_o, data, device, _log);
        using var optimizer = TrainSteps.Optimizer(_o, model, data, _log);
        var loss = TrainSteps.Loss(model, data, device);
        return TrainSteps.Fit(_o, data, model, optimizer, loss, device, progress, cancellation, _log);
    }
}
