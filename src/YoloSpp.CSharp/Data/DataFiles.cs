using Microsoft.FSharp.Core;

namespace YoloSpp.Data;

/// <summary>A .data file (the reference's dataset description) with its class names; paths resolved beside it.</summary>
/// <param name="Path">The .data file.</param>
/// <param name="Classes">Number of classes (<c>classes=</c>).</param>
/// <param name="Train">Training image list or folder (<c>train=</c>).</param>
/// <param name="Valid">Validation image list or folder (<c>valid=</c>).</param>
/// <param name="NamesFile">The .names file (<c>names=</c>).</param>
/// <param name="Names">Class names from the names file (empty when read without it).</param>
public sealed record DataDescription(string Path, int Classes, string Train, string Valid, string NamesFile, IReadOnlyList<string> Names);

/// <summary>Reads the reference's dataset description files (<c>.data</c>, <c>.names</c>) for the shell, turning the core's errors into exceptions.</summary>
public static class DataFiles
{
    /// <summary>Reads and parses a <c>.data</c> file (paths resolved beside it), without reading its names file.</summary>
    /// <exception cref="InvalidInputException">The file is missing or malformed; every problem as file:line: reason.</exception>
    public static DataDescription ReadData(string path)
    {
        if (Directory.Exists(path)) throw new InvalidInputException(path, "is a folder, not a .data file");
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such .data file");
        var data = DataConfig.parseData(path, File.ReadAllText(path));
        if (data.IsError) throw InvalidInputException.From(data.ErrorValue);
        var d = data.ResultValue;
        return new DataDescription(d.Path, d.Classes, d.Train, d.Valid, d.Names, Array.Empty<string>());
    }

    /// <summary>Reads a <c>.names</c> file (one class a line); with <paramref name="expectedCount"/> the count must match.</summary>
    /// <exception cref="InvalidInputException">The file is missing, empty, or has another class count.</exception>
    public static string[] ReadNames(string path, int? expectedCount = null)
    {
        if (Directory.Exists(path)) throw new InvalidInputException(path, "is a folder, not a .names file");
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
        return data with { Names = ReadNames(data.NamesFile, data.Classes) };
    }
}
