using System.Diagnostics;
using TorchSharp;
using YoloSpp.Data;
using YoloSpp.Detection;
using YoloSpp.Distributed;
using YoloSpp.Evaluation;
using YoloSpp.IO;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>What step 1 (data) prepares: the dataset description, the hyperparameters adjusted for it, and the
/// training and validation sets with the training loader.</summary>
public sealed class TrainingData
{
    internal TrainingData(DataDescription files, HyperParameters baseHyp, HyperParameters hyp, YoloDataset train, YoloDataset valid,
        int trainSize, (int Min, int Max)? multiScaleGrid, bool singleClass, ICommunicator communicator)
    {
        (Files, BaseHyp, Hyp, Train, Valid, TrainSize, MultiScaleGrid, SingleClass, Communicator) =
            (files, baseHyp, hyp, train, valid, trainSize, multiScaleGrid, singleClass, communicator);
        Loader = new YoloDataLoader(train);
    }

    /// <summary>The processes of the run: <see cref="ICommunicator.Size"/> 1 for one process; several ranks of a
    /// data-parallel run each train on their shard of <see cref="Train"/> (see <see cref="TrainSteps.Data"/>).</summary>
    public ICommunicator Communicator { get; }
    /// <summary>Whether this process prints, evaluates and writes the run's files (rank 0).</summary>
    public bool IsMainRank => Communicator.Rank == 0;

    /// <summary>The .data file and its class names.</summary>
    public DataDescription Files { get; }
    /// <summary>Whether every label was made class 0 (<see cref="TrainOptions.SingleClass"/>).</summary>
    public bool SingleClass { get; }
    /// <summary>Number of classes (1 when <see cref="SingleClass"/>).</summary>
    public int NumClasses => SingleClass ? 1 : Files.Classes;
    /// <summary>Class names, in class order (one, "object" or the dataset's only name, when <see cref="SingleClass"/>).</summary>
    public IReadOnlyList<string> ClassNames => !SingleClass ? Files.Names : Files.Classes == 1 ? Files.Names : ["object"];
    /// <summary>The hyperparameters as given (a file or a built-in recipe), before any adjustment; checkpoints record them.</summary>
    internal HyperParameters BaseHyp { get; }
    /// <summary>Hyperparameters with train.py's adjustments (cls × nc/80, obj × img/320), and for several ranks
    /// train_multi_GPU.py's lr0 × max(1, ranks · batch / 64).</summary>
    public HyperParameters Hyp { get; }
    /// <summary>The training set (augmented as the options say).</summary>
    public YoloDataset Train { get; }
    /// <summary>The validation set (rect batches, no augmentation).</summary>
    public YoloDataset Valid { get; }
    /// <summary>The training loader.</summary>
    public YoloDataLoader Loader { get; }
    /// <summary>Size the training images are loaded at (the multi-scale maximum, or the image size).</summary>
    public int TrainSize { get; }
    /// <summary>Multi-scale range in grid units, or null for fixed-size batches.</summary>
    public (int Min, int Max)? MultiScaleGrid { get; }
}

/// <summary>
/// The reference's train.py as five named steps, the only training loop of the project: <see cref="Trainer"/>,
/// <c>scripts/train.fsx</c> and <c>yolospp bench</c> call them. 1 <see cref="Data"/>, 2 <see cref="Model"/>,
/// 3 <see cref="Optimizer"/>, 4 <see cref="Loss"/>, 5 <see cref="Fit"/> (epochs of train_one_epoch, evaluate, log,
/// checkpoint). Options come from <see cref="TrainOptions"/>; resuming is a .ckpt in <see cref="TrainOptions.Weights"/>.
/// </summary>
public static partial class TrainSteps
{
    /// <summary>
    /// Step 1: the .data file and names, the hyperparameters, the training set and loader (at the multi-scale maximum
    /// when multi-scale is on, as the reference) and the validation set (rect batches). With a communicator of several
    /// ranks (an MPI launch, <see cref="Distributed.Communicator.FromEnvironment"/>), this is train_multi_GPU.py's
    /// setup: the loader yields this rank's DistributedSampler shard of every epoch in full batches, lr0 is scaled by
    /// max(1, ranks · batch / 64), only rank 0 logs, and the caller owns the communicator. Null: one process.
    /// </summary>
    /// <exception cref="NotSupportedException">The process is one of several an MPI launcher started but no
    /// communicator was given (each rank would train alone), or rect batches are asked of several ranks.</exception>
    public static TrainingData Data(TrainOptions o, Action<string>? log = null, ICommunicator? communicator = null)
        => DataCore(o, log, communicator ?? SingleProcess());

