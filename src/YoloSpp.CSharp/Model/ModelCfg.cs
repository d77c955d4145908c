using YoloSpp.Model;

namespace YoloSpp;

/// <summary>Reads Darknet cfg files into the F# core's typed representation.</summary>
public static class ModelCfg
{
    /// <summary>Parses cfg text; <paramref name="file"/> only names the source in errors.</summary>
    /// <exception cref="InvalidInputException">The text is not a valid cfg for the reference model.</exception>
    public static Cfg.NetCfg Parse(string file, string text)
    {
        var result = Cfg.parse(file, text);
        if (result.IsError) throw InvalidInputException.From(result.ErrorValue);
        return result.ResultValue;
    }

    /// <summary>Reads and parses a cfg file.</summary>
    /// <exception cref="InvalidInputException">The file is not a valid cfg for the reference model.</exception>
    /// <exception cref="InvalidInputException">The file does not exist.</exception>
    public static Cfg.NetCfg Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such cfg file");
        return Parse(path, File.ReadAllText(path));
    }

    /// <summary>Names of the built-in topologies (<c>yolov3-spp</c>, <c>shapes-spp</c>).</summary>
    public static IReadOnlyList<string> TopologyNames => YoloSpp.Model.Topology.names.ToArray();

    /// <summary>
    /// A built-in topology: <c>yolov3-spp</c> (the reference's yolov3-spp.cfg, module for module) or <c>shapes-spp</c>
    /// (the training demo's shallow variant), with <paramref name="numClasses"/> classes.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown name or a class count below 1.</exception>
    public static Cfg.NetCfg Topology(string name, int numClasses)
    {
        if (numClasses < 1) throw new ArgumentException($"classes must be at least 1, got {numClasses}", nameof(numClasses));
        var result = YoloSpp.Model.Topology.named(name, numClasses);
        if (result.IsError) throw new ArgumentException(result.ErrorValue, nameof(name));
        return result.ResultValue;
    }

    /// <summary>A cfg file, or, when no such file exists and the name is a built-in topology, that topology.</summary>
    /// <exception cref="InvalidInputException">Neither a file nor a topology name.</exception>
    public static Cfg.NetCfg LoadOrTopology(string pathOrName, int numClasses)
    {
        if (!File.Exists(pathOrName) && TopologyNames.Contains(pathOrName.ToLowerInvariant()))
            return Topology(pathOrName, numClasses);
        if (!File.Exists(pathOrName))
            throw new InvalidInputException(pathOrName, $"no such cfg file (nor a built-in topology: {string.Join(", ", TopologyNames)})");
        return Load(pathOrName);
    }

    /// <summary>Writes a cfg as text (atomically); <see cref="Parse"/> of the file gives the same network.</summary>
    public static void Write(Cfg.NetCfg cfg, string destinationPath) => AtomicFile.WriteAllText(destinationPath, CfgWrite.toText(cfg));

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
