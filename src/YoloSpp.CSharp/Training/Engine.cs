using System.Diagnostics;
using TorchSharp;
using YoloSpp.Data;
using YoloSpp.Distributed;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>How one epoch trains (the arguments of the reference's train_one_epoch).</summary>
/// <param name="Epoch">Epoch (0-based).</param>
/// <param name="Epochs">Total epochs (for the cosine schedule).</param>
/// <param name="Hyp">Hyperparameters (already adjusted for the dataset).</param>
/// <param name="Accumulate">Batches per optimizer step.</param>
/// <param name="Warmup">Epoch-0 warmup (LR factor 1/1000 → 1 over min(1000, batches − 1) iterations, accumulate 1).</param>
/// <param name="MultiScaleGrid">Multi-scale range in grid units (size = k·32), null for fixed-size batches.</param>
/// <param name="ImageSize">Size the loader produces (multi-scale resizes from it).</param>
/// <param name="Random">Draws of the multi-scale sizes.</param>
/// <param name="TimeLeft">Stop the epoch early once this much time has passed; null for no limit.</param>
internal sealed record EpochSettings(int Epoch, int Epochs, HyperParameters Hyp, int Accumulate, bool Warmup,
    (int Min, int Max)? MultiScaleGrid, int ImageSize, Random Random, TimeSpan? TimeLeft)
{
    /// <summary>Convolutions' type during the epoch (<see cref="MixedPrecision.ComputeType"/>); null: float32.</summary>
    public ScalarType? ComputeType { get; init; }
    /// <summary>The ranks of a data-parallel run (gradients averaged before each optimizer step, losses reduced,
    /// stops agreed); null: one process.</summary>
    public ICommunicator? Communicator { get; init; }
    /// <summary>Shown each batch as the loader made it, with its index in the epoch, before the step (e.g. to draw the
    /// first ones); null: none.</summary>
    public Action<int, DataBatch>? OnBatch { get; init; }
    /// <summary>The weight average updated after every optimizer step; null: none.</summary>
    public ModelEma? Ema { get; init; }
}

/// <summary>What an epoch did.</summary>
/// <param name="MeanLosses">Mean box, objectness, class and total loss.</param>
/// <param name="LearningRate">LR of the last batch.</param>
/// <param name="Batches">Batches trained.</param>
/// <param name="Images">Images trained.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="Cancelled">Stopped by the cancellation token.</param>
/// <param name="TimeUp">Stopped by the time limit.</param>
/// <param name="NonFinite">Set when a loss was not finite: the parts and the batch's image paths (training must stop).</param>
internal sealed record EpochOutcome(LossValues MeanLosses, double LearningRate, int Batches, int Images, TimeSpan Elapsed,
    bool Cancelled, bool TimeUp, string? NonFinite)
{
    /// <summary>Several ranks: the optimizer steps whose gradients were all-reduced, and the time those took.</summary>
    public (int Steps, TimeSpan Time) GradientSync { get; init; }
}

/// <summary>The reference's engine: train_one_epoch with its collaborators passed in (evaluation is <see cref="YoloSpp.Evaluation.Evaluator"/>).</summary>
internal static class Engine
{
    /// <summary>
    /// One batch of the reference's train_one_epoch: forward in train mode, compute_loss, backward of
    /// loss / accumulate (through the loss scaler), and, when <paramref name="step"/>, the optimizer step and
    /// zero_grad. Returns the loss values; a non-finite total is returned without backward (training must stop).
    /// </summary>
    public static LossValues TrainStep(DarkNet model, IOptimizer optimizer, YoloLoss loss, LossScaler scaler, Tensor images, Tensor targets,
        double gr, int accumulate, bool step) => TrainStep(model, optimizer, loss, scaler, images, targets, gr, accumulate, step, null, null);

    /// <summary>
    /// <see cref="TrainStep(DarkNet, IOptimizer, YoloLoss, LossScaler, Tensor, Tensor, double, int, bool)"/> as one rank of
    /// <paramref name="comm"/> (train_multi_GPU.py's DDP): the loss values returned are the mean over the ranks
    /// (reduce_dict), checked for finiteness before backward so that every rank stops together, and the gradients
    /// are averaged over the ranks (one flat all-reduce) before the optimizer step. Gradients accumulated over several
    /// batches are averaged once, at the step: the mean of sums is the sum of the means DDP would all-reduce per backward.
    /// <paramref name="syncWatch"/>, when given, runs while the gradients are averaged.
    /// </summary>
    public static LossValues TrainStep(DarkNet model, IOptimizer optimizer, YoloLoss loss, LossScaler scaler, Tensor images, Tensor targets,
        double gr, int accumulate, bool step, ICommunicator? comm, Stopwatch? syncWatch) =>
        TrainStep(model, optimizer, loss, scaler, images, targets, gr, accumulate, step, comm, syncWatch, null);

    /// <summary>
    /// The step, and when <paramref name="phases"/> is given the seconds of its four parts in it: the forward pass, the
    /// loss (its values read back), backward, the optimizer step with zero_grad; 0 for a part that did not run (after a
    /// non-finite loss, or without <paramref name="step"/>).
    /// </summary>
    internal static LossValues TrainStep(DarkNet model, IOptimizer optimizer, YoloLoss loss, LossScaler scaler, Tensor images, Tensor targets,
        double gr, int accumulate, bool step, ICommunicator? comm, Stopwatch? syncWatch, double[]? phases)
    {
        using var scope = NewDisposeScope();
        if (phases is not null) Array.Clear(phases);
        long start = Stopwatch.GetTimestamp();
        var pred = model.forward(images).Raw;
        long forwardEnd = Stopwatch.GetTimestamp();
        var parts = loss.Compute(pred, targets, gr);
        bool distributed = comm is { Size: > 1 };
        var values = distributed ? Reduced(parts, comm!) : parts.ToValues();
        long lossEnd = Stopwatch.GetTimestamp();
        if (phases is not null)
        {
            phases[0] = Stopwatch.GetElapsedTime(start, forwardEnd).TotalSeconds;
            phases[1] = Stopwatch.GetElapsedTime(forwardEnd, lossEnd).TotalSeconds;
        }
        if (!values.IsFinite) return values;
        using (var inv = (1.0 / accumulate).ToScalar()) scaler.ScaleLoss(parts.Total.mul(inv)).backward();
        long backwardEnd = Stopwatch.GetTimestamp();
        if (phases is not null) phases[2] = Stopwatch.GetElapsedTime(lossEnd, backwardEnd).TotalSeconds;
        if (step)
        {
            if (distributed)
            {
                syncWatch?.Start();
                GradientSync.AllReduceMean(comm!, optimizer.Parameters);
                syncWatch?.Stop();
            }
            scaler.Step(optimizer);
            scaler.Update();
            optimizer.ZeroGrad();
            if (phases is not null) phases[3] = Stopwatch.GetElapsedTime(backwardEnd).TotalSeconds;
        }
        return values;
    }

    /// <summary>reduce_dict: the four loss values averaged over the ranks (one all-reduce).</summary>
    static LossValues Reduced(LossResult parts, ICommunicator comm)
    {
        using var scope = NewDisposeScope();
        var v = stack(new[] { parts.Box.detach(), parts.Objectness.detach(), parts.Class.detach(), parts.Total.detach() })
            .to(ScalarType.Float32, CPU).contiguous().clone();
        comm.AllReduceMean(v);
        var d = v.to(float64).data<double>().ToArray();
        return new LossValues(d[0], d[1], d[2], d[3]);
    }

    /// <summary>Whether any rank asks to stop (cancellation, time limit), so that every rank stops after the same batch.</summary>
    static (bool Cancel, bool TimeUp) AgreedStop(ICommunicator? comm, bool cancel, bool timeUp)
    {
        if (comm is not { Size: > 1 }) return (cancel, timeUp);
        using var flags = tensor(new float[] { cancel ? 1 : 0, timeUp ? 1 : 0 });
        comm.AllReduceSum(flags);
        var f = flags.data<float>().ToArray();
        return (f[0] > 0, f[1] > 0);
    }

    /// <summary>
    /// One epoch of the reference's train_one_epoch: per batch, optional multi-scale resize (bilinear, to a
    /// 32-multiple), <see cref="TrainStep(DarkNet, IOptimizer, YoloLoss, LossScaler, Tensor, Tensor, double, int, bool, ICommunicator?, Stopwatch?)"/> (as a rank of the epoch settings' communicator), an optimizer step after every batch with ni mod accumulate = 0
    /// (ni = i + nb·epoch, as the reference counts; gradients left over at the end of an epoch carry into the next,
    /// as there), and the warmup LR in epoch 0. The cosine LR of the epoch is set at its start (what LambdaLR stepped
    /// once per epoch shows).
    /// </summary>
    public static EpochOutcome TrainOneEpoch(DarkNet model, IOptimizer optimizer, YoloDataLoader loader, YoloLoss loss,
        LossScaler scaler, Device device, EpochSettings s, IProgress<TrainProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        model.train();
        var previousComputeType = model.ComputeType;
        model.ComputeType = s.ComputeType;
        try
        {
            return TrainBatches(model, optimizer, loader, loss, scaler, device, s, progress, cancellation);
        }
        finally { model.ComputeType = previousComputeType; }
    }

    static EpochOutcome TrainBatches(DarkNet model, IOptimizer optimizer, YoloDataLoader loader, YoloLoss loss,
        LossScaler scaler, Device device, EpochSettings s, IProgress<TrainProgress>? progress,
        CancellationToken cancellation)
    {
        int nb = loader.BatchCount;
        var hyp = s.Hyp;
        double epochLr = hyp.Lr0 * Schedule.cosine(s.Epochs, hyp.Lrf, s.Epoch);
        bool warm = s.Warmup && s.Epoch == 0;
        int warmupIters = Schedule.warmupIterations(nb);
        int acc = warm ? 1 : s.Accumulate;
        optimizer.LearningRate = warm ? hyp.Lr0 * Schedule.warmup(warmupIters, 1.0 / 1000, 0) : epochLr;
        var mloss = default(LossValues);
        double nowLr = optimizer.LearningRate;
        int imgSize = s.ImageSize, seen = 0, i = 0, warmStep = 0;
        var watch = Stopwatch.StartNew();
        var syncWatch = new Stopwatch();
        int syncs = 0;
        bool cancelled = false, timeUp = false;
        foreach (var batch in loader.Epoch(s.Epoch))
        {
            using var scope = NewDisposeScope();
            using var _ = batch;
            int ni = Schedule.integratedBatch(nb, s.Epoch, i);
            bool boundary = Schedule.isBoundary(acc, ni);
            s.OnBatch?.Invoke(i, batch);
            var imgs = batch.Images.to(device);
            var targets = batch.Targets.to(device);
            if (s.MultiScaleGrid is { } grid)
            {
                if (boundary) imgSize = s.Random.Next(grid.Min, grid.Max + 1) * DarkNet.GridStride;
                double sf = imgSize / (double)Math.Max(imgs.shape[2], imgs.shape[3]);
                if (sf != 1)
                {
                    var ns = new[] { imgs.shape[2], imgs.shape[3] }.Select(x => (long)Math.Ceiling(x * sf / DarkNet.GridStride) * DarkNet.GridStride).ToArray();
                    imgs = nn.functional.interpolate(imgs, size: ns, mode: InterpolationMode.Bilinear, align_corners: false);
                }
            }
            var values = TrainStep(model, optimizer, loss, scaler, imgs, targets, hyp.GrAt(ni), acc, boundary, s.Communicator, syncWatch);
            // yolov5: ema.update(model) after each optimizer step (a non-finite loss stops before the step)
            if (boundary && values.IsFinite) s.Ema?.Update();
            if (boundary && values.IsFinite && s.Communicator is { Size: > 1 }) syncs++;
            mloss = mloss.RunningMean(values, i);
            if (!values.IsFinite)
                return new EpochOutcome(mloss, nowLr, i, seen, watch.Elapsed, false, false,
                    $"non-finite loss, ending training: box {values.Box}, obj {values.Objectness}, cls {values.Class}, total {values.Total}; " +
                    $"training image paths: {string.Join(",", batch.Paths)}");
            nowLr = optimizer.LearningRate;
            if (warm && boundary) optimizer.LearningRate = hyp.Lr0 * Schedule.warmup(warmupIters, 1.0 / 1000, ++warmStep);
            seen += (int)imgs.shape[0];
            i++;
            if (progress is not null && (i % 5 == 0 || i == nb))
                progress.Report(new TrainProgress(s.Epoch, s.Epochs, i, nb, mloss, nowLr, seen * (s.Communicator?.Size ?? 1) / watch.Elapsed.TotalSeconds,
                    TimeSpan.FromSeconds((nb - i) * watch.Elapsed.TotalSeconds / i), null));
            (cancelled, timeUp) = AgreedStop(s.Communicator, cancellation.IsCancellationRequested,
                s.TimeLeft is { } left && watch.Elapsed >= left);
            if (cancelled || timeUp) break;
        }
        return new EpochOutcome(mloss, nowLr, i, seen, watch.Elapsed, cancelled, timeUp, null) { GradientSync = (syncs, syncWatch.Elapsed) };
    }

    /// <summary>
    /// The reference's multi-scale range for an image size, in grid units: floor(img // 1.5 / 32) to
    /// floor(img // 0.667 / 32) (train.py); training loads images at the maximum and resizes batches down.
    /// </summary>
    public static (int Min, int Max) MultiScaleGrid(int imageSize) =>
        ((int)Math.Floor(Math.Floor(imageSize / 1.5) / DarkNet.GridStride), (int)Math.Floor(Math.Floor(imageSize / 0.667) / DarkNet.GridStride));
}
