using System.Security.Cryptography;
using System.Text.Json;
using YoloSpp.IO;
using LabelRow = YoloSpp.Data.Labels.LabelRow;

namespace YoloSpp.Data;

/// <summary>
/// The label scan's cache, a JSON file beside the image list: each image's size and verdict and each label file's
/// rows, valid while no image changes size or modification time and no label file changes content. Label files are
/// keyed by a SHA-256 of their bytes, not by size and time: an edit that keeps both (a class digit changed within
/// the same second, a restored backup) is seen. Images keep size and time (hashing every image would read the whole
/// dataset on every start; yolov5 keys them the same way). Written atomically; any unreadable cache is rescanned.
/// </summary>
internal static class LabelCache
{
    const int Version = 3;

    /// <summary>What stands where an image's label file should be.</summary>
    public enum LabelState
    {
        /// <summary>No file: the image has no objects.</summary>
        Missing,
        /// <summary>A label file.</summary>
        File,
        /// <summary>A folder: an error.</summary>
        Directory,
    }

    /// <summary>What a cached scan depended on, per image.</summary>
    public sealed record Stamp(string Image, long ImageSize, long ImageTicks, LabelState Label, string LabelHash);

    /// <summary>A label error kept by line.</summary>
    public sealed record LineError(int Line, string Reason);

    /// <summary>
    /// One image's scan: oriented size, rows (class, cx, cy, w, h flattened), duplicate lines, label errors, why the
    /// image is skipped (unreadable or corrupt), and the note of a restored image.
    /// </summary>
    public sealed record Entry(int W, int H, double[] Rows, int[]? DuplicateLines, LineError[]? Errors, string? Skip, string? Note)
    {
        /// <summary>The rows as label records.</summary>
        public LabelRow[] RowsOf() => Enumerable.Range(0, Rows.Length / 5)
            .Select(k => new LabelRow((int)Rows[k * 5], Rows[k * 5 + 1], Rows[k * 5 + 2], Rows[k * 5 + 3], Rows[k * 5 + 4])).ToArray();
    }

    sealed record CacheFile(int Version, int Classes, Stamp[] Stamps, Entry[] Entries);

    /// <summary>Label rows flattened for the cache.</summary>
    public static double[] Flatten(LabelRow[] rows) => rows.SelectMany(l => new[] { l.Class, l.Cx, l.Cy, l.W, l.H }).ToArray();

    /// <summary>The content key of a label file.</summary>
    public static string Hash(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes));

    /// <summary>The stamp of an image and its label file (state and hash from the caller, who read the label).</summary>
    public static Stamp StampOf(string image, LabelState label, string labelHash)
    {
        var fi = new FileInfo(image);
        return fi.Exists ? new Stamp(image, fi.Length, fi.LastWriteTimeUtc.Ticks, label, labelHash) : new Stamp(image, -1, -1, label, labelHash);
    }

    /// <summary>The cached entries when the cache matches every stamp, else null.</summary>
    public static Entry[]? TryRead(string path, int nc, Stamp[] stamps)
    {
        try
        {
            if (!File.Exists(path)) return null;
            var c = JsonSerializer.Deserialize<CacheFile>(File.ReadAllText(path));
            if (c is null || c.Version != Version || c.Classes != nc || c.Stamps is null || c.Entries is null
                || c.Entries.Length != stamps.Length || !c.Stamps.SequenceEqual(stamps) || c.Entries.Any(e => e is null || e.Rows is null))
                return null;
            return c.Entries;
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Writes the cache atomically (temp file, then rename) so a crash or a parallel reader never sees half of
    /// it. A scan with label errors is not cached: it is reread until fixed.</summary>
    public static void TryWrite(string path, int nc, Stamp[] stamps, Entry[] entries)
    {
        if (entries.Any(e => e.Errors is { Length: > 0 })) return;
        try { AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new CacheFile(Version, nc, stamps, entries))); }
        // a read-only dataset folder still trains; it just rescans next time
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
