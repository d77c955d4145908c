using System.Text.Json;
using YoloSpp.Data;
using static YoloSpp.Data.Labels;

namespace YoloSpp.Data;

/// <summary>One object of a label file: its class and box (centre, size) normalised to the image (0..1).</summary>
/// <param name="Class">Class index.</param>
/// <param name="Cx">Box centre x.</param>
/// <param name="Cy">Box centre y.</param>
/// <param name="W">Box width.</param>
/// <param name="H">Box height.</param>
public readonly record struct ObjectLabel(int Class, double Cx, double Cy, double W, double H)
{
    internal static ObjectLabel Of(LabelRow r) => new(r.Class, r.Cx, r.Cy, r.W, r.H);
    internal static ObjectLabel[] Of(LabelRow[] rows) => Array.ConvertAll(rows, Of);
}

/// <summary>One image of a dataset: its files, original size and objects.</summary>
public sealed class DatasetItem
{
    internal DatasetItem(string imagePath, string labelPath, int width0, int height0, LabelRow[] rows) =>
        (ImagePath, LabelPath, Width0, Height0, Rows) = (imagePath, labelPath, width0, height0, rows);

    /// <summary>The image file.</summary>
    public string ImagePath { get; }
    /// <summary>Its label file (which may not exist: no objects).</summary>
    public string LabelPath { get; }
    /// <summary>Original width in pixels.</summary>
    public int Width0 { get; }
    /// <summary>Original height in pixels.</summary>
    public int Height0 { get; }
    /// <summary>The objects of the label file.</summary>
    public IReadOnlyList<ObjectLabel> Labels => ObjectLabel.Of(Rows);
    internal LabelRow[] Rows { get; }
}

/// <summary>What a label scan found: the items and the reference's counts, or every error.</summary>
public sealed class ScanResult
{
    /// <summary>The image list file or folder scanned.</summary>
    public required string Source { get; init; }
    /// <summary>The images, in list order (empty when there are errors).</summary>
    public required IReadOnlyList<DatasetItem> Items { get; init; }
    /// <summary>Label files found with at least one object.</summary>
    public int Found { get; init; }
    /// <summary>Images without a label file (no objects).</summary>
    public int Missing { get; init; }
    /// <summary>Label files without rows.</summary>
    public int Empty { get; init; }
    /// <summary>Label files that had duplicate rows (dropped).</summary>
    public int Duplicate { get; init; }
    /// <summary>Every problem (file, line, reason); empty when the data is usable.</summary>
    public required IReadOnlyList<InputError> Errors { get; init; }
    /// <summary>Non-fatal notes (duplicate rows dropped), "file:line: reason".</summary>
    public required IReadOnlyList<string> Warnings { get; init; }
    /// <summary>Whether the result came from the cache file.</summary>
    public bool FromCache { get; init; }
    /// <summary>The reference's summary line: "found N, missing M, empty E, duplicate D" and the image count.</summary>
    public string Summary =>
        $"{Source}: {Items.Count} images; found {Found}, missing {Missing}, empty {Empty}, duplicate {Duplicate}";
}

/// <summary>
/// The reference's label caching pass (LoadImagesAndLabels.__init__), as an I/O shell over <c>Labels.parse</c>:
/// resolves the image list, reads every image header (size; corrupt files are errors here, not mid-training) and
/// label file, and keeps a cache next to the list, valid while no image or label file changes size or mtime.
/// </summary>
internal static class LabelScan
{
    const int CacheVersion = 1;

    sealed record Stamp(string Image, long ImageSize, long ImageTicks, long LabelSize, long LabelTicks);
    sealed record CacheEntry(int W, int H, double[] Rows);
    sealed record CacheFile(int Version, int Classes, Stamp[] Stamps, CacheEntry[] Entries, int Found, int Missing, int Empty, int Duplicate, string[] Warnings);

