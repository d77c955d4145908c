using System.Text.Json;
using YoloSpp.Data;
using Summary = YoloSpp.Model.Summary;
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
    /// <summary>Non-fatal notes (duplicate rows, list lines that name no image, images without a label file, skipped
    /// and restored images), "file:line: reason".</summary>
    public required IReadOnlyList<string> Warnings { get; init; }
    /// <summary>Images left out because they are unreadable, truncated or corrupt (yolov5's "ignoring corrupt image"),
    /// each with the reason; they are not in <see cref="Items"/>.</summary>
    public IReadOnlyList<InputError> Skipped { get; init; } = [];
    /// <summary>The label files that do not exist, in list order (their images have no objects).</summary>
    public IReadOnlyList<string> MissingLabels { get; init; } = [];
    /// <summary>Whether the result came from the cache file.</summary>
    public bool FromCache { get; init; }
    /// <summary>The reference's summary line: "found N, missing M, empty E, duplicate D" and the image count.</summary>
    public string Summary =>
        $"{Source}: {Items.Count} images; found {Found}, missing {Missing}, empty {Empty}, duplicate {Duplicate}" +
        (Skipped.Count > 0 ? $"; skipped {Skipped.Count} corrupt" : "");

    /// <summary>
    /// Why this set has no labels to learn from (no label file has a row), naming where they were looked for; null
    /// when some do. The reference stops a training run on such a set ("No labels found").
    /// </summary>
    internal string? NoLabels
    {
        get
        {
            if (Found > 0 || Items.Count == 0) return null;
            if (Missing == 0) return $"no labels: all {Empty} label files are empty";
            var folders = MissingLabels.Select(p => Path.GetDirectoryName(p) ?? ".").Distinct().Take(3).ToArray();
            var where = $"looked in {string.Join(", ", folders)} (e.g. {MissingLabels[0]}); {LabelScan.LabelRule}";
            return Empty == 0
                ? $"no labels found for its {Items.Count} images: {where}"
                : $"no labels: {Empty} label files are empty and {Missing} images have none: {where}";
        }
    }
}

/// <summary>
/// The reference's label caching pass (LoadImagesAndLabels.__init__), as an I/O shell over <c>Labels.parse</c>:
/// resolves the image list, checks every image as yolov5's verify_image_label does (the header, the pixel limit,
/// then every pixel: a truncated or corrupt file is skipped with a warning naming it, an oversized one is an error),
/// reads every label file, and keeps a cache next to the list (<see cref="LabelCache"/>).
/// </summary>
internal static class LabelScan
{
    /// <summary>How a label file is found, for messages.</summary>
    public const string LabelRule =
        "a label file is the image's path with its last 'images' folder replaced by 'labels' and the extension by .txt";

    /// <summary>Label files larger than this are refused: a row is about 40 bytes, so this is over a million objects.</summary>
    const long MaxLabelBytes = 64L << 20;

    /// <summary>Images without a label file named in the warning before "and N more".</summary>
    const int MissingShown = 5;

