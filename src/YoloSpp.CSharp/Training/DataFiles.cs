using YoloSpp.Data;

namespace YoloSpp;

/// <summary>A .data file with its class names.</summary>
/// <param name="Data">The parsed .data file (paths resolved beside it).</param>
/// <param name="Names">Class names from its names file.</param>
public sealed record DataFiles(DataConfig.DataFile Data, IReadOnlyList<string> Names)
{
    /// <summary>Reads and checks a .data file and its .names file.</summary>
    /// <exception cref="DatasetException">Every problem, as file:line: reason.</exception>
    public static DataFiles Load(string path)
    {
        if (!File.Exists(path)) throw new DatasetException(new[] { $"{path}: no such .data file" });
        var parsed = DataConfig.parseData(path, File.ReadAllText(path));
        if (parsed.IsError) throw new DatasetException(parsed.ErrorValue.Select(e => e.ToString()).ToArray());
        var data = parsed.ResultValue;
        if (!File.Exists(data.Names)) throw new DatasetException(new[] { $"{path}: names file {data.Names} does not exist" });
        var names = DataConfig.parseNames(data.Names, Microsoft.FSharp.Core.FSharpOption<int>.Some(data.Classes), File.ReadAllText(data.Names));
        if (names.IsError) throw new DatasetException(names.ErrorValue.Select(e => e.ToString()).ToArray());
        return new DataFiles(data, names.ResultValue);
    }
}
