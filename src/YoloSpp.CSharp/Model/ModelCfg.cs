using YoloSpp.IO;
using YoloSpp.Model;

namespace YoloSpp.Model;

/// <summary>
/// A parsed Darknet cfg: the [net] options and the modules a <see cref="DarkNet"/> is built from, module for module
/// as the reference's parse_model_cfg reads them. Read one with <see cref="ModelCfg"/>.
/// </summary>
public sealed class DarknetConfig
{
    internal Cfg.NetCfg Core { get; }

    /// <summary>The text this config was parsed from (comments included), or null for one built or changed in code.</summary>
    readonly string? _sourceText;

    internal DarknetConfig(Cfg.NetCfg core, string source = "cfg", string? sourceText = null) =>
        (Core, Source, _sourceText) = (core, source, sourceText);

    /// <summary>Where the cfg came from (its file, or the name of a built-in topology), for messages.</summary>
    public string Source { get; }

    /// <summary>Input channels ([net] channels, 3 for RGB).</summary>
    public int Channels => Core.Net.Channels;
    /// <summary>[net] width, or null when the cfg gives none.</summary>
    public int? Width => Core.Net.Width is { } w ? w.Value : null;
    /// <summary>[net] height, or null when the cfg gives none.</summary>
    public int? Height => Core.Net.Height is { } h ? h.Value : null;
    /// <summary>Number of modules (sections after [net]).</summary>
    public int ModuleCount => Core.Modules.Length;
    /// <summary>The cfg section name of each module ("convolutional", "shortcut", "route", "maxpool", "upsample", "yolo").</summary>
    public IReadOnlyList<string> ModuleTypes => Core.Modules.Select(m => Summary.typeName(m.Layer)).ToArray();
    /// <summary>Module indices of the [yolo] layers.</summary>
    public IReadOnlyList<int> YoloLayerIndices => CfgGraph.yoloLayers(Core).ToArray();
    /// <summary>Classes of the [yolo] layers (0 without any).</summary>
    public int NumClasses => Core.Modules.Select(m => m.Layer).OfType<Cfg.Layer.Yolo>().Select(y => y.Item.Classes).FirstOrDefault();
    /// <summary>Whether the network begins with yolov3-spp's Darknet-53 backbone, module for module (see <see cref="YoloSpp.Training.TrainSteps.Model"/>).</summary>
    public bool HasDarknet53Backbone => Topology.hasDarknet53Backbone(Core);
    /// <summary>How many modules, from module 0, make the network's backbone: up to the last shortcut before the
    /// first route or yolo layer (75 for yolov3-spp, Darknet-53's; 27 for shapes-spp); null when there is none.</summary>
    public int? BackboneModules => CfgGraph.backboneModules(Core) is { } n ? n.Value : null;

    /// <summary>The same network with [net] width and height set to <paramref name="size"/> (a multiple of the grid stride).</summary>
    public DarknetConfig WithImageSize(int size)
    {
        DarkNet.CheckImageSize(size);
        var net = Core.Net;
        var some = Microsoft.FSharp.Core.FSharpOption<int>.Some(size);
        return new DarknetConfig(new Cfg.NetCfg(new Cfg.NetOptions(net.Line, net.Batch, net.Subdivisions, some, some, net.Channels, net.Other), Core.Modules), Source);
    }

    /// <summary>The anchors of the [yolo] layers (the first one's <c>anchors=</c>, in pixels, as written).</summary>
    public IReadOnlyList<(double W, double H)> Anchors =>
        Core.Modules.Select(m => m.Layer).OfType<Cfg.Layer.Yolo>().Select(y => y.Item.Anchors.Select(a => (a.Item1, a.Item2)).ToArray())
            .FirstOrDefault() ?? [];

    /// <summary>The anchors the [yolo] layers use (each one's <c>anchors[mask]</c>, in layer order), in pixels.</summary>
    public IReadOnlyList<(double W, double H)> MaskedAnchors =>
        Core.Modules.Select(m => m.Layer).OfType<Cfg.Layer.Yolo>()
            .SelectMany(y => y.Item.Mask.Select(i => (y.Item.Anchors[i].Item1, y.Item.Anchors[i].Item2))).ToArray();

    /// <summary>The same network with every [yolo] layer's <c>anchors=</c> replaced (masks unchanged), parsed again.</summary>
    /// <exception cref="InvalidInputException">The masks do not fit the new anchor list.</exception>
    public DarknetConfig WithAnchors(IReadOnlyList<(double W, double H)> anchors)
    {
        ArgumentNullException.ThrowIfNull(anchors);
        var list = Microsoft.FSharp.Collections.ListModule.OfSeq(anchors.Select(a => Tuple.Create(a.W, a.H)));
        var text = CfgWrite.withClasses(Source, NumClasses, Microsoft.FSharp.Core.FSharpOption<Microsoft.FSharp.Collections.FSharpList<Tuple<double, double>>>.Some(list), ToCfgText());
        if (text.IsError) throw InvalidInputException.From(text.ErrorValue);
        return ModelCfg.Parse(Source, text.ResultValue);
    }

    /// <summary>The cfg as Darknet text (parsing it gives the same network): the text it was read from, comments
    /// included, or written from the modules for one built in code.</summary>
    public string ToCfgText() => _sourceText ?? CfgWrite.toText(Core);

    /// <summary>Whether two configs build the same network (the same [net] size and channels and the same modules;
    /// comments and line numbers aside).</summary>
    public bool SameNetworkAs(DarknetConfig other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return CfgWrite.toText(Core) == CfgWrite.toText(other.Core);
    }
}

