using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using PixelBox = YoloSpp.Data.Shapes.PixelBox;

namespace YoloSpp.Data;

// the dataset folder's bookkeeping: the manifest that makes a folder reusable, stale files, the summary
public static partial class ShapesDataset
{
    // the newer settings only when not their defaults: the default dataset's manifest stays as it was (its folders are reused)
    sealed record Manifest(int Version, int Train, int Val, int Size, int Seed, int JpegQuality, string Background, int MaxObjects, double EmptyFraction,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Classes = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Height = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MinObject = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MaxObject = null)
    {
        static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

        public static Manifest Of(ShapesOptions o) =>
            new(ShapesDataset.Version, o.Train, o.Val, o.Size, o.Seed, o.JpegQuality, o.Background.ToString().ToLowerInvariant(), o.MaxObjects, o.EmptyFraction,
                o.Classes == ShapesClasses.Shapes ? null : o.Classes.ToString().ToLowerInvariant(),
                o.Height is { } h && h != o.Size ? h : null, o.MinObject == 8 ? null : o.MinObject, o.MaxObject);

        public string ToJson() => JsonSerializer.Serialize(this, Json) + "\n";

        public static Manifest? TryRead(string path)
        {
            try { return JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path), Json); }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException) { return null; }
        }
    }

    static bool IsComplete(string dir, ShapesOptions o, Manifest expected)
    {
        var path = Path.Combine(dir, ManifestFile);
        if (!File.Exists(path) || Manifest.TryRead(path) != expected) return false;
        foreach (var f in new[] { "train.txt", "val.txt", "shapes.names", DataFileName })
            if (!File.Exists(Path.Combine(dir, f))) return false;
        foreach (var (split, count) in new[] { (ShapesSplit.Train, o.Train), (ShapesSplit.Val, o.Val) })
            for (int i = 0; i < count; i++)
                if (!File.Exists(Path.Combine(dir, ImagePath(split, i))) || !File.Exists(Path.Combine(dir, LabelPath(split, i))))
                    return false;
        return true;
    }

    /// Deletes numbered files beyond the new count (left by a larger earlier dataset) and temp files of an
    /// interrupted run; nothing else in the folder is touched.
    static void RemoveStale(string dir, ShapesSplit split, int count)
    {
        foreach (var (sub, ext) in new[] { ("images", ".jpg"), ("labels", ".txt") })
        {
            var folder = Path.Combine(dir, sub, SplitName(split));
            foreach (var f in Directory.EnumerateFiles(folder))
            {
                var name = Path.GetFileName(f);
                if (name.Length == 6 + ext.Length && name.EndsWith(ext, StringComparison.Ordinal)
                    && int.TryParse(name.AsSpan(0, 6), NumberStyles.None, CultureInfo.InvariantCulture, out var idx))
                {
                    if (idx >= count) File.Delete(f);
                }
                else if (name.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal)) File.Delete(f);
            }
        }
    }

    /// Counts from the label files, so that a reused folder and a fresh one are summarised the same way.
    static ShapesSummary Summarise(string dir, ShapesOptions o, bool reused, TimeSpan elapsed)
    {
        var perClass = new int[o.ClassNames.Count];
        var perSize = new int[3];
        int empty = 0;
        foreach (var (split, count) in new[] { (ShapesSplit.Train, o.Train), (ShapesSplit.Val, o.Val) })
            for (int i = 0; i < count; i++)
            {
                int rows = 0;
                foreach (var line in File.ReadLines(Path.Combine(dir, LabelPath(split, i))))
                {
                    var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (f.Length != 5) continue;
                    rows++;
                    perClass[int.Parse(f[0], CultureInfo.InvariantCulture)]++;
                    double w = double.Parse(f[3], CultureInfo.InvariantCulture) * o.Size;
                    double h = double.Parse(f[4], CultureInfo.InvariantCulture) * o.CanvasHeight;
                    perSize[(int)Shapes.SizeBucketOf(new PixelBox(0, 0, w, h))]++;
                }
                if (rows == 0) empty++;
            }
        return new ShapesSummary(dir, Path.Combine(dir, DataFileName), o.Train, o.Val, empty,
            o.ClassNames, perClass, perSize, reused, elapsed);
    }
}
