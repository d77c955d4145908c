using System.Diagnostics;
using TorchSharp;
using YoloSpp.Data;
using YoloSpp.Training;
using static TorchSharp.torch;

namespace YoloSpp;

/// <summary>
/// The reference's train.py and train_one_epoch: data, model, optimizer, loss, train. SGD (nesterov) over the
/// trainable parameters, cosine LR per epoch with an optional epoch-0 warmup, gradient accumulation to 64 images,
/// multi-scale batches, the F# core's loss, evaluation each epoch, checkpoints, results, TensorBoard and a plot.
/// </summary>
public sealed class Trainer
{
    readonly TrainOptions _o;
    readonly Action<string> _log;

    /// <summary>Creates a trainer; <paramref name="log"/> receives one-line notices (device fallback, weights report…).</summary>
    public Trainer(TrainOptions options, Action<string>? log = null)
    {
        _o = options ?? throw new ArgumentNullException(nameof(options));
        _log = log ?? (_ => { });
        if (_o.ImageSize <= 0 || _o.ImageSize % 32 != 0) throw new ArgumentException($"--img-size {_o.ImageSize} must be a positive multiple of 32");
        if (_o.BatchSize < 1) throw new ArgumentException($"--batch-size {_o.BatchSize} must be >= 1");
        if (_o.Epochs < 1) throw new ArgumentException($"--epochs {_o.Epochs} must be >= 1");
    }

