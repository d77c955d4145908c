using YoloSpp.Data;

namespace YoloSpp.Model;

/// <summary>
/// A trained network as the commands that use one need it (detection, evaluation, export, <c>yolospp info</c>): its
/// cfg, class names and image size. A checkpoint (.ckpt, what training writes) carries all three in its
/// <see cref="CheckpointInfo"/>, so the weights file is enough; a cfg, names or size given as well overrides the
/// checkpoint's, and one that differs is used and noticed in one line. Darknet <c>.weights</c>, PyTorch
/// <c>.pt</c>/<c>.pth</c> and <c>.safetensors</c> files hold only tensors: they need the cfg.
/// </summary>
public sealed class TrainedModel
{
    /// <summary>The image size used when neither the checkpoint nor the caller gives one (the reference's 512).</summary>
    public const int DefaultImageSize = 512;

    /// <summary>The weights file.</summary>
    public string WeightsPath { get; }
    /// <summary>The network's cfg: the checkpoint's own, or the one given.</summary>
    public DarknetConfig Config { get; }
    /// <summary>Where <see cref="Config"/> came from: the cfg file or built-in name given, else "WEIGHTS (its cfg)".</summary>
    public string CfgSource { get; }
    /// <summary>The class names, index = class id: the checkpoint's, or those given; null when neither names them
    /// (weights without a checkpoint's record and no names file).</summary>
    public IReadOnlyList<string>? ClassNames { get; }
    /// <summary>The input size (long side): the one given, else the checkpoint's training size, else <see cref="DefaultImageSize"/>.</summary>
    public int ImageSize { get; }
    /// <summary>A line to show where <see cref="ImageSize"/> is <see cref="DefaultImageSize"/> for want of a better one
    /// (a checkpoint too old to record its training size, and no size given); null otherwise. The commands that run
    /// the network at that size print it.</summary>
    public string? ImageSizeNotice { get; }
    /// <summary>The checkpoint's record (null for weights that are not a .ckpt).</summary>
    public CheckpointInfo? Checkpoint { get; }
    /// <summary>The network's class count.</summary>
    public int NumClasses => Config.NumClasses;

    TrainedModel(string weightsPath, DarknetConfig config, string cfgSource, IReadOnlyList<string>? names, int imageSize, string? sizeNotice,
        CheckpointInfo? checkpoint) =>
        (WeightsPath, Config, CfgSource, ClassNames, ImageSize, ImageSizeNotice, Checkpoint) =
        (weightsPath, config, cfgSource, names, imageSize, sizeNotice, checkpoint);

    /// <summary>Reads what <paramref name="weightsPath"/> says about its network, with the overrides given.</summary>
    /// <param name="weightsPath">A .ckpt written by training (self-describing), or .weights, .pt/.pth, .safetensors with <paramref name="cfg"/>.</param>
    /// <param name="cfg">A cfg file or a built-in topology name (<c>shapes-spp</c>, <c>yolov3-spp</c>); null: the checkpoint's.</param>
    /// <param name="namesPath">A .names file (one class a line); null: the checkpoint's names.</param>
    /// <param name="imageSize">The input size; null: the checkpoint's training size (else <see cref="DefaultImageSize"/>).</param>
    /// <param name="notice">Receives one line for each override that differs from the checkpoint (an older checkpoint
    /// that does not record its image size sets <see cref="ImageSizeNotice"/> instead).</param>
    /// <exception cref="InvalidInputException">The weights file is missing or unreadable; weights other than a .ckpt
    /// without a cfg; a missing or malformed cfg or names file; names of another count than the network's classes.</exception>
    /// <exception cref="ArgumentException">The image size is not a positive multiple of <see cref="DarkNet.GridStride"/>.</exception>
    public static TrainedModel Open(string weightsPath, string? cfg = null, string? namesPath = null, int? imageSize = null,
        Action<string>? notice = null)
    {
        ArgumentNullException.ThrowIfNull(weightsPath);
        if (imageSize is { } s) DarkNet.CheckImageSize(s, "--img-size");
        if (Directory.Exists(weightsPath)) throw new InvalidInputException(weightsPath, "is a folder, not a weights file");
        if (!File.Exists(weightsPath)) throw new InvalidInputException(weightsPath, "no such weights file");
        // with a cfg given, a checkpoint's tensors are enough: one without its run record (meta.json) still loads
        var info = !CheckpointFile.IsCheckpoint(weightsPath) ? null
            : cfg is null ? CheckpointFile.ReadInfo(weightsPath)
            : CheckpointFile.TryReadInfo(weightsPath);
        var config = ResolveConfig(weightsPath, info, cfg, namesPath, notice);
        var names = ResolveNames(weightsPath, info, namesPath, config, notice);
        int size = imageSize ?? info?.ImageSize ?? DefaultImageSize;
        if (info is not null && imageSize is { } given && info.ImageSize is { } trained && given != trained)
            notice?.Invoke($"--img-size {given}: {weightsPath} was trained at {trained}; using {given}");
        var sizeNotice = info is not null && imageSize is null && info.ImageSize is null
            ? $"{weightsPath} does not record its training image size (an older checkpoint): using {DefaultImageSize}; give --img-size to choose"
            : null;
        return new TrainedModel(weightsPath, config, cfg ?? OwnCfg(weightsPath), names, size, sizeNotice, info);
    }

