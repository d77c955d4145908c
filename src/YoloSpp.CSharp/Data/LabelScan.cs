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
    /// <summary>Label files that have duplicate rows (kept, as the reference keeps them).</summary>
    public int Duplicate { get; init; }
    /// <summary>Every problem (file, line, reason); empty when the data is usable.</summary>
    public required IReadOnlyList<InputError> Errors { get; init; }
    /// <summary>Non-fatal notes (duplicate rows, list lines that name no image), "file:line: reason".</summary>
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
    const int CacheVersion = 2;

    sealed record Stamp(string Image, long ImageSize, long ImageTicks, long LabelSize, long LabelTicks);
    sealed record CacheEntry(int W, int H, double[] Rows);
    sealed record CacheFile(int Version, int Classes, Stamp[] Stamps, CacheEntry[] Entries, int Found, int Missing, int Empty, int Duplicate, string[] Warnings);

    /// <summary>
    /// The images of a list file or of a folder (its image files, sorted). A list is read as the reference reads
    /// it: lines without an image extension are skipped (noted in <paramref name="warnings"/>) and the paths are
    /// sorted as strings. A relative path is looked up beside the list first, then in the working directory (the
    /// reference's rule: calculate_dataset.py writes "./my_yolo_dataset/..." lines), then beside the list's folder
    /// (the reference's layout, data/my_train_data.txt, from any working directory). Errors name list:line.
    /// </summary>
    public static IReadOnlyList<string> ResolveImages(string source, List<InputError> errors, List<string> warnings)
    {
        var images = new List<string>();
        if (Directory.Exists(source))
        {
            images.AddRange(Directory.EnumerateFiles(source).Where(isImagePath).Select(Path.GetFullPath).Order(StringComparer.Ordinal));
            if (images.Count == 0) errors.Add(new(source, 0, "no images in the folder"));
            return images;
        }
        if (!File.Exists(source)) { errors.Add(new(source, 0, "no such image list or folder")); return images; }
        var listDir = Path.GetDirectoryName(Path.GetFullPath(source))!;
        var roots = new[] { listDir, Directory.GetCurrentDirectory(), Path.GetDirectoryName(listDir) }
            .OfType<string>().Distinct(StringComparer.Ordinal).ToArray();
        var lines = File.ReadAllLines(source);
        var entries = new List<(string Path, int Line)>();
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            if (isImagePath(line)) entries.Add((line, i + 1));
            else if (!line.StartsWith('#')) warnings.Add($"{source}:{i + 1}: '{line}' has no image extension ({string.Join(" ", imageExtensions)}), skipped");
        }
        // the reference sorts the list (img_files.sort()): batches, and so training, follow this order
        foreach (var (path, lineNo) in entries.OrderBy(e => e.Path, StringComparer.Ordinal))
        {
            var tried = Path.IsPathRooted(path) ? [path] : roots.Select(r => Path.GetFullPath(Path.Combine(r, path))).Distinct().ToArray();
            if (tried.FirstOrDefault(File.Exists) is { } full) images.Add(full);
            else errors.Add(new(source, lineNo, $"image not found: {string.Join(", ", tried)}"));
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
        var listWarnings = new List<string>();
        var images = ResolveImages(source, errors, listWarnings);
        if (errors.Count > 0) return Failed(source, errors, listWarnings);
        var stamps = images.Select(StampOf).ToArray();
        var cachePath = CachePath(source);
        if (useCache && TryReadCache(cachePath, numClasses, stamps) is { } cached)
            return FromCache(source, images, cached, listWarnings);

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
                    warnings.AddRange(parsed.ResultValue.DuplicateLines.Select(l => $"{labelPath}:{l}: duplicate row (kept, as the reference)"));
                }
            }
            items[i] = new DatasetItem(img, labelPath, w, h, rows);
        }
        if (errors.Count > 0) return Failed(source, errors, [.. listWarnings, .. warnings]);
        var result = new ScanResult
        {
            Source = source, Items = items, Found = found, Missing = missing, Empty = empty, Duplicate = dup,
            Errors = [], Warnings = warnings,
        };
        // the cache keeps the label files' notes; the list's own are the list's, read afresh each time
        if (useCache) TryWriteCache(cachePath, numClasses, stamps, result);
        return listWarnings.Count == 0 ? result : new ScanResult
        {
            Source = source, Items = items, Found = found, Missing = missing, Empty = empty, Duplicate = dup,
            Errors = [], Warnings = [.. listWarnings, .. warnings],
        };
    }

    static ScanResult Failed(string source, List<InputError> errors, List<string>? warnings = null) =>
        new() { Source = source, Items = [], Errors = errors, Warnings = warnings ?? [] };

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

    static ScanResult FromCache(string source, IReadOnlyList<string> images, CacheFile c, List<string> listWarnings)
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
            Duplicate = c.Duplicate, Errors = [], Warnings = [.. listWarnings, .. c.Warnings], FromCache = true,
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
