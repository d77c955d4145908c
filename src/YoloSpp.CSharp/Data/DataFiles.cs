using Microsoft.FSharp.Core;

namespace YoloSpp.Data;

/// <summary>Reads the reference's dataset description files (<c>.data</c>, <c>.names</c>) for the shell, turning the core's errors into exceptions.</summary>
public static class DataFiles
{
    /// <summary>Reads and parses a <c>.data</c> file (paths resolved beside it).</summary>
    /// <exception cref="DatasetException">The file is missing or malformed; every problem as file:line: reason.</exception>
    public static DataConfig.DataFile ReadData(string path)
    {
        if (!File.Exists(path)) throw new DatasetException([$"{path}: no such .data file"]);
        var data = DataConfig.parseData(path, File.ReadAllText(path));
        if (data.IsError) throw new DatasetException(data.ErrorValue.Select(e => e.ToString()).ToArray());
        return data.ResultValue;
    }

    /// <summary>Reads a <c>.names</c> file (one class a line); with <paramref name="expectedCount"/> the count must match.</summary>
    /// <exception cref="DatasetException">The file is missing, empty, or has another class count.</exception>
    public static string[] ReadNames(string path, int? expectedCount = null)
    {
        if (!File.Exists(path)) throw new DatasetException([$"{path}: no such .names file"]);
        var expected = expectedCount is int n ? FSharpOption<int>.Some(n) : FSharpOption<int>.None;
        var names = DataConfig.parseNames(path, expected, File.ReadAllText(path));
        if (names.IsError) throw new DatasetException(names.ErrorValue.Select(e => e.ToString()).ToArray());
        return names.ResultValue;
    }
}
