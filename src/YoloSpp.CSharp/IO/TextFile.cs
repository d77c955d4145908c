
namespace YoloSpp.IO;

/// <summary>Reads the small text files users write (cfg, hyp): a missing, unreadable, huge or binary file is an error
/// naming it, not a .NET exception.</summary>
internal static class TextFile
{
    /// <summary>Text files larger than this are not settings files (yolov3-spp.cfg, the largest, is 9 kB).</summary>
    const long MaxBytes = 16L << 20;

    /// <summary>The file's text (UTF-8 unless a byte order mark says otherwise); <paramref name="kind"/> names it in errors.</summary>
    /// <exception cref="InvalidInputException">The file is missing, a folder, unreadable, over 16 MB or binary.</exception>
    public static string Read(string path, string kind)
    {
        if (Directory.Exists(path)) throw new InvalidInputException(path, $"is a folder, not a {kind} file");
        if (!File.Exists(path)) throw new InvalidInputException(path, $"no such {kind} file");
        try
        {
            var length = new FileInfo(path).Length;
            if (length > MaxBytes) throw new InvalidInputException(path, $"{length:N0} bytes: too large for a {kind} file");
            var text = File.ReadAllText(path);
            if (text.Contains('\0')) throw new InvalidInputException(path, $"binary data: not a {kind} file");
            return text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidInputException(path, $"cannot read the {kind} file ({e.Message})", e);
        }
    }
}