    /// <summary>
    /// The images of a list file (one path a line, relative to the list's folder or absolute; blank lines skipped)
    /// or of a folder (its image files, sorted). Errors name list:line.
    /// </summary>
    public static IReadOnlyList<string> ResolveImages(string source, List<InputError> errors)
    {
        var images = new List<string>();
        if (Directory.Exists(source))
        {
            images.AddRange(Directory.EnumerateFiles(source).Where(isImagePath).Select(Path.GetFullPath).Order(StringComparer.Ordinal));
            if (images.Count == 0) errors.Add(new(source, 0, "no images in the folder"));
            return images;
        }
        if (!File.Exists(source)) { errors.Add(new(source, 0, "no such image list or folder")); return images; }
        var dir = Path.GetDirectoryName(Path.GetFullPath(source))!;
        var lines = File.ReadAllLines(source);
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var full = Path.GetFullPath(Path.IsPathRooted(line) ? line : Path.Combine(dir, line));
            if (!isImagePath(full)) errors.Add(new(source, i + 1, $"'{line}' has no image extension ({string.Join(" ", imageExtensions)})"));
            else if (!File.Exists(full)) errors.Add(new(source, i + 1, $"image not found: {full}"));
            else images.Add(full);
        }
        if (images.Count == 0 && errors.Count == 0) errors.Add(new(source, 0, "the list names no images"));
        return images;
    }

    /// <summary>The cache file of a list (beside it: list.txt → list.txt.cache; folder → folder.cache).</summary>
    public static string CachePath(string source) => Path.GetFullPath(source).TrimEnd('/', '\\') + ".cache";

    static Stamp StampOf(string image)
    {
        var fi = new FileInfo(image);
        var li = new FileInfo(labelPathFor(image));
        return new Stamp(image, fi.Length, fi.LastWriteTimeUtc.Ticks, li.Exists ? li.Length : -1, li.Exists ? li.LastWriteTimeUtc.Ticks : -1);
    }

    /// <summary>Scans a list or folder for <paramref name="numClasses"/> classes, using and refreshing the cache.</summary>
    public static ScanResult Scan(string source, int numClasses, bool useCache = true)
    {
        var errors = new List<InputError>();
        var images = ResolveImages(source, errors);
        if (errors.Count > 0) return Failed(source, errors);
        var stamps = images.Select(StampOf).ToArray();
        var cachePath = CachePath(source);
        if (useCache && TryReadCache(cachePath, numClasses, stamps) is { } cached)
            return FromCache(source, images, cached);

        var items = new DatasetItem[images.Count];
        var warnings = new List<string>();
        int found = 0, missing = 0, empty = 0, dup = 0;
        for (int i = 0; i < images.Count; i++)
        {
            var img = images[i];
            var labelPath = labelPathFor(img);
            int w = 0, h = 0;
            try { (w, h) = RgbImage.ReadSize(img); }
            catch (InvalidInputException e) { errors.AddRange(e.Errors); }
            catch (IOException e) { errors.Add(new(img, 0, e.Message)); }
            LabelRow[] rows = [];
            if (stamps[i].LabelSize < 0) missing++;
            else
            {
                var parsed = parse(labelPath, numClasses, File.ReadAllText(labelPath));
                if (parsed.IsError) { errors.AddRange(parsed.ErrorValue.Select(InputError.Of)); continue; }
                rows = parsed.ResultValue.Rows;
                if (rows.Length == 0) empty++; else found++;
                if (!parsed.ResultValue.DuplicateLines.IsEmpty)
                {
                    dup++;
                    warnings.AddRange(parsed.ResultValue.DuplicateLines.Select(l => $"{labelPath}:{l}: duplicate row dropped"));
                }
            }
            items[i] = new DatasetItem(img, labelPath, w, h, rows);
        }
        if (errors.Count > 0) return Failed(source, errors);
        var result = new ScanResult
        {
            Source = source, Items = items, Found = found, Missing = missing, Empty = empty, Duplicate = dup,
            Errors = [], Warnings = warnings,
        };
        if (useCache) TryWriteCache(cachePath, numClasses, stamps, result);
        return result;
    }

    static ScanResult Failed(string source, List<InputError> errors) =>
        new() { Source = source, Items = [], Errors = errors, Warnings = [] };

    static CacheFile? TryReadCache(string path, int nc, Stamp[] stamps)
    {
        try
        {
            if (!File.Exists(path)) return null;
            var c = JsonSerializer.Deserialize<CacheFile>(File.ReadAllText(path));
            if (c is null || c.Version != CacheVersion || c.Classes != nc || !c.Stamps.SequenceEqual(stamps)) return null;
            return c;
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException) { return null; }
    }

    static ScanResult FromCache(string source, IReadOnlyList<string> images, CacheFile c)
    {
        var items = images.Select((img, i) =>
        {
            var e = c.Entries[i];
            var rows = Enumerable.Range(0, e.Rows.Length / 5).Select(k => new LabelRow((int)e.Rows[k * 5],
                e.Rows[k * 5 + 1], e.Rows[k * 5 + 2], e.Rows[k * 5 + 3], e.Rows[k * 5 + 4])).ToArray();
            return new DatasetItem(img, labelPathFor(img), e.W, e.H, rows);
        }).ToArray();
        return new ScanResult
        {
            Source = source, Items = items, Found = c.Found, Missing = c.Missing, Empty = c.Empty,
            Duplicate = c.Duplicate, Errors = [], Warnings = c.Warnings, FromCache = true,
        };
    }

    /// <summary>Writes the cache atomically (temp file, then rename) so a crash or a parallel reader never sees half of it.</summary>
    static void TryWriteCache(string path, int nc, Stamp[] stamps, ScanResult r)
    {
        var entries = r.Items.Select(it => new CacheEntry(it.Width0, it.Height0,
            it.Rows.SelectMany(l => new[] { l.Class, l.Cx, l.Cy, l.W, l.H }).ToArray())).ToArray();
        var c = new CacheFile(CacheVersion, nc, stamps, entries, r.Found, r.Missing, r.Empty, r.Duplicate, r.Warnings.ToArray());
        var tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllText(tmp, JsonSerializer.Serialize(c));
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a read-only dataset folder still trains; it just rescans next time
            try { File.Delete(tmp); } catch (IOException) { }
        }
    }
}
