using Microsoft.FSharp.Core;
using Microsoft.FSharp.Collections;

namespace YoloSpp.Data;

/// <summary>A dataset description, the reference's .data file or an Ultralytics data.yaml, with its class names;
/// paths resolved beside it.</summary>
/// <param name="Path">The .data or .yaml file.</param>
/// <param name="Classes">Number of classes (<c>classes=</c>; a yaml's <c>names</c>).</param>
/// <param name="Train">Training image list or folder (<c>train=</c>; a yaml split of several sources is one list
/// of their images, written beside the yaml as <c>.&lt;name&gt;.train.txt</c>).</param>
/// <param name="Valid">Validation image list or folder (<c>valid=</c>; a yaml's <c>val</c>).</param>
/// <param name="NamesFile">The .names file (<c>names=</c>); for a yaml, the yaml itself (it holds the names).</param>
/// <param name="Names">Class names (from a .data file's names file only when read with <see cref="DataFiles.Load"/>).</param>
public sealed record DataDescription(string Path, int Classes, string Train, string Valid, string NamesFile, IReadOnlyList<string> Names);

/// <summary>Reads the reference's dataset description files (<c>.data</c>, <c>.names</c>) for the shell, turning the core's errors into exceptions.</summary>
public static class DataFiles
{
    /// <summary>Reads and parses a <c>.data</c> file (paths resolved beside it), without reading its names file; or an
    /// Ultralytics data.yaml (<c>.yaml</c>, <c>.yml</c>: see <see cref="DataConfig.parseYaml"/>), names included.</summary>
    /// <exception cref="InvalidInputException">The file is missing or malformed, or a yaml split does not exist; every problem as file:line: reason.</exception>
    public static DataDescription ReadData(string path)
    {
        var kind = DataConfig.isYaml(path) ? "data.yaml" : ".data";
        if (Directory.Exists(path)) throw new InvalidInputException(path, $"is a folder, not a {kind} file");
        if (!File.Exists(path)) throw new InvalidInputException(path, $"no such {kind} file");
        if (DataConfig.isYaml(path)) return ReadYaml(path);
        var data = DataConfig.parseData(path, File.ReadAllText(path));
        if (data.IsError) throw InvalidInputException.From(data.ErrorValue);
        var d = data.ResultValue;
        return new DataDescription(d.Path, d.Classes, d.Train, d.Valid, d.Names, Array.Empty<string>());
    }

    static DataDescription ReadYaml(string path)
    {
        var parsed = DataConfig.parseYaml(path, FSharpFunc<string, bool>.FromConverter(p => File.Exists(p) || Directory.Exists(p)), File.ReadAllText(path));
        if (parsed.IsError) throw InvalidInputException.From(parsed.ErrorValue);
        var y = parsed.ResultValue;
        var errors = new List<InputError>();
        string Split(string key, IEnumerable<string> sources)
        {
            var list = sources.ToList();
            int line = y.Lines.TryFind(key) is { } l ? l.Value : 0;
            foreach (var s in list.Where(s => !File.Exists(s) && !Directory.Exists(s)))
                errors.Add(new(path, line, $"{key}: not found: {s} (relative to path: {y.Root})"));
            if (list.Count == 1 || errors.Count > 0) return list.FirstOrDefault() ?? "";
            return CombinedList(path, key, list, errors);
        }
        var train = Split("train", y.Train);
        var valid = Split("val", y.Val);
        if (errors.Count > 0) throw new InvalidInputException(errors);
        return new DataDescription(path, y.Names.Length, train, valid, path, y.Names);
    }

    /// <summary>A split of several sources as one image list (absolute paths, sorted), so that the scan, its cache and
    /// every message have one file to name: beside the yaml, rewritten only when its content changes; in the temp
    /// folder when the dataset's folder is read-only.</summary>
    static string CombinedList(string yaml, string key, List<string> sources, List<InputError> errors)
    {
        var images = new List<string>();
        var warnings = new List<string>();
        foreach (var s in sources) images.AddRange(LabelScan.ResolveImages(s, errors, warnings));
        if (errors.Count > 0) return "";
        var text = string.Concat(images.Distinct().Order(StringComparer.Ordinal).Select(i => i + "\n"));
        var name = $".{System.IO.Path.GetFileNameWithoutExtension(yaml)}.{key}.txt";
        var beside = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(yaml))!, name);
        foreach (var target in new[] { beside, System.IO.Path.Combine(System.IO.Path.GetTempPath(), "yolospp-lists", LabelCache.Hash(System.Text.Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(yaml))) + name) })
        {
            try
            {
                if (!File.Exists(target) || File.ReadAllText(target) != text) YoloSpp.IO.AtomicFile.WriteAllText(target, text);
                return target;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        errors.Add(new(yaml, 0, $"{key}: cannot write the combined image list {beside}"));
        return "";
    }

    /// <summary>Reads a <c>.names</c> file (one class a line), or the <c>names:</c> of a data.yaml; with
    /// <paramref name="expectedCount"/> the count must match.</summary>
    /// <exception cref="InvalidInputException">The file is missing, empty, or has another class count.</exception>
    public static string[] ReadNames(string path, int? expectedCount = null)
    {
        if (Directory.Exists(path)) throw new InvalidInputException(path, "is a folder, not a .names file");
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such .names file");
        if (DataConfig.isYaml(path))
        {
            // a data.yaml's names: (what a yaml dataset's NamesFile is); its lists need not exist for that
            var parsed = DataConfig.parseYaml(path, FSharpFunc<string, bool>.FromConverter(_ => true), File.ReadAllText(path));
            if (parsed.IsError) throw InvalidInputException.From(parsed.ErrorValue);
            var yamlNames = parsed.ResultValue.Names;
            if (expectedCount is int c && yamlNames.Length != c)
                throw new InvalidInputException(path, $"names: {yamlNames.Length} classes where {c} are expected");
            return yamlNames;
        }
        var expected = expectedCount is int n ? FSharpOption<int>.Some(n) : FSharpOption<int>.None;
        var names = DataConfig.parseNames(path, expected, File.ReadAllText(path));
        if (names.IsError) throw InvalidInputException.From(names.ErrorValue);
        return names.ResultValue;
    }

    /// <summary>Reads a <c>.data</c> file and its <c>.names</c> file, checking the class count; or a data.yaml.</summary>
    /// <exception cref="InvalidInputException">Every problem, as file:line: reason.</exception>
    public static DataDescription Load(string path)
    {
        var data = ReadData(path);
        return data.Names.Count > 0 ? data : data with { Names = ReadNames(data.NamesFile, data.Classes) };
    }
}
