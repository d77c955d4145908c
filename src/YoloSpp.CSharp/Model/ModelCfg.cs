using YoloSpp.Model;

namespace YoloSpp;

/// <summary>A Darknet cfg file (or text) could not be used: every problem found, as file:line: reason lines.</summary>
public sealed class CfgException : FormatException
{
    /// <summary>The problems, one per entry, formatted file:line: reason.</summary>
    public IReadOnlyList<string> Errors { get; }

    /// <summary>Creates the exception from the parser's errors.</summary>
    public CfgException(IReadOnlyList<string> errors) : base(string.Join(Environment.NewLine, errors)) => Errors = errors;
}

/// <summary>Reads Darknet cfg files into the F# core's typed representation.</summary>
public static class ModelCfg
{
    /// <summary>Parses cfg text; <paramref name="file"/> only names the source in errors.</summary>
    /// <exception cref="CfgException">The text is not a valid cfg for the reference model.</exception>
    public static Cfg.NetCfg Parse(string file, string text)
    {
        var result = Cfg.parse(file, text);
        if (result.IsError) throw new CfgException(result.ErrorValue.Select(e => e.ToString()).ToArray());
        return result.ResultValue;
    }

    /// <summary>Reads and parses a cfg file.</summary>
    /// <exception cref="CfgException">The file is not a valid cfg for the reference model.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static Cfg.NetCfg Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such cfg file", path);
        return Parse(path, File.ReadAllText(path));
    }

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
        if (result.IsError) throw new CfgException(result.ErrorValue.Select(e => e.ToString()).ToArray());
        AtomicFile.WriteAllText(destinationPath, result.ResultValue);
    }
}
