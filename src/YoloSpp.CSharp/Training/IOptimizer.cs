using TorchSharp.Modules;


namespace YoloSpp.Training;

/// <summary>
/// What the training loop asks of an optimizer: <see cref="Sgd"/> (the reference's) or <see cref="Adam"/> (Adam and
/// AdamW). The loop sets <see cref="LearningRate"/> per batch or epoch (warmup, cosine schedule), steps, and zeroes
/// the gradients; checkpoints save and restore each kind's state (see <see cref="Checkpoint"/>).
/// </summary>
public interface IOptimizer : IDisposable
{
    /// <summary>Which optimizer this is.</summary>
    OptimizerKind Kind { get; }
    /// <summary>The parameters it updates, in the order of its state.</summary>
    IReadOnlyList<Parameter> Parameters { get; }
    /// <summary>Learning rate of the next step.</summary>
    double LearningRate { get; set; }
    /// <summary>Steps taken.</summary>
    long Steps { get; }
    /// <summary>One step over every parameter that has a gradient.</summary>
    void Step();
    /// <summary>Sets every gradient to zero (as torch's zero_grad(set_to_none=False)).</summary>
    void ZeroGrad();
}

/// <summary>An optimizer kind's name in hyp files and on the command line (<c>sgd</c>, <c>adam</c>, <c>adamw</c>).</summary>
internal static class OptimizerNames
{
    public static string Name(OptimizerKind kind) => Hyp.optimizerName((OptimizerChoice)(int)kind);

    public static OptimizerKind? TryParse(string name) =>
        Hyp.tryParseOptimizer(name) is { } k ? (OptimizerKind)(int)k.Value : null;
}
