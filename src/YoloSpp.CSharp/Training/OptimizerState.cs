using System.IO.Compression;
using System.Text.Json;
using TorchSharp;
using TorchSharp.PyBridge;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// An optimizer's state inside a checkpoint: <c>optimizer.json</c> (kind, settings, steps) and
/// <c>optimizer.safetensors</c> (SGD: <c>momentum_buffer.N</c>; Adam and AdamW: <c>exp_avg.N</c> and
/// <c>exp_avg_sq.N</c>, torch's names, N the parameter's index among the trainable ones). A file without a kind is SGD
/// (checkpoints written before Adam existed); one without <c>Decays</c> (per parameter, whether weight decay applies)
/// has its optimizer's groups of that time: every parameter for SGD, the convolution weights for Adam.
/// </summary>
internal static class OptimizerState
{
    internal sealed record Meta(int Parameters, long Steps, double LearningRate, double Momentum, double WeightDecay, bool Nesterov,
        double Dampening, string? Kind = null, double? Beta2 = null, double? Eps = null, long[]? ParameterSteps = null,
        bool[]? Decays = null);

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Writes the optimizer's two entries into a checkpoint being written.</summary>
    public static void Write(ZipArchive zip, IOptimizer optimizer)
    {
        var tensors = new Dictionary<string, Tensor>();
        Meta meta;
        switch (optimizer)
        {
            case Sgd sgd:
                for (int i = 0; i < sgd.MomentumBuffers.Count; i++)
                    if (sgd.MomentumBuffers[i] is { } b) tensors[$"momentum_buffer.{i}"] = b.cpu();
                meta = new Meta(sgd.Parameters.Count, sgd.Steps, sgd.LearningRate, sgd.Momentum, sgd.WeightDecay, sgd.Nesterov, sgd.Dampening,
                    OptimizerNames.Name(sgd.Kind), Decays: sgd.Decays.ToArray());
                break;
            case Adam adam:
                for (int i = 0; i < adam.Parameters.Count; i++)
                {
                    if (adam.ExpAvg[i] is { } m) tensors[$"exp_avg.{i}"] = m.cpu();
                    if (adam.ExpAvgSq[i] is { } v) tensors[$"exp_avg_sq.{i}"] = v.cpu();
                }
                meta = new Meta(adam.Parameters.Count, adam.Steps, adam.LearningRate, adam.Beta1, adam.WeightDecay, false, 0,
                    OptimizerNames.Name(adam.Kind), adam.Beta2, adam.Eps, adam.ParameterSteps.ToArray(), adam.Decays.ToArray());
                break;
            default:
                throw new NotSupportedException($"a checkpoint cannot hold the state of a {optimizer.GetType().Name}");
        }
        using (var e = zip.CreateEntry("optimizer.safetensors", CompressionLevel.NoCompression).Open())
            Safetensors.SaveStateDict(e, tensors, leaveOpen: true);
        using (var e = zip.CreateEntry("optimizer.json").Open())
            JsonSerializer.Serialize(e, meta, Indented);
    }

    /// <summary>Restores an optimizer from the entries <see cref="Write"/> wrote; <paramref name="path"/> names the
    /// checkpoint in errors.</summary>
    /// <exception cref="InvalidInputException">Another optimizer kind, another parameter count, or state that does
    /// not fit the parameters.</exception>
    public static void Read(byte[] json, byte[] tensors, string path, IOptimizer optimizer)
    {
        Meta meta;
        try { meta = JsonSerializer.Deserialize<Meta>(json) ?? throw new InvalidInputException(path, "empty optimizer.json"); }
        catch (JsonException e) { throw new InvalidInputException(path, $"unreadable optimizer.json ({e.Message})", e); }
        var saved = meta.Kind is null ? OptimizerKind.Sgd
            : OptimizerNames.TryParse(meta.Kind) is { } k ? k
            : throw new InvalidInputException(path, $"optimizer.json names an unknown optimizer '{meta.Kind}'");
        if (saved != optimizer.Kind)
            throw new InvalidInputException(path,
                $"was trained with {OptimizerNames.Name(saved)}, this run's optimizer is {OptimizerNames.Name(optimizer.Kind)} (resume with --optimizer {OptimizerNames.Name(saved)})");
        if (meta.Parameters != optimizer.Parameters.Count)
            throw new InvalidInputException(path, $"the optimizer was saved over {meta.Parameters} trainable parameters, this run has {optimizer.Parameters.Count} (were other layers frozen?)");
        var decays = optimizer switch { Sgd s => s.Decays, Adam a => a.Decays, _ => null };
        // checkpoints written before the groups were saved: SGD decayed every parameter, Adam the convolution weights
        var savedDecays = meta.Decays ?? (saved == OptimizerKind.Sgd
            ? Enumerable.Repeat(true, meta.Parameters).ToArray()
            : optimizer.Parameters.Select(Adam.DecaysByDefault).ToArray());
        if (decays is not null && !decays.SequenceEqual(savedDecays))
        {
            var name = savedDecays.All(d => d) ? "all" : "weights";
            throw new InvalidInputException(path,
                $"was trained with weight decay on {(name == "all" ? "every parameter" : "convolution weights only")}, this run's groups differ (resume with --decay-groups {name})");
        }
        using var scope = NewDisposeScope();
        using var ms = new MemoryStream(tensors);
        var state = SafetensorsCheck.Load(ms, $"{path} (optimizer.safetensors)");
        Tensor?[] Named(string prefix) =>
            Enumerable.Range(0, meta.Parameters).Select(i => state.TryGetValue($"{prefix}.{i}", out var b) ? b : null).ToArray();
        try
        {
            switch (optimizer)
            {
                case Sgd sgd:
                    sgd.LoadMomentumBuffers(Named("momentum_buffer"), meta.Steps);
                    break;
                case Adam adam:
                    var steps = meta.ParameterSteps ?? throw new InvalidInputException(path, "optimizer.json has no per-parameter steps for Adam");
                    adam.LoadState(Named("exp_avg"), Named("exp_avg_sq"), steps, meta.Steps);
                    break;
            }
        }
        catch (ArgumentException e) { throw new InvalidInputException(path, e.Message, e); }
        optimizer.LearningRate = meta.LearningRate;
    }
}