    static DarknetConfig ResolveConfig(string weightsPath, CheckpointInfo? info, string? cfg, string? namesPath, Action<string>? notice)
    {
        if (info is null)
        {
            if (cfg is null)
                throw new InvalidInputException(weightsPath,
                    $"{Path.GetExtension(weightsPath)} weights hold only tensors: give the network's cfg (--cfg FILE, or {string.Join(" / ", ModelCfg.TopologyNames)}); a .ckpt written by `yolospp train` carries its own");
            // a built-in name takes the class count of the names given, else the topology's usual one
            int classes = namesPath is not null && File.Exists(namesPath) ? Data.DataFiles.ReadNames(namesPath).Length : ModelCfg.TopologyClasses(cfg);
            return ModelCfg.LoadOrTopology(cfg, classes);
        }
        var own = ModelCfg.Parse(OwnCfg(weightsPath), info.Cfg);
        if (cfg is null) return own;
        var given = ModelCfg.LoadOrTopology(cfg, own.NumClasses);
        if (!given.SameNetworkAs(own))
            notice?.Invoke($"--cfg {cfg}: not the network {weightsPath} was trained with; using {cfg}");
        return given;
    }

    static string OwnCfg(string weightsPath) => $"{weightsPath} (its cfg)";

    static IReadOnlyList<string>? ResolveNames(string weightsPath, CheckpointInfo? info, string? namesPath, DarknetConfig config, Action<string>? notice)
    {
        if (namesPath is null)
        {
            if (info?.ClassNames is { } own && own.Count != config.NumClasses)
                throw new InvalidInputException(weightsPath, $"records {own.Count} class names but its network has {config.NumClasses} classes: give --names");
            return info?.ClassNames;
        }
        var names = Data.DataFiles.ReadNames(namesPath);
        if (names.Length != config.NumClasses)
            throw new InvalidInputException(namesPath, $"{names.Length} class names but the network has {config.NumClasses} classes");
        if (info?.ClassNames is { } recorded && !recorded.SequenceEqual(names))
            notice?.Invoke($"--names {namesPath}: not the class names {weightsPath} was trained with ({string.Join(", ", recorded)}); using {namesPath}");
        return names;
    }

    /// <summary>The class names, or an <see cref="InvalidInputException"/> that says how to give them.</summary>
    public IReadOnlyList<string> RequireClassNames() => ClassNames
        ?? throw new InvalidInputException(WeightsPath, Checkpoint is null
            ? "holds no class names: give a .names file (--names), one class a line"
            : "records no class names (an older checkpoint): give a .names file (--names), one class a line");

    /// <summary>Builds the network and loads every one of its tensors from <see cref="WeightsPath"/> (in train mode, on the CPU).</summary>
    /// <exception cref="InvalidInputException">The weights do not fit the network (a tensor absent or of another size).</exception>
    public DarkNet CreateNetwork()
    {
        var model = new DarkNet(Config);
        try
        {
            model.RequireRgb();
            ModelWeights.LoadExact(model, WeightsPath);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
