using System.IO.Compression;
using System.Text.Json;
using TorchSharp;
using TorchSharp.PyBridge;
using YoloSpp.IO;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// The trainer's checkpoint: one zip file (.ckpt) holding <c>model.safetensors</c> (the reference's state-dict
/// names), <c>optimizer.safetensors</c> and <c>optimizer.json</c> (the SGD momentum buffers <c>momentum_buffer.N</c>
/// in parameter order, and its settings), and <c>meta.json</c> (<see cref="CheckpointInfo"/>). Reading the model
/// and its description is <see cref="CheckpointFile"/>'s (the model layer's); this class writes checkpoints and
/// restores the optimizer. Written atomically:
/// a crash never leaves a torn checkpoint. Checkpoints of version 0.1 (TorchSharp's <c>optimizer.bin</c>) still load.
/// </summary>
public static class Checkpoint
{
    /// <summary>Saves model, optimizer and run state; with <paramref name="average"/> (a run's <see cref="ModelEma"/>),
    /// the average as the model and the trained weights beside it for resuming.</summary>
    public static void Save(string path, DarkNet model, IOptimizer? optimizer, CheckpointInfo info, DarkNet? average = null)
    {
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            using (var e = zip.CreateEntry("model.safetensors", CompressionLevel.NoCompression).Open())
                (average ?? model).save_safetensors(e, leaveOpen: true);
            if (average is not null)
                using (var e = zip.CreateEntry(CheckpointFile.TrainedWeightsEntry, CompressionLevel.NoCompression).Open())
                    model.save_safetensors(e, leaveOpen: true);
            if (optimizer is not null) OptimizerState.Write(zip, optimizer);
            using (var e = zip.CreateEntry("meta.json").Open())
                JsonSerializer.Serialize(e, info, new JsonSerializerOptions { WriteIndented = true });
        });
    }

    /// <summary>This library's version as checkpoints record it (<see cref="CheckpointInfo.Version"/>).</summary>
    public static string LibraryVersion { get; } =
        typeof(Checkpoint).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion
        ?? typeof(Checkpoint).Assembly.GetName().Version?.ToString(3) ?? "?";

    /// <summary>Loads the optimizer state (SGD's momentum buffers, Adam's moments and step counts, the learning rate) of a
    /// checkpoint; false when it has none. The optimizer must be of the kind saved, over the same trainable parameters
    /// in the same order.</summary>
    /// <exception cref="InvalidInputException">The checkpoint's optimizer is of another kind or does not fit.</exception>
    public static bool LoadOptimizer(string path, IOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        using var zip = CheckpointFile.Open(path);
        using var scope = NewDisposeScope();
        if (zip.GetEntry("optimizer.safetensors") is not null)
        {
            OptimizerState.Read(CheckpointFile.ReadAll(zip, path, "optimizer.json"), CheckpointFile.ReadAll(zip, path, "optimizer.safetensors"), path, optimizer);
            return true;
        }
        if (zip.GetEntry("optimizer.bin") is not null)
        {
            if (optimizer is not Sgd sgd)
                throw new InvalidInputException(path, $"was trained with sgd (a version 0.1 checkpoint), this run's optimizer is {OptimizerNames.Name(optimizer.Kind)} (resume with --optimizer sgd)");
            // version 0.1: TorchSharp's SGD state, read through a TorchSharp SGD over the same parameters
            using var legacy = optim.SGD(sgd.Parameters, sgd.LearningRate, sgd.Momentum, weight_decay: sgd.WeightDecay, nesterov: sgd.Nesterov);
            using var ms = new MemoryStream(CheckpointFile.ReadAll(zip, path, "optimizer.bin"));
            using var r = new BinaryReader(ms);
            try { legacy.load_state_dict(r); }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException or InvalidOperationException)
            {
                throw new InvalidInputException(path, $"its optimizer state does not fit this run's {sgd.Parameters.Count} trainable parameters ({e.Message})", e);
            }
            var sd = legacy.state_dict();
            var buffers = sd.State.Select(st => (st as TorchSharp.Modules.SGD.State)?.momentum_buffer).ToArray();
            sgd.LoadMomentumBuffers(buffers, 0);
            sgd.LearningRate = legacy.ParamGroups.First().LearningRate;
            return true;
        }
        return false;
    }
}
