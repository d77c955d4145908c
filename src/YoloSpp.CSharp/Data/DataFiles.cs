using Microsoft.FSharp.Core;

namespace YoloSpp.Data;

/// <summary>A .data file with its class names.</summary>
/// <param name="Data">The parsed .data file (paths resolved beside it).</param>
/// <param name="Names">Class names from its names file (as many as <c>classes</c>).</param>
public sealed record DataDescription(DataConfig.DataFile Data, IReadOnlyList<string> Names);

/// <summary>Reads the reference's dataset description files (<c>.data</c>, <c>.names</c>) for the shell, turning the core's errors into exceptions.</summary>
public static class DataFiles
{
    /// <summary>Reads and parses a <c>.data</c> file (paths resolved beside it).</summary>
    /// <exception cref="InvalidInputException">The file is missing or malformed; every problem as file:line: reason.</exception>
    public static DataConfig.DataFile ReadData(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such .data file");
        var data = DataConfig.parseData(path, File.ReadAllText(path));
        if (data.IsError) throw InvalidInputException.From(data.ErrorValue);
        return data.ResultValue;
    }

    /// <summary>Reads a <c>.names</c> file (one class a line); with <paramref name="expectedCount"/> the count must match.</summary>
    /// <exception cref="InvalidInputException">The file is missing, empty, or has another class count.</exception>
    public static string[] ReadNames(string path, int? expectedCount = null)
    {
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such .names file");
        var expected = expectedCount is int n ? FSharpOption<int>.Some(n) : FSharpOption<int>.None;
        var names = DataConfig.parseNames(path, expected, File.ReadAllText(path));
        if (names.IsError) throw InvalidInputException.From(names.ErrorValue);
        return names.ResultValue;
    }

    /// <summary>Reads a <c>.data</c> file and its <c>.names</c> file, checking the class count.</summary>
    /// <exception cref="InvalidInputException">Every problem, as file:line: reason.</exception>
    public static DataDescription Load(string path)
    {
        var data = ReadData(path);
        return new DataDescription(data, ReadNames(data.Names, data.Classes));
    }
}
