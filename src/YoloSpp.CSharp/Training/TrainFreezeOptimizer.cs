using TorchSharp;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Training;

// what is frozen and what optimizes the rest: steps 2 and 3 of a run
public static partial class TrainSteps
{
    /// <summary>The backbone's module count for <c>--freeze backbone</c>.</summary>
    /// <exception cref="InvalidInputException">The cfg has no residual backbone before its head.</exception>
    static int Backbone(DarkNet model, TrainOptions o) => model.Config.BackboneModules
        ?? throw new InvalidInputException(o.Cfg, "--freeze backbone: the network has no residual backbone (no shortcut before its first route or yolo layer); give a module count");

    /// <summary>Freezes modules 0..<paramref name="n"/> − 1 (yolov5's --freeze N), and says so.</summary>
    static void FreezeLeading(DarkNet model, int n, bool backbone, Action<string>? log)
    {
        if (n > model.Modules.Count)
            throw new ArgumentException($"--freeze {n}: the network has {model.Modules.Count} modules");
        if (n == 0) return;
        ModelWeights.Freeze(model, onlyPredictors: false, lastFrozen: n - 1);
        var trainable = model.parameters().Count(p => p.requires_grad);
        log?.Invoke($"freezing {(backbone ? "the backbone, " : "")}modules 0..{n - 1}: {trainable} of {model.parameters().Count()} parameter tensors train");
    }

    /// <summary>Step 3: the optimizer over the trainable parameters, as <see cref="TrainOptions.Optimizer"/> or else the
    /// hyperparameters' <c>optimizer</c> say: SGD with Nesterov momentum (the reference's: lr0, momentum, weight decay on
    /// every parameter), or Adam / AdamW as yolov5's <c>--optimizer</c> (lr0, beta1 = momentum, beta2 0.999, weight decay
    /// on the convolution weights only); <see cref="TrainOptions.DecayGroups"/> changes where weight decay applies.
    /// Resuming restores a checkpoint's optimizer state.</summary>
    /// <exception cref="InvalidInputException">The checkpoint being resumed was trained with another optimizer or
    /// other weight-decay groups.</exception>
    public static IOptimizer Optimizer(TrainOptions o, DarkNet model, TrainingData data, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var hyp = data.Hyp;
        var trainable = model.parameters().Where(p => p.requires_grad).ToArray();
        var kind = o.Optimizer ?? hyp.Optimizer;
        var groups = o.DecayGroups ?? (kind == OptimizerKind.Sgd ? DecayGroups.All : DecayGroups.Weights);
        var decays = trainable.Select(p => groups == DecayGroups.All || Adam.DecaysByDefault(p)).ToArray();
        IOptimizer optimizer = kind switch
        {
            OptimizerKind.Sgd => new Sgd(trainable, hyp.Lr0, momentum: hyp.Momentum, weightDecay: hyp.WeightDecay, nesterov: true, decays: decays),
            var adam => new Adam(trainable, hyp.Lr0, beta1: hyp.Momentum, weightDecay: hyp.WeightDecay,
                decoupled: adam == OptimizerKind.AdamW, decays: decays),
        };
        try
        {
            if (o.Resumes) Checkpoint.LoadOptimizer(o.Weights!, optimizer);
            MainRankLog(data.Communicator, log)?.Invoke(Describe(optimizer, hyp));
            return optimizer;
        }
        catch
        {
            optimizer.Dispose();
            throw;
        }
    }

    /// <summary>The optimizer in one line, as yolov5 prints it: its settings and its parameter groups.</summary>
    static string Describe(IOptimizer optimizer, HyperParameters hyp)
    {
        static string G(double v) => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
        static string Groups(IReadOnlyList<bool> decays) => decays.All(d => d)
            ? $"on all {decays.Count} parameters"
            : $"on {decays.Count(d => d)} convolution weights, none on {decays.Count(d => !d)} BatchNorm weights and biases";
        return optimizer switch
        {
            Adam a => $"optimizer: {(a.Decoupled ? "AdamW" : "Adam")}(lr0={G(hyp.Lr0)}, betas=({G(a.Beta1)}, {G(a.Beta2)})) with weight_decay={G(a.WeightDecay)} " +
                Groups(a.Decays),
            Sgd s => $"optimizer: SGD(lr0={G(hyp.Lr0)}, momentum={G(s.Momentum)}, nesterov={s.Nesterov.ToString().ToLowerInvariant()}) with weight_decay={G(s.WeightDecay)} " +
                Groups(s.Decays) + (s.Decays.All(d => d) ? " (the reference's)" : ""),
            _ => $"optimizer: {optimizer.Kind}",
        };
    }
}