    /// <summary>
    /// The images of a list file or of a folder (its image files and its sub-folders', sorted: yolov5 reads a folder
    /// as <c>folder/**/*.*</c>). A list is read as the reference reads
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
            images.AddRange(Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories).Where(isImagePath).Select(Path.GetFullPath).Order(StringComparer.Ordinal));
            if (images.Count == 0) errors.Add(new(source, 0, "no images in the folder"));
            return images;
        }
        if (!File.Exists(source)) { errors.Add(new(source, 0, "no such image list or folder")); return images; }
        var listDir = Path.GetDirectoryName(Path.GetFullPath(source))!;
        var roots = new[] { listDir, Directory.GetCurrentDirectory(), Path.GetDirectoryName(listDir) }
            .OfType<string>().Distinct(StringComparer.Ordinal).ToArray();
        string[] lines;
        try { lines = File.ReadAllLines(source); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { errors.Add(new(source, 0, $"cannot read the image list ({e.Message})")); return images; }
        var entries = new List<(string Path, int Line)>();
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            if (line.IndexOf('\0') >= 0) { errors.Add(new(source, i + 1, "binary data: not an image list")); return images; }
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

    /// <summary>A label file as read: its state, bytes and content hash (the cache's key).</summary>
    sealed record LabelFile(string Path, LabelCache.LabelState State, byte[] Bytes, string Hash, string? Error);

    static LabelFile ReadLabel(string image)
    {
        var path = labelPathFor(image);
        if (Directory.Exists(path))
            return new(path, LabelCache.LabelState.Directory, [], "dir", $"a folder where the label file of {image} should be");
        if (!File.Exists(path)) return new(path, LabelCache.LabelState.Missing, [], "-", null);
        try
        {
            if (new FileInfo(path).Length > MaxLabelBytes)
                return new(path, LabelCache.LabelState.File, [], "big", $"{new FileInfo(path).Length:N0} bytes: too large for a label file (at most {MaxLabelBytes:N0})");
            var bytes = File.ReadAllBytes(path);
            return new(path, LabelCache.LabelState.File, bytes, LabelCache.Hash(bytes), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new(path, LabelCache.LabelState.File, [], "unreadable", $"cannot read the label file ({e.Message})");
        }
    }

    static string Text(byte[] bytes)
    {
        // as File.ReadAllText: UTF-8 unless a byte order mark says otherwise
        using var reader = new StreamReader(new MemoryStream(bytes), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }

    /// <summary>Scans a list or folder for <paramref name="numClasses"/> classes, using and refreshing the cache.</summary>
    public static ScanResult Scan(string source, int numClasses, bool useCache = true)
    {
        var errors = new List<InputError>();
        var listWarnings = new List<string>();
        var images = ResolveImages(source, errors, listWarnings);
        if (errors.Count > 0) return Failed(source, errors, listWarnings);
        var labels = new LabelFile[images.Count];
        Parallel.For(0, images.Count, i => labels[i] = ReadLabel(images[i]));
        var stamps = images.Select((img, i) => LabelCache.StampOf(img, labels[i].State, labels[i].Hash)).ToArray();
        var cachePath = CachePath(source);
        var entries = useCache ? LabelCache.TryRead(cachePath, numClasses, stamps) : null;
        bool fromCache = entries is not null;
        entries ??= Verify(images, labels, numClasses);

        var items = new List<DatasetItem>(images.Count);
        var warnings = new List<string>();
        var skipped = new List<InputError>();
        var missingLabels = new List<string>();
        int found = 0, missing = 0, empty = 0, dup = 0;
        for (int i = 0; i < images.Count; i++)
        {
            var (img, label, e) = (images[i], labels[i], entries[i]);
            if (label.Error is { } labelError) errors.Add(new(label.Path, 0, labelError));
            if (e.Errors is { Length: > 0 }) errors.AddRange(e.Errors.Select(m => new InputError(label.Path, m.Line, m.Reason)));
            if (e.Skip is { } why)
            {
                skipped.Add(new(img, 0, why));
                warnings.Add($"{img}: {why}; skipped");
                continue;
            }
            // checked here, not in Verify, so that a lower limit applies to sizes read from the cache too
            if ((long)e.W * e.H > RgbImage.MaxPixels)
            {
                errors.Add(new(img, 0, ImageDecode.TooLarge(e.W, e.H)));
                continue;
            }
            if (e.Note is { } note) warnings.Add($"{img}: {note}");
            var rows = e.RowsOf();
            if (label.State == LabelCache.LabelState.Missing) { missing++; missingLabels.Add(label.Path); }
            else if (rows.Length == 0) empty++;
            else found++;
            if (e.DuplicateLines is { Length: > 0 } lines)
            {
                dup++;
                warnings.AddRange(lines.Select(l => $"{label.Path}:{l}: duplicate row (kept, as the reference)"));
            }
            items.Add(new DatasetItem(img, label.Path, e.W, e.H, rows));
        }
        if (errors.Count > 0) return Failed(source, errors, [.. listWarnings, .. warnings]);
        if (items.Count == 0)
            return Failed(source, [new(source, 0, $"no usable images: all {skipped.Count} are unreadable or corrupt (first: {skipped[0]})")], [.. listWarnings, .. warnings]);
        // a set where some images lack a label file: say how many and which, as they train as images without objects
        if (missing > 0 && found + empty > 0)
            warnings.Add($"{source}: {missing} of {items.Count} images have no label file (used as images without objects): " +
                string.Join(", ", missingLabels.Take(MissingShown)) + (missing > MissingShown ? $" and {missing - MissingShown} more" : "") + $"; {LabelRule}");
        if (useCache && !fromCache) LabelCache.TryWrite(cachePath, numClasses, stamps, entries);
        return new ScanResult
        {
            Source = source, Items = items, Found = found, Missing = missing, Empty = empty, Duplicate = dup,
            Errors = [], Warnings = [.. listWarnings, .. warnings], FromCache = fromCache, Skipped = skipped, MissingLabels = missingLabels,
        };
    }

    /// <summary>Checks every image (in parallel: each is a full decode) and parses every label file.</summary>
    static LabelCache.Entry[] Verify(IReadOnlyList<string> images, LabelFile[] labels, int numClasses)
    {
        var entries = new LabelCache.Entry[images.Count];
        // at most 8 at once, as yolov5's NUM_THREADS: each holds a whole decoded image
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Min(8, Environment.ProcessorCount) };
        Parallel.For(0, images.Count, options, i =>
        {
            var v = ImageDecode.Verify(images[i]);
            var (w, h) = RgbImage.SwapsAxes(v.Origin) ? (v.Height, v.Width) : (v.Width, v.Height);
            string? skip = v.Fault is ImageDecode.Fault.Unreadable or ImageDecode.Fault.Corrupt ? v.Reason : null;
            var label = labels[i];
            if (label.State != LabelCache.LabelState.File || label.Error is not null)
            {
                entries[i] = new LabelCache.Entry(w, h, [], null, null, skip, v.Note);
                return;
            }
            var parsed = parse(label.Path, numClasses, Text(label.Bytes));
            entries[i] = parsed.IsError
                ? new LabelCache.Entry(w, h, [], null, parsed.ErrorValue.Select(e => new LabelCache.LineError(e.Line, e.Reason)).ToArray(), skip, v.Note)
                : new LabelCache.Entry(w, h, LabelCache.Flatten(parsed.ResultValue.Rows), parsed.ResultValue.DuplicateLines.ToArray(), null, skip, v.Note);
        });
        return entries;
    }

    static ScanResult Failed(string source, List<InputError> errors, List<string>? warnings = null) =>
        new() { Source = source, Items = [], Errors = errors, Warnings = warnings ?? [] };
}
