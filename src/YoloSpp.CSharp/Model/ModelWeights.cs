using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using YoloSpp.IO;
using static TorchSharp.torch;

namespace YoloSpp.Model;

/// <summary>What loading a state dict into a network did.</summary>
/// <param name="Loaded">Tensors copied into the network.</param>
/// <param name="Skipped">Network tensors left as they were, with the reason (absent from the file, or a different size).</param>
/// <param name="Unused">Tensors of the file that the network has no place for.</param>
public sealed record LoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<(string Name, string Reason)> Skipped, IReadOnlyList<string> Unused)
{
    /// <summary>One line for users, e.g. "loaded 225/225 tensors".</summary>
    public override string ToString() =>
        $"loaded {Loaded.Count}/{Loaded.Count + Skipped.Count} tensors" +
        (Skipped.Count > 0 ? $"; kept initial values of {string.Join(", ", Skipped.Take(6).Select(s => $"{s.Name} ({s.Reason})"))}{(Skipped.Count > 6 ? ", …" : "")}" : "") +
        (Unused.Count > 0 ? $"; {Unused.Count} tensors of the file unused" : "");
}

/// <summary>
/// Weights of a <see cref="DarkNet"/> in the formats users bring: Darknet .weights, the reference's PyTorch
/// .pt/.pth checkpoints (a dict with "model", or a bare state dict) and safetensors — the project's own model format.
/// State-dict names are the reference's (<c>module_list.N.Conv2d.weight</c>, …), so they map one to one.
/// </summary>
public static class ModelWeights
{
    /// <summary>
    /// Loads weights by file type: <c>.weights</c> and <c>darknet53.conv.74</c> (Darknet), <c>.pt</c>/<c>.pth</c>
    /// (PyTorch pickle), <c>.safetensors</c>, <c>.ckpt</c> (the trainer's checkpoints). As the reference trainer does, tensors whose size does not match
    /// (e.g. the predictors of a cfg with another class count) keep their initial values and are reported.
    /// </summary>
    public static LoadReport Load(DarkNet model, string path)
    {
        if (Directory.Exists(path)) throw new InvalidInputException(path, "is a folder, not a weights file");
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such weights file");
        var name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".weights") || DarknetWeights.CutoffOf(name) is not null)
        {
            // a backbone-only file (darknet53.conv.74, or any .weights that ends after a convolution) fills the
            // modules it holds; the rest keep their initial values, reported as for any other format
            var (_, modules) = DarknetWeights.LoadPrefix(model, path, DarknetWeights.CutoffOf(Path.GetFileName(path)));
            var loaded = new List<string>();
            var skipped = new List<(string, string)>();
            foreach (var key in model.state_dict().Keys)
                if (ModuleOf(key) < modules) loaded.Add(key);
                else skipped.Add((key, $"absent: the file holds modules 0..{modules - 1}"));
            return new LoadReport(loaded, skipped, Array.Empty<string>());
        }
        if (CheckpointFile.IsCheckpoint(path)) return CheckpointFile.LoadModel(path, model);
        using var scope = NewDisposeScope();
        var state = name.EndsWith(".safetensors") ? SafetensorsCheck.Load(path) : ReadPyTorch(path);
        return LoadStateDict(model, state);
    }

    /// <summary>
    /// Loads weights for inference (evaluation, detection): like <see cref="Load"/>, but every tensor of the network
    /// must come from the file, since a predictor left at its initial values would quietly give wrong boxes.
    /// </summary>
    /// <exception cref="InvalidInputException">A network tensor is absent from the file or has another size.</exception>
    public static LoadReport LoadExact(DarkNet model, string path)
    {
        var report = Load(model, path);
        if (report.Skipped.Count > 0)
        {
            var (name, reason) = report.Skipped[0];
            throw new InvalidInputException(path,
                $"does not fit the cfg: {report.Skipped.Count} tensors not loaded, first {name} ({reason})");
        }
        return report;
    }

    /// <summary>The module index of a state-dict name (<c>module_list.N.…</c>).</summary>
    static int ModuleOf(string key)
    {
        var parts = key.Split('.');
        return parts.Length > 1 && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            ? n : int.MaxValue;
    }

    static Dictionary<string, Tensor> ReadPyTorch(string path)
    {
        Hashtable table;
        try { table = PyTorchUnpickler.UnpickleStateDict(path); }
        catch (Exception e) when (e is not InvalidInputException) { throw new InvalidInputException(path, $"not a PyTorch state dict or checkpoint ({e.Message})", e); }
        // the reference's checkpoints are {"model": state_dict, "optimizer": ..., "epoch": ...}
        IDictionary source = table["model"] is IDictionary inner ? inner : table;
        var result = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry e in source)
            if (e.Key is string k && e.Value is Tensor t) result[k] = t;
        if (result.Count == 0) throw new InvalidInputException(path, "no tensors found (expected a state dict or a dict with 'model')");
        return result;
    }

    /// <summary>Copies every tensor whose name and element count match; reports the rest.</summary>
    public static LoadReport LoadStateDict(DarkNet model, IReadOnlyDictionary<string, Tensor> state)
    {
        var loaded = new List<string>();
        var skipped = new List<(string, string)>();
        var own = model.state_dict();
        using var _ = no_grad();
        foreach (var (key, target) in own)
        {
            if (key.EndsWith("num_batches_tracked")) { if (state.TryGetValue(key, out var nb)) target.copy_(nb.to(target.dtype)); continue; }
            if (!state.TryGetValue(key, out var src)) { skipped.Add((key, "absent")); continue; }
            if (src.numel() != target.numel()) { skipped.Add((key, $"size {src.numel()} vs {target.numel()}")); continue; }
            target.copy_(src.reshape(target.shape).to(target.dtype, target.device));
            loaded.Add(key);
        }
        var unused = state.Keys.Where(k => !own.ContainsKey(k)).ToArray();
        return new LoadReport(loaded, skipped, unused);
    }

    /// <summary>Saves the network's state dict as safetensors (readable by PyTorch's safetensors too), atomically.</summary>
    public static void Save(DarkNet model, string path) =>
        AtomicFile.Write(path, stream => model.save_safetensors(stream, leaveOpen: true));

    /// <summary>
    /// Freezes parameters as the reference trainer does. <paramref name="onlyPredictors"/>: everything except the
    /// prediction convs before each [yolo] (its --freeze-layers). Otherwise modules 0..<paramref name="lastFrozen"/>
    /// (74 = the Darknet-53 backbone of yolov3-spp, the reference's default when fine-tuning).
    /// </summary>
    public static void Freeze(DarkNet model, bool onlyPredictors, int lastFrozen = 74)
    {
        var outputs = model.YoloLayerIndices.Select(i => i - 1).ToHashSet();
        for (int i = 0; i < model.Modules.Count; i++)
        {
            bool freeze = onlyPredictors ? !outputs.Contains(i) && !outputs.Contains(i - 1) : i <= lastFrozen;
            if (freeze) foreach (var p in model.Modules[i].parameters()) p.requires_grad_(false);
        }
    }

    /// <summary>Freezes every parameter whose name is not in <paramref name="trainable"/> (a checkpoint's trained set).</summary>
    public static void FreezeAllBut(DarkNet model, IEnumerable<string> trainable)
    {
        var keep = trainable.ToHashSet(StringComparer.Ordinal);
        foreach (var (name, p) in model.named_parameters())
            if (!keep.Contains(name)) p.requires_grad_(false);
    }
}
