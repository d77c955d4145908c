using System.IO.Compression;
using System.Text.Json;
using static TorchSharp.torch;

namespace YoloSpp.Model;

/// <summary>What a checkpoint records besides the tensors: the run's state (to resume it) and what is needed to use
/// the network (cfg, class names, image size), so that <see cref="YoloSpp.Detection.Detector"/>, <see cref="YoloSpp.Evaluation.Evaluator"/> and
/// <see cref="YoloSpp.Export.OnnxExport"/> need only the file. The fields after <paramref name="EpochsCsv"/> are null in checkpoints
/// written before checkpoints described themselves (they still load; give the cfg, names or size where needed).</summary>
/// <param name="Epoch">Last completed epoch, counted from 0 as in results.txt (−1: none; resuming starts at Epoch + 1).</param>
/// <param name="BestMap">Best mAP@0.5:0.95 so far (the fitness best.ckpt is chosen by).</param>
/// <param name="TrainingResults">The results file's text so far.</param>
/// <param name="LossScale">Loss scaler's scale.</param>
/// <param name="LossScaleGrowthTracker">Loss scaler's good-step counter.</param>
/// <param name="Cfg">The cfg text the network was built from.</param>
/// <param name="Trainable">Names of the parameters that were trained (the others were frozen); null: all of them.</param>
/// <param name="EpochsCsv">The epochs.csv text so far (every epoch's losses, LR and stats); null in older checkpoints.</param>
/// <param name="ClassNames">The class names, in class order (one name for a single-class run).</param>
/// <param name="ImageSize">The training (and test) image size the run used.</param>
/// <param name="Hyp">The hyperparameters as hyp.yaml text, before train.py's adjustments for the class count and image size.</param>
/// <param name="Dataset">The .data file the run trained on, as it was given.</param>
/// <param name="Version">The YoloSpp version that wrote the checkpoint.</param>
/// <param name="Epochs">The epochs the run was set to train (its last epoch is Epochs − 1).</param>
/// <param name="BestConfidence">The confidence of the best mean F1 at the best epoch's evaluation (yolov5's F1 curve):
/// what <c>detect --conf best</c> uses; null when no epoch was evaluated, and in older checkpoints.</param>
/// <param name="EmaUpdates">With a weight average (<c>--ema</c>): the updates it has had; its weights are the model's
/// (what is evaluated, detected with and exported) and the trained weights are kept for resuming. Null: no average.</param>
/// <param name="StopReason">Why the run stopped before its last epoch (<c>--patience</c>); null when it did not.</param>
public sealed record CheckpointInfo(int Epoch, double BestMap, string TrainingResults, double LossScale, int LossScaleGrowthTracker, string Cfg,
    IReadOnlyList<string>? Trainable = null, string? EpochsCsv = null, IReadOnlyList<string>? ClassNames = null, int? ImageSize = null,
    string? Hyp = null, string? Dataset = null, string? Version = null, int? Epochs = null, double? BestConfidence = null,
    long? EmaUpdates = null, string? StopReason = null);

/// <summary>
/// Reading a trainer checkpoint (.ckpt) as a model file: its description (<c>meta.json</c>, <see cref="CheckpointInfo"/>)
/// and its network's tensors (<c>model.safetensors</c>). <c>YoloSpp.Training.Checkpoint</c> writes checkpoints and
/// restores their optimizer state.
/// </summary>
public static class CheckpointFile
{
    /// <summary>Whether a file is a trainer checkpoint (by extension).</summary>
    public static bool IsCheckpoint(string path) => path.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads a checkpoint's run state.</summary>
    public static CheckpointInfo ReadInfo(string path)
    {
        using var zip = Open(path);
        var bytes = ReadAll(zip, path, "meta.json");
        try { return JsonSerializer.Deserialize<CheckpointInfo>(bytes) ?? throw new InvalidInputException(path, "empty meta.json"); }
        catch (JsonException j) { throw new InvalidInputException(path, $"unreadable meta.json ({j.Message})", j); }
    }

    /// <summary>A checkpoint's run state, or null when it has none (no meta.json); a damaged one is an error.</summary>
    internal static CheckpointInfo? TryReadInfo(string path)
    {
        using (var zip = Open(path))
            if (zip.GetEntry("meta.json") is null) return null;
        return ReadInfo(path);
    }

    /// <summary>Loads the model tensors of a checkpoint (only those whose size matches, as the reference): the
    /// model's (a run with <c>--ema</c> saves its average there), or with <paramref name="trainingState"/> the trained
    /// weights a run with an average keeps for resuming (the model's when there is no average).</summary>
    public static LoadReport LoadModel(string path, DarkNet model, bool trainingState = false)
    {
        using var zip = Open(path);
        var name = trainingState && zip.GetEntry(TrainedWeightsEntry) is not null ? TrainedWeightsEntry : "model.safetensors";
        using var ms = new MemoryStream(ReadAll(zip, path, name));
        using var scope = NewDisposeScope();
        var state = SafetensorsCheck.Load(ms, $"{path} ({name})");
        return ModelWeights.LoadStateDict(model, state);
    }

    /// <summary>The entry of the trained weights in a checkpoint of a run with a weight average.</summary>
    internal const string TrainedWeightsEntry = "train_model.safetensors";

    /// <summary>An entry's bytes; a damaged entry (bad compressed data, a size that lies) is an error naming it.</summary>
    internal static byte[] ReadAll(ZipArchive zip, string path, string name)
    {
        var entry = Entry(zip, path, name);
        // no entry of a checkpoint comes near this: a larger one is a forged size, not weights
        if (entry.Length > int.MaxValue) throw new InvalidInputException(path, $"{name} claims {entry.Length:N0} bytes: damaged");
        try
        {
            using var ms = new MemoryStream();
            using (var e = entry.Open()) e.CopyTo(ms);
            return ms.ToArray();
        }
        catch (InvalidDataException e) { throw new InvalidInputException(path, $"{name} is damaged ({e.Message})", e); }
    }

    internal static ZipArchive Open(string path)
    {
        if (Directory.Exists(path)) throw new InvalidInputException(path, "is a folder, not a checkpoint");
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such checkpoint");
        try { return ZipFile.OpenRead(path); }
        catch (InvalidDataException e) { throw new InvalidInputException(path, $"not a YoloSpp checkpoint ({e.Message})", e); }
        catch (UnauthorizedAccessException e) { throw new InvalidInputException(path, $"cannot read the checkpoint ({e.Message})", e); }
    }

    static ZipArchiveEntry Entry(ZipArchive zip, string path, string name) =>
        zip.GetEntry(name) ?? throw new InvalidInputException(path, $"not a YoloSpp checkpoint (no {name})");
}
