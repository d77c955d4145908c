using System.IO.Compression;
using System.Text.Json;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace YoloSpp;

/// <summary>What a checkpoint records besides the tensors.</summary>
/// <param name="Epoch">Last completed epoch (−1: none; resuming starts at Epoch + 1).</param>
/// <param name="BestMap">Best mAP@0.5:0.95 so far.</param>
/// <param name="TrainingResults">The results file's text so far.</param>
/// <param name="LossScale">Loss scaler's scale.</param>
/// <param name="LossScaleGrowthTracker">Loss scaler's good-step counter.</param>
/// <param name="Cfg">The cfg text the network was built from.</param>
public sealed record CheckpointInfo(int Epoch, double BestMap, string TrainingResults, double LossScale, int LossScaleGrowthTracker, string Cfg);

/// <summary>
/// The trainer's checkpoint: one zip file (.ckpt) holding <c>model.safetensors</c> (the reference's state-dict
/// names), <c>optimizer.bin</c> (TorchSharp's SGD state: momentum buffers, lr), and <c>meta.json</c>
/// (<see cref="CheckpointInfo"/>). Written atomically: a crash never leaves a torn checkpoint.
/// </summary>
public static class Checkpoint
{
    /// <summary>Saves model, optimizer and run state.</summary>
    public static void Save(string path, DarkNet model, TorchSharp.Modules.OptimizerHelper? optimizer, CheckpointInfo info)
    {
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            using (var e = zip.CreateEntry("model.safetensors", CompressionLevel.NoCompression).Open())
                model.save_safetensors(e, leaveOpen: true);
            if (optimizer is not null)
                using (var e = zip.CreateEntry("optimizer.bin", CompressionLevel.NoCompression).Open())
                using (var w = new BinaryWriter(e))
                    optimizer.save_state_dict(w);
            using (var e = zip.CreateEntry("meta.json").Open())
                JsonSerializer.Serialize(e, info, new JsonSerializerOptions { WriteIndented = true });
        });
    }

    /// <summary>Whether a file is a trainer checkpoint (by extension).</summary>
    public static bool IsCheckpoint(string path) => path.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads a checkpoint's run state.</summary>
    public static CheckpointInfo ReadInfo(string path)
    {
        using var zip = Open(path);
        using var e = Entry(zip, path, "meta.json").Open();
        return JsonSerializer.Deserialize<CheckpointInfo>(e) ?? throw new FormatException($"{path}: empty meta.json");
    }

    /// <summary>Loads the model tensors of a checkpoint (only those whose size matches, as the reference).</summary>
    public static LoadReport LoadModel(string path, DarkNet model)
    {
        using var zip = Open(path);
        using var ms = new MemoryStream();
        using (var e = Entry(zip, path, "model.safetensors").Open()) e.CopyTo(ms);
        ms.Position = 0;
        using var scope = NewDisposeScope();
        var state = Safetensors.LoadStateDict(ms, leaveOpen: true);
        return ModelWeights.LoadStateDict(model, state);
    }

    /// <summary>Loads the optimizer state of a checkpoint (false when it has none).</summary>
    public static bool LoadOptimizer(string path, TorchSharp.Modules.OptimizerHelper optimizer)
    {
        using var zip = Open(path);
        var entry = zip.GetEntry("optimizer.bin");
        if (entry is null) return false;
        using var ms = new MemoryStream();
        using (var e = entry.Open()) e.CopyTo(ms);
        ms.Position = 0;
        using var r = new BinaryReader(ms);
        optimizer.load_state_dict(r);
        return true;
    }

    static ZipArchive Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such checkpoint", path);
        try { return ZipFile.OpenRead(path); }
        catch (InvalidDataException e) { throw new FormatException($"{path}: not a YoloSpp checkpoint ({e.Message})", e); }
    }

    static ZipArchiveEntry Entry(ZipArchive zip, string path, string name) =>
        zip.GetEntry(name) ?? throw new FormatException($"{path}: not a YoloSpp checkpoint (no {name})");
}