    static ICommunicator SingleProcess()
    {
        if (Distributed.Communicator.LaunchSize > 1)
            throw new NotSupportedException(
                $"this process is one of {Distributed.Communicator.LaunchSize} started by an MPI launcher, but no communicator was " +
                "given to TrainSteps.Data: each rank would train alone and overwrite the others' checkpoints; pass " +
                "Communicator.FromEnvironment() (yolospp train and scripts/train.fsx do)");
        return new SingleProcessCommunicator();
    }

    /// <summary>Only rank 0 logs.</summary>
    static Action<string>? MainRankLog(ICommunicator comm, Action<string>? log) => comm.Rank == 0 ? log : null;

    /// <summary>
    /// Torch threads for one of several ranks on a machine: the cores shared out among the machine's ranks
    /// (<see cref="Distributed.Communicator.LocalSize"/>), unless OMP_NUM_THREADS says otherwise, as torchrun does.
    /// </summary>
    static void ShareCores(ICommunicator comm, Action<string>? log)
    {
        if (comm.Size <= 1 || Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is { Length: > 0 }) return;
        int local = Distributed.Communicator.LocalSize ?? comm.Size;
        int threads = Math.Max(1, Environment.ProcessorCount / local);
        if (get_num_threads() != threads)
        {
            set_num_threads(threads);
            log?.Invoke($"{local} rank(s) on this machine: {threads} torch thread(s) each (set OMP_NUM_THREADS to choose)");
        }
    }

    static TrainingData DataCore(TrainOptions o, Action<string>? log, ICommunicator comm)
    {
        ArgumentNullException.ThrowIfNull(o);
        o.Validate();
        log = MainRankLog(comm, log);
        if (comm.Size > 1 && o.Rect)
            throw new NotSupportedException($"--rect cannot train on {comm.Size} ranks: rect batch shapes belong to consecutive batches of the whole list, which sharding splits");
        if (comm.Size > 1) log?.Invoke($"data-parallel training: {comm.Size} ranks via {comm.Name}, {o.BatchSize} images per rank and batch");
        ShareCores(comm, log);
        var files = DataFiles.Load(o.Data);
        // train.py: nc = 1 if opt.single_cls else int(data_dict["classes"]), then hyp["cls"] *= nc / 80
        int nc = o.SingleClass ? 1 : files.Classes;
        var baseHyp = o.Hyp is null ? HyperParameters.Default : HyperParameters.LoadOrNamed(o.Hyp);
        var single = baseHyp.AdjustedFor(nc, o.ImageSize);
        var hyp = single.AdjustedForWorld(comm.Size, o.BatchSize);
        if (hyp.Lr0 != single.Lr0)
            log?.Invoke($"lr0 scaled to {hyp.Lr0:G6} for {comm.Size} ranks × batch {o.BatchSize} (train_multi_GPU.py: × max(1, ranks·batch/64))");
        (int Min, int Max)? grid = null;
        int trainSize = o.ImageSize;
        if (o.MultiScale)
        {
            grid = Engine.MultiScaleGrid(o.ImageSize);
            trainSize = grid.Value.Max * DarkNet.GridStride;
            log?.Invoke($"multi-scale training, image sizes [{grid.Value.Min * DarkNet.GridStride}, {trainSize}]");
        }
        // labels are checked against the dataset's classes, then made class 0 when single-class
        var train = YoloDataset.Open(files.Train, files.Classes, new DataOptions
        {
            ImageSize = trainSize, BatchSize = o.BatchSize, Augment = o.Augment, Mosaic = o.Mosaic, Rect = o.Rect,
            Hyp = hyp, Shuffle = !o.Rect, Seed = o.Seed, SingleClass = o.SingleClass, CacheImages = o.CacheImages,
            ShardCount = comm.Size, ShardRank = comm.Rank,
        });
        var valid = YoloDataset.Open(files.Valid, files.Classes, new DataOptions
        {
            ImageSize = o.ImageSize, BatchSize = o.EvalBatchSize ?? o.BatchSize, Rect = true, Hyp = hyp,
            SingleClass = o.SingleClass, CacheImages = o.CacheImages,
        });
        // never train on nothing: the reference stops on a training set without labels ("No labels found")
        if (train.Scan.NoLabels is { } none) throw new InvalidInputException(files.Train, none);
        log?.Invoke(train.Scan.Summary);
        LogWarnings(train.Scan, log);
        log?.Invoke(valid.Scan.Summary);
        LogWarnings(valid.Scan, log);
        if (valid.Scan.NoLabels is { } noValid) log?.Invoke($"warning: {files.Valid}: {noValid}; its mAP will be -1");
        var data = new TrainingData(files, baseHyp, hyp, train, valid, trainSize, grid, o.SingleClass, comm);
        if (comm.Size > 1 && data.Loader.BatchCount == 0)
            throw new ArgumentException(
                $"{files.Train}: {train.Count} training images over {comm.Size} ranks give each fewer than --batch-size {o.BatchSize}; use a smaller batch or fewer ranks");
        return data;
    }