/// <summary>Reads and writes Darknet cfg files.</summary>
public static class ModelCfg
{
    /// <summary>Parses cfg text and checks that the network can run (<c>CfgCheck</c>: option values, anchors, widths, a
    /// parameter budget, feature maps that fit together), before anything is allocated; <paramref name="file"/> only
    /// names the source in errors.</summary>
    /// <exception cref="InvalidInputException">The text is not a valid cfg for the reference model, or describes a
    /// network that cannot run; every problem as file:line: reason, naming the layer.</exception>
    public static DarknetConfig Parse(string file, string text)
    {
        var result = CfgCheck.parse(file, text);
        if (result.IsError) throw InvalidInputException.From(result.ErrorValue);
        return new DarknetConfig(result.ResultValue, file, text);
    }

    /// <summary>Reads and parses a cfg file.</summary>
    /// <exception cref="InvalidInputException">The file is not a valid cfg for the reference model.</exception>
    /// <exception cref="InvalidInputException">The file does not exist.</exception>
    public static DarknetConfig Load(string path)
    {
        if (Directory.Exists(path)) throw new InvalidInputException(path, "is a folder, not a cfg file");
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such cfg file");
        return Parse(path, TextFile.Read(path, "cfg"));
    }

    /// <summary>Names of the built-in topologies (<c>yolov3-spp</c>, <c>shapes-spp</c>).</summary>
    public static IReadOnlyList<string> TopologyNames => YoloSpp.Model.Topology.names.ToArray();

    /// <summary>The class count a built-in topology has unless told otherwise: 80 for <c>yolov3-spp</c> (COCO, as the
    /// reference's yolov3-spp.cfg), 5 for <c>shapes-spp</c> (the shapes dataset), 80 for any other name.</summary>
    public static int TopologyClasses(string name) =>
        string.Equals(name, "shapes-spp", StringComparison.OrdinalIgnoreCase) ? 5 : 80;

    /// <summary>
    /// A built-in topology: <c>yolov3-spp</c> (the reference's yolov3-spp.cfg, module for module) or <c>shapes-spp</c>
    /// (the training demo's shallow variant: the repository's cfg/shapes-spp.cfg, embedded in the library), with
    /// <paramref name="numClasses"/> classes (each [yolo]'s classes and the filters of the conv before it).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown name or a class count below 1.</exception>
    public static DarknetConfig Topology(string name, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (numClasses < 1) throw new ArgumentException($"classes must be at least 1, got {numClasses}", nameof(numClasses));
        if (name.Equals("shapes-spp", StringComparison.OrdinalIgnoreCase))
        {
            var file = Recipes.SourceName("shapes-spp.cfg");
            var text = CfgWrite.withClasses(file, numClasses, null, Recipes.Read("shapes-spp.cfg"));
            if (text.IsError) throw InvalidInputException.From(text.ErrorValue);
            return Parse(file, text.ResultValue);
        }
        var result = YoloSpp.Model.Topology.named(name, numClasses);
        if (result.IsError) throw new ArgumentException(result.ErrorValue, nameof(name));
        return new DarknetConfig(result.ResultValue, name);
    }

    /// <summary>A cfg file, or, when no such file exists and the name is a built-in topology, that topology with
    /// <paramref name="numClasses"/> classes (a file keeps its own).</summary>
    /// <exception cref="InvalidInputException">Neither a file nor a topology name.</exception>
    public static DarknetConfig LoadOrTopology(string pathOrName, int numClasses)
    {
        if (Directory.Exists(pathOrName)) throw new InvalidInputException(pathOrName, "is a folder, not a cfg file");
        if (!File.Exists(pathOrName) && TopologyNames.Contains(pathOrName.ToLowerInvariant()))
            return Topology(pathOrName, numClasses);
        if (!File.Exists(pathOrName))
            throw new InvalidInputException(pathOrName, $"no such cfg file (nor a built-in topology: {string.Join(", ", TopologyNames)})");
        return Load(pathOrName);
    }

    /// <summary>Writes a cfg as text (atomically); <see cref="Parse"/> of the file gives the same network.</summary>
    public static void Write(DarknetConfig cfg, string destinationPath) => AtomicFile.WriteAllText(destinationPath, cfg.ToCfgText());

    /// <summary>
    /// Writes a copy of a cfg with another class count (and optionally other anchors): <c>classes</c> in every
    /// [yolo] and <c>filters = len(mask)·(classes + 5)</c> in the convolution before it, as the reference's
    /// calculate_dataset does. Everything else, comments included, is kept. The write is atomic.
    /// </summary>
    public static void WriteWithClasses(string sourcePath, string destinationPath, int numClasses,
        IReadOnlyList<(double W, double H)>? anchors = null)
    {
        var text = File.ReadAllText(sourcePath);
        var anchorList = anchors is null
            ? null
            : Microsoft.FSharp.Core.FSharpOption<Microsoft.FSharp.Collections.FSharpList<Tuple<double, double>>>.Some(
                Microsoft.FSharp.Collections.ListModule.OfSeq(anchors.Select(a => Tuple.Create(a.W, a.H))));
        var result = CfgWrite.withClasses(sourcePath, numClasses, anchorList, text);
        if (result.IsError) throw InvalidInputException.From(result.ErrorValue);
        AtomicFile.WriteAllText(destinationPath, result.ResultValue);
    }
}