    /// <summary>Runs the training. Cancellation stops after the current batch and saves a resumable last.ckpt.</summary>
    public TrainResult Run(IProgress<TrainProgress>? progress = null, CancellationToken cancellation = default)
    {
        var device = Backend.ResolveDevice(_o.Device, _log);
        manual_seed(_o.Seed);
        var rng = new Random(_o.Seed);

        // ---- data: the .data file, its names, the train and valid lists
        var data = DataFiles.Load(_o.Data);
        int nc = data.Data.Classes;
        var hyp = (_o.Hyp is null ? HyperParameters.Default : HyperParameters.Load(_o.Hyp)).AdjustedFor(nc, _o.ImageSize);
        const int gs = 32;
        int gridMin = _o.ImageSize / gs, gridMax = _o.ImageSize / gs, trainSize = _o.ImageSize;
        if (_o.MultiScale)
        {
            // the reference: img // 1.5 and img // 0.667 (floor), then down to 32-multiples; train loads at the max
            (gridMin, gridMax) = Engine.MultiScaleGrid(_o.ImageSize);
            trainSize = gridMax * gs;
            _log($"multi-scale training, image sizes [{gridMin * gs}, {gridMax * gs}]");
        }
        var train = YoloDataset.Open(data.Data.Train, nc, new DataOptions
        {
            ImageSize = trainSize, BatchSize = _o.BatchSize, Augment = _o.Augment, Mosaic = _o.Mosaic, Rect = _o.Rect,
            Hyp = hyp, Shuffle = !_o.Rect, Seed = _o.Seed,
        });
        var valid = YoloDataset.Open(data.Data.Valid, nc, new DataOptions
        {
            ImageSize = _o.ImageSize, BatchSize = _o.EvalBatchSize ?? _o.BatchSize, Rect = true, Hyp = hyp,
        });
        var trainLoader = new YoloDataLoader(train);
        int nb = trainLoader.BatchCount;

        // ---- model
        using var model = DarkNet.FromCfgFile(_o.Cfg);
        if (model.NumClasses != nc)
            throw new ArgumentException($"{_o.Cfg} has {model.NumClasses} classes but {_o.Data} has {nc}: write a matching cfg with `yolospp dataset-cfg`");
        int startEpoch = 0, epochs = _o.Epochs;
        double bestMap = 0;
        string? previousResults = null;
        CheckpointInfo? resume = null;
        if (!string.IsNullOrEmpty(_o.Weights))
        {
            if (Checkpoint.IsCheckpoint(_o.Weights))
            {
                resume = Checkpoint.ReadInfo(_o.Weights);
                _log($"{_o.Weights}: {Checkpoint.LoadModel(_o.Weights, model)}");
            }
            else
            {
                _log($"{_o.Weights}: {ModelWeights.Load(model, _o.Weights)}");
                if (!_o.FreezeLayers && _o.FreezeBackbone && model.Modules.Count == 114)
                {
                    ModelWeights.Freeze(model, onlyPredictors: false);
                    _log("freezing the Darknet-53 backbone (modules 0..74) as the reference does when fine-tuning");
                }
            }
        }
        if (_o.FreezeLayers) ModelWeights.Freeze(model, onlyPredictors: true);
        model.to(device);

        // ---- optimizer: SGD nesterov over what is trainable
        var trainable = model.parameters().Where(p => p.requires_grad).ToArray();
        using var optimizer = new Sgd(trainable, hyp.Lr0, momentum: hyp.Momentum, weightDecay: hyp.WeightDecay, nesterov: true);
        var precision = MixedPrecision.For(_o.Amp, _o.Bf16, device);
        var scaler = precision.CreateScaler();
        if (precision.ComputeType is not null) _log?.Invoke(precision.ToString());
        if (resume is not null)
        {
            Checkpoint.LoadOptimizer(_o.Weights!, optimizer);
            startEpoch = resume.Epoch + 1;
            bestMap = resume.BestMap;
            previousResults = resume.TrainingResults;
            scaler = new LossScaler(scaler.Enabled, resume.LossScale, resume.LossScaleGrowthTracker);
            if (epochs < startEpoch)
            {
                _log($"{_o.Weights} has been trained for {resume.Epoch + 1} epochs; fine-tuning for {epochs} more");
                epochs += startEpoch;
            }
        }

        // ---- loss: the F# core over the model's anchors
        var lossHyp = hyp.LossHyperParameters;
        var spec = new Loss.YoloSpec(model.AnchorVecs.Select(a => a.to(device)).ToArray(), nc);
        int accumulate = _o.Accumulate ?? Schedule.accumulate(_o.BatchSize);

        // ---- train
        Directory.CreateDirectory(_o.OutputDir);
        using var log = new TrainingLog(_o.OutputDir, _o.ResultName, previousResults);
        var cfgText = File.ReadAllText(_o.Cfg);
        string last = Path.Combine(_o.OutputDir, "last.ckpt"), bestPath = Path.Combine(_o.OutputDir, "best.ckpt");
        string? best = File.Exists(bestPath) && resume is not null ? bestPath : null;
        EvaluationResult? final = null;
        var started = Stopwatch.StartNew();
        bool cancelled = false, timeUp = false;
        int epoch = startEpoch, epochsDone = 0;
        void Save(string path, int completedEpoch) =>
            Checkpoint.Save(path, model, optimizer, new CheckpointInfo(completedEpoch, bestMap, log.ResultsText, scaler.Scale, scaler.GrowthTracker, cfgText));

        for (; epoch < epochs && !cancelled && !timeUp; epoch++)
        {
            var settings = new EpochSettings(epoch, epochs, hyp, accumulate, _o.Warmup, _o.MultiScale ? (gridMin, gridMax) : null, trainSize, rng,
                _o.TimeLimit is { } limit ? limit - started.Elapsed : null) { ComputeType = precision.ComputeType };
            var outcome = Engine.TrainOneEpoch(model, optimizer, trainLoader, lossHyp, spec, scaler, device, settings, progress, cancellation);
            cancelled = outcome.Cancelled;
            timeUp = outcome.TimeUp;
            if (outcome.NonFinite is { } why)
            {
                Save(last, epoch - 1);
                throw new NonFiniteLossException($"{why}; last.ckpt holds the weights and optimizer state at that point");
            }
            var mloss = outcome.MeanLosses;
            var nowLr = outcome.LearningRate;
            int i = outcome.Batches, seen = outcome.Images;
            var epochWatch = outcome.Elapsed;
            if (cancelled)
            {
                // the interrupted epoch is redone on resume: record the previous one as the last completed
                Save(last, epoch - 1);
                break;
            }
            bool lastEpoch = epoch == epochs - 1 || timeUp;
            EvaluationResult? eval = null;
            if (!_o.NoTest || lastEpoch)
            {
                eval = Evaluator.Evaluate(model, valid, device, new EvaluationOptions(), data.Names, cancellation);
                final = eval;
            }
            log.Add(new EpochRecord(epoch, eval?.Stats, mloss.ToArray(), nowLr));
            progress?.Report(new TrainProgress(epoch, epochs, i, nb, mloss.ToArray(), nowLr, seen / epochWatch.TotalSeconds, TimeSpan.Zero, eval));
            if (eval is not null && eval.Map > bestMap) bestMap = eval.Map;
            Save(last, epoch);
            if (eval is not null && (bestMap == eval.Map || best is null))
            {
                if (_o.SaveBest) { File.Copy(last, bestPath, true); best = bestPath; }
            }
            if (!_o.SaveBest) File.Copy(last, Path.Combine(_o.OutputDir, $"epoch-{epoch}.ckpt"), true);
            epochsDone++;
        }
        return new TrainResult(last, best, log.ResultsFile, log.PlotFile, log.TensorBoardDir, epochsDone, final, cancelled);
    }

}