    /// <summary>Warnings shown per set before the rest are counted (check-data lists them all).</summary>
    const int WarningsShown = 10;

    static void LogWarnings(ScanResult scan, Action<string>? log)
    {
        if (log is null) return;
        foreach (var w in scan.Warnings.Take(WarningsShown)) log($"warning: {w}");
        if (scan.Warnings.Count > WarningsShown)
            log($"... and {scan.Warnings.Count - WarningsShown} more warnings about {scan.Source} (yolospp check-data lists them all)");
    }

    /// <summary>
    /// Step 2: the network from the cfg (a file, or a built-in topology by name with the data's class count; seeded
    /// with <see cref="TrainOptions.Seed"/>), its starting weights, and what is
    /// frozen, on <paramref name="device"/>. A .ckpt restores every tensor and the frozen set it was trained with;
    /// other weights load the tensors whose sizes match (a report goes to <paramref name="log"/>). Freezing, one rule:
    /// <see cref="TrainOptions.FreezeLayers"/> trains only the prediction convs (the reference's --freeze-layers);
    /// otherwise, starting from pretrained weights (not a checkpoint) on a network with yolov3-spp's Darknet-53
    /// backbone, modules 0..74 are frozen as the reference does when it fine-tunes (<see cref="TrainOptions.FreezeBackbone"/>
    /// false keeps them trainable). A network trained from random initialisation is never frozen. Several ranks
    /// (<see cref="TrainingData.Communicator"/>): every rank builds and loads the same, then takes rank 0's tensors
    /// (DDP's broadcast), and BatchNorm is synchronised across the ranks as <see cref="TrainOptions.SyncBatchNorm"/> says.
    /// </summary>
    public static DarkNet Model(TrainOptions o, TrainingData data, Device device, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(data);
        var comm = data.Communicator;
        log = MainRankLog(comm, log);
        manual_seed(o.Seed);
        var config = ModelCfg.LoadOrTopology(o.Cfg, data.NumClasses);
        bool resuming = o.Resumes;
        // yolov5's check_anchors before training (and with --autoanchor, new anchors when they fit poorly); a resume
        // keeps the anchors its run chose
        if (!resuming) config = AnchorCheck.Check(config, data.Train, o.ImageSize, o.Seed, data.Hyp.IouThreshold, o.AutoAnchor, o.Data, log);
        else if (o.AutoAnchor) config = ResumedAnchors(o, config, log);
        var model = new DarkNet(config);
        try
        {
            model.RequireRgb();
            if (model.NumClasses != data.NumClasses)
                throw new ArgumentException(data.SingleClass
                    ? $"{o.Cfg} has {model.NumClasses} classes but --single-cls trains one: write a one-class cfg (`yolospp cfg --topology NAME --classes 1 --output F`, or `yolospp dataset-cfg` with a one-line names file)"
                    : $"{o.Cfg} has {model.NumClasses} classes but {o.Data} has {data.NumClasses}: write a matching cfg with `yolospp dataset-cfg`");
            if (!string.IsNullOrEmpty(o.Weights))
            {
                if (resuming)
                {
                    var info = CheckpointFile.ReadInfo(o.Weights);
                    CheckSameCfg(o, info, model.Config, log);
                    // a resume continues the trained weights (a run with an average keeps them beside it)
                    log?.Invoke($"{o.Weights}: {CheckpointFile.LoadModel(o.Weights, model, trainingState: true)}");
                    if (info.Trainable is { } trainable) ModelWeights.FreezeAllBut(model, trainable);
                }
                else
                {
                    log?.Invoke($"{o.Weights}: {ModelWeights.Load(model, o.Weights)}");
                    if (o.Freeze is null && !o.FreezeLayers && o.FreezeBackbone && model.Config.HasDarknet53Backbone)
                    {
                        ModelWeights.Freeze(model, onlyPredictors: false, lastFrozen: Topology.darknet53Modules - 1);
                        log?.Invoke($"freezing the Darknet-53 backbone (modules 0..{Topology.darknet53Modules - 1}) as the reference does when fine-tuning");
                    }
                }
            }
            if (o.FreezeLayers) ModelWeights.Freeze(model, onlyPredictors: true);
            if (!resuming && o.Freeze is { } n) FreezeLeading(model, n == TrainOptions.Backbone ? Backbone(model, o) : n, n == TrainOptions.Backbone, log);
            model.to(device);
            if (comm.Size > 1)
            {
                GradientSync.Broadcast(comm, model.parameters().Cast<Tensor>().Concat(model.buffers()));
                if (o.SyncBatchNorm ?? !o.FreezeLayers)
                {
                    model.SyncBatchNorm = comm;
                    log?.Invoke($"SyncBatchNorm: batch statistics over the {comm.Size} ranks' batches");
                }
            }
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A resumed checkpoint must continue the network it trained: its cfg (kept in the checkpoint) against the one
    /// given now, layer by layer. Edited anchors or activations would load into a network that computes something
    /// else, so a difference is refused, naming it, unless <see cref="TrainOptions.AllowCfgChange"/> says it is meant.
    /// </summary>
    /// <summary>The cfg with the anchors a resumed <c>--autoanchor</c> run trained with (its checkpoint's cfg holds them).</summary>
    static DarknetConfig ResumedAnchors(TrainOptions o, DarknetConfig current, Action<string>? log)
    {
        var info = CheckpointFile.ReadInfo(o.Weights!);
        if (string.IsNullOrWhiteSpace(info.Cfg)) return current;
        DarknetConfig trained;
        try { trained = ModelCfg.Parse($"{o.Weights} (its cfg)", info.Cfg); }
        catch (InvalidInputException) { return current; }
        if (trained.Anchors.SequenceEqual(current.Anchors) || trained.Anchors.Count != current.Anchors.Count) return current;
        log?.Invoke($"{o.Weights}: resuming with the anchors its run evolved (--autoanchor)");
        return current.WithAnchors(trained.Anchors);
    }

    static void CheckSameCfg(TrainOptions o, CheckpointInfo info, DarknetConfig current, Action<string>? log)
    {
        if (string.IsNullOrWhiteSpace(info.Cfg)) return;
        var trained = CfgParse.parse($"{o.Weights} (its cfg)", info.Cfg);
        if (trained.IsError)
        {
            log?.Invoke($"{o.Weights}: the cfg it holds no longer parses ({trained.ErrorValue.Head.Reason}); not compared with {o.Cfg}");
            return;
        }
        if (CfgCheck.difference(trained.ResultValue, current.Core) is not { } diff) return;
        if (o.AllowCfgChange) { log?.Invoke($"{o.Weights}: resuming with a changed cfg (--allow-cfg-change): {diff.Value}"); return; }
        throw new InvalidInputException(o.Cfg,
            $"differs from the cfg {o.Weights} was trained with: {diff.Value}; resume with the checkpoint's cfg, or pass --allow-cfg-change if the change is meant (to train its weights on other data or classes, start a new run from them with --fine-tune)");
    }

    /// <summary>Step 4: the reference's compute_loss over the network's yolo layers, with the hyperparameters' gains.</summary>
    public static YoloLoss Loss(DarkNet model, TrainingData data, Device device) => YoloLoss.For(model, data.Hyp, device);

    /// <summary>Every rank trains in one precision: bfloat16 where every rank decided on (each decides on its own
    /// CPU), else float32 on all, with the reason of the first rank that decided off.</summary>
    internal static (bool On, string Why) AgreeOnBf16(ICommunicator comm, bool on, string why)
    {
        var all = comm.AllGather(System.Text.Encoding.UTF8.GetBytes((on ? "1" : "0") + why))
            .Select(b => System.Text.Encoding.UTF8.GetString(b)).ToArray();
        int off = Array.FindIndex(all, a => a.StartsWith('0'));
        return off < 0
            ? (true, $"{why} (every one of {comm.Size} ranks decided on)")
            : (false, $"bfloat16 off on every rank: rank {off} of {comm.Size} decided off ({all[off][1..]})");
    }

    /// <summary>
    /// Step 5: the epochs. Each trains one epoch (<see cref="Engine.TrainOneEpoch"/>: cosine LR, epoch-0 warmup,
    /// accumulation, multi-scale draws seeded by seed + epoch so that a resumed run draws as an uninterrupted one),
    /// evaluates on the validation set (every epoch, or only the last with <see cref="TrainOptions.NoTest"/>), appends
    /// the results line, TensorBoard scalars and the plot, and writes last.ckpt (and best.ckpt when the mAP@0.5:0.95 is
    /// the best so far). A .ckpt in <see cref="TrainOptions.Weights"/> continues after its last completed epoch.
    /// Cancellation stops after the current batch and saves a checkpoint that redoes the interrupted epoch; a
    /// non-finite loss saves one and throws <see cref="NonFiniteLossException"/>. Several ranks: each trains its
    /// shard with gradients averaged before every optimizer step (<see cref="GradientSync"/>), the accumulation is
    /// max(round(64 / (ranks · batch)), 1) unless <see cref="TrainOptions.Accumulate"/> is set, the logged losses are
    /// the ranks' mean, and rank 0 alone evaluates, logs, plots and writes checkpoints (the others' result has no
    /// evaluation); every rank returns once rank 0 has written the epoch's files.
    /// </summary>
    public static TrainResult Fit(TrainOptions o, TrainingData data, DarkNet model, IOptimizer optimizer, YoloLoss loss, Device device,
        IProgress<TrainProgress>? progress = null, CancellationToken cancellation = default, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(data);
        var comm = data.Communicator;
        bool main = data.IsMainRank;
        log = MainRankLog(comm, log);
        if (!main) progress = null;
        var resume = o.Resumes ? CheckpointFile.ReadInfo(o.Weights!) : null;
        int startEpoch = resume is null ? 0 : resume.Epoch + 1, epochs = o.Epochs;
        if (resume is not null && epochs < startEpoch)
        {
            log?.Invoke($"{o.Weights} has been trained for {startEpoch} epochs; fine-tuning for {epochs} more");
            epochs += startEpoch;
        }
        double bestMap = resume?.BestMap ?? 0;
        bool bf16 = o.Bf16;
        if (!bf16 && o.Bf16Auto)
        {
            var (on, why) = YoloSpp.Platform.Bf16Support.Decide(model.ConvConfigs, device);
            if (comm.Size > 1) (on, why) = AgreeOnBf16(comm, on, why);
            log?.Invoke(why);
            bf16 = on;
        }
        else if (bf16 && YoloSpp.Platform.Bf16Support.ForcedWarning(device) is { } warning)
            log?.Invoke(warning);
        var precision = MixedPrecision.For(o.Amp, bf16, device);
        if (precision.ComputeType is not null) log?.Invoke(precision.ToString());
        var scaler = resume is null ? precision.CreateScaler() : new LossScaler(precision.ScaleLoss, resume.LossScale, resume.LossScaleGrowthTracker);
        int accumulate = o.Accumulate ?? YoloSpp.Training.Schedule.accumulate(o.BatchSize * comm.Size);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToArray();

        // rank 0 takes the run's folder (never an earlier run's; see RunFolder) and every rank learns which
        var (requested, reuse) = RequestedOutput(o);
        using var folder = main ? RunFolder.Claim(requested, reuse, o.ResultName) : null;
        var dir = RunFolder.Numbered(requested, ShareFolderNumber(comm, folder));
        if (folder?.Notice is { } notice) log?.Invoke(notice);
        using var logs = main ? new TrainingLog(dir, o.ResultName, resume?.TrainingResults, resume?.EpochsCsv) : null;
        var cfgText = model.Config.ToCfgText();
        var hypText = data.BaseHyp.ToString();
        string last = Path.Combine(dir, "last.ckpt"), bestPath = Path.Combine(dir, "best.ckpt");
        string? best = File.Exists(bestPath) && resume is not null ? bestPath : null;
        EvaluationResult? final = null;
        // the evaluation of the epoch best.ckpt holds: its pictures are drawn at the end (yolov5 validates best.pt)
        ValidationMetrics? bestValidation = null;
        int bestEpoch = -1;
        double? bestConfidence = resume?.BestConfidence;
        var started = Stopwatch.StartNew();
        bool cancelled = false, timeUp = false, patienceOut = false;
        int epochsDone = 0;
        string? stopReason = null;
        // the weight average (every rank holds the same: same steps from the same start); a resume restores it
        using var ema = o.Ema ? new ModelEma(model, resume?.EmaUpdates ?? 0) : null;
        if (ema is not null && resume is not null)
        {
            if (resume.EmaUpdates is null)
                log?.Invoke($"{o.Weights} was trained without --ema: the average starts from its weights");
            else CheckpointFile.LoadModel(o.Weights!, ema.Model);
        }
        var evaluated = ema?.Model ?? model;
        // the epoch of the best mAP so far, for --patience (a resumed run counts from its last epoch)
        int improvedAt = startEpoch - 1;
        // rank 0 alone writes; the others' copies are the same (averaged gradients from the same start)
        void Save(string path, int completedEpoch)
        {
            if (logs is null) return;
            Checkpoint.Save(path, model, optimizer,
                new CheckpointInfo(completedEpoch, bestMap, logs.ResultsText, scaler.Scale, scaler.GrowthTracker, cfgText, trainable, logs.EpochsText,
                    data.ClassNames.ToArray(), o.ImageSize, hypText, o.Data, Checkpoint.LibraryVersion, epochs, bestConfidence,
                    ema?.Updates, stopReason), ema?.Model);
        }

        // the training labels at a glance, as yolov5 draws them when a run starts; anchors --autoanchor chose in a cfg
        if (main && resume is null)
        {
            DatasetCharts.WriteLabels(data.Train, data.ClassNames, Path.Combine(dir, "labels.png"));
            if (o.AutoAnchor && !model.Config.SameNetworkAs(ModelCfg.LoadOrTopology(o.Cfg, data.NumClasses)))
                ModelCfg.Write(model.Config, Path.Combine(dir, AutoAnchorCfg));
        }
        for (int epoch = startEpoch; epoch < epochs && !cancelled && !timeUp && !patienceOut; epoch++)
        {
            var settings = new EpochSettings(epoch, epochs, data.Hyp, accumulate, o.Warmup, data.MultiScaleGrid, data.TrainSize,
                new Random(o.Seed + epoch), o.TimeLimit is { } limit ? limit - started.Elapsed : null)
            { ComputeType = precision.ComputeType, Communicator = comm, OnBatch = epoch == 0 && main ? PlotFirstBatches(dir, data.ClassNames) : null, Ema = ema };
            var outcome = Engine.TrainOneEpoch(model, optimizer, data.Loader, loss, scaler, device, settings, progress, cancellation);
            cancelled = outcome.Cancelled;
            timeUp = outcome.TimeUp;
            if (outcome.NonFinite is { } why)
            {
                Save(last, epoch - 1);
                comm.Barrier();
                throw new NonFiniteLossException($"{why}; {last} holds the weights and optimizer state at that point");
            }
            if (cancelled)
            {
                // the interrupted epoch is redone on resume: record the previous one as the last completed
                Save(last, epoch - 1);
                comm.Barrier();
                break;
            }
            if (outcome.GradientSync is { Steps: > 0 } sync)
                log?.Invoke($"epoch {epoch}: {sync.Steps} gradient all-reduce(s) of {GradientSync.Floats(optimizer.Parameters) * 4 / 1e6:F1} MB, " +
                    $"{sync.Time.TotalMilliseconds / sync.Steps:F1} ms each on rank 0 ({100 * sync.Time / outcome.Elapsed:F1} % of the epoch's training time)");
            bool lastEpoch = epoch == epochs - 1 || timeUp;
            EvaluationResult? eval = null;
            if (logs is not null)
            {
                if (!o.NoTest || lastEpoch)
                {
                    // the last epoch's evaluation draws its first batch with labels and with predictions
                    eval = Evaluator.EvaluateWithLoss(evaluated, data.Valid, device, new EvaluationOptions { PlotDirectory = lastEpoch ? dir : null },
                        data.ClassNames, (raw, targets) =>
                        {
                            // yolov5's val.py: the training loss on the validation batches (no gradient, eval mode)
                            using var scope = NewDisposeScope();
                            var v = loss.Compute(raw, targets).ToValues();
                            return (v.Box, v.Objectness, v.Class);
                        }, cancellation);
                    final = eval;
                }
                logs.Add(new EpochRecord(epoch, eval?.Stats, outcome.MeanLosses, outcome.LearningRate)
                    { Precision = eval?.Validation?.Precision, Recall = eval?.Validation?.Recall, ValidationLoss = eval?.Loss });
                progress?.Report(new TrainProgress(epoch, epochs, outcome.Batches, data.Loader.BatchCount, outcome.MeanLosses, outcome.LearningRate,
                    outcome.Images * comm.Size / outcome.Elapsed.TotalSeconds, TimeSpan.Zero, eval));
                // --patience counts from the last epoch that beat the best (yolov5's EarlyStopping takes an equal
                // fitness as progress too; a plateau is not progress here)
                if (eval is not null && eval.Map > bestMap) (bestMap, improvedAt) = (eval.Map, epoch);
                if (o.Patience is { } patience && eval is not null && epoch - improvedAt >= patience && !lastEpoch)
                {
                    stopReason = $"stopped early at epoch {epoch}: no better mAP@0.5:0.95 for {patience} epochs (--patience; best {bestMap:0.0000} at epoch {improvedAt})";
                    log?.Invoke(stopReason);
                }
                // the epoch best.ckpt takes (below), or every evaluated epoch when only last.ckpt and epoch-N are kept
                if (eval?.Validation is { } v && (bestMap == eval.Map || bestValidation is null || !o.SaveBest))
                    (bestValidation, bestEpoch, bestConfidence) = (v, epoch, v.BestConfidence);
                Save(last, epoch);
                // as the reference: best.ckpt whenever this epoch's mAP equals the best so far (the first evaluation included)
                if (eval is not null && (bestMap == eval.Map || best is null) && o.SaveBest)
                {
                    AtomicFile.Copy(last, bestPath);
                    best = bestPath;
                }
                if (!o.SaveBest) AtomicFile.Copy(last, Path.Combine(dir, $"epoch-{epoch}.ckpt"));
            }
            // every rank waits for rank 0's evaluation and files, and learns whether it stops the run
            patienceOut = AgreedStop(comm, stopReason is not null);
            epochsDone++;
        }
        // the pictures of the best epoch's evaluation: PR, F1, P and R curves, the confusion matrix
        IReadOnlyList<string> plots = [];
        if (logs is not null && bestValidation is not null && !cancelled)
        {
            plots = bestValidation.WritePlots(dir);
            log?.Invoke($"validation plots of epoch {bestEpoch} (best.ckpt's): P {bestValidation.Precision:0.000}, R {bestValidation.Recall:0.000}, " +
                $"best F1 {bestValidation.F1:0.000} at confidence {bestValidation.BestConfidence:0.000}");
        }
        comm.Barrier();
        // only what exists: a run stopped before its first epoch ended has written last.ckpt and no results
        var result = new TrainResult(last, best, Written(Path.Combine(dir, o.ResultName)), Written(Path.Combine(dir, "results.png")),
            Written(Path.Combine(dir, "tensorboard")), epochsDone, final, cancelled, Written(Path.Combine(dir, "epochs.csv")), dir)
        {
            StopReason = stopReason,
            Plots = plots.Concat(Enumerable.Range(0, PlottedBatches).Select(i => Path.Combine(dir, $"train_batch{i}.jpg")))
                .Concat(new[] { "labels.png", "val_batch0_labels.jpg", "val_batch0_pred.jpg" }.Select(f => Path.Combine(dir, f))).Where(File.Exists).ToArray(),
        };
        // TensorBoard's images tab: the run's pictures and results.png, at the last epoch trained
        logs?.AddImages(result.Plots.Append(Path.Combine(dir, "results.png")).Where(File.Exists), Math.Max(startEpoch + epochsDone - 1, 0));
        return result;
    }
}
