using CocoJson = YoloSpp.Evaluation.CocoJson;
using YoloSpp.IO;

namespace YoloSpp.Data;

/// <summary>Options of <see cref="DatasetTools.CocoToYolo"/>.</summary>
public sealed class CocoToYoloOptions
{
    /// <summary>COCO instances files: one (split into train and val by <see cref="ValFraction"/>) or two (the one whose
    /// name holds "val" is the validation split, else the second).</summary>
    public required IReadOnlyList<string> Jsons { get; init; }
    /// <summary>The image folder of each json (file_name is relative to it). Empty: looked up beside the json, then in
    /// its parent's <c>&lt;split&gt;/</c> and <c>images/&lt;split&gt;/</c> (COCO's annotations/ beside train2017/).</summary>
    public IReadOnlyList<string> Images { get; init; } = [];
    /// <summary>A new (or empty) folder for images/, labels/, the lists, classes.names and dataset.data.</summary>
    public required string Output { get; init; }
    /// <summary>With one json: every k-th image (k = round(1 / fraction), in file-name order) goes to val. 0: no
    /// split, val is the training list (as coco128.yaml does). Default 0.1.</summary>
    public double ValFraction { get; init; } = 0.1;
}

public static partial class DatasetTools
{
    /// <summary>The .data file <see cref="CocoToYolo"/> writes into its output folder.</summary>
    public const string CocoDataFile = "dataset.data";

    /// <summary>
    /// coco2yolo: COCO instances json → a YOLO dataset ready to train: images/&lt;split&gt;/ (copies), labels/&lt;split&gt;/,
    /// one list per split, classes.names (the categories in id order, mapped to contiguous class indices) and
    /// dataset.data. Crowd annotations and boxes without area are skipped, repeated boxes dropped, boxes reaching
    /// outside the image clipped; images without annotations get an empty label file. Nothing is written unless every
    /// json and image is good; an existing non-empty output folder is refused.
    /// </summary>
    public static ToolReport CocoToYolo(CocoToYoloOptions o)
    {
        var report = new ToolReport();
        if (o.Jsons.Count is < 1 or > 2) { report.Errors.Add($"coco2yolo: give one or two --json files, not {o.Jsons.Count}"); return report; }
        if (o.Images.Count > o.Jsons.Count) { report.Errors.Add($"coco2yolo: {o.Images.Count} --images folders for {o.Jsons.Count} --json files"); return report; }
        if (!(o.ValFraction >= 0 && o.ValFraction < 1)) { report.Errors.Add($"--val-fraction {o.ValFraction} must be in [0, 1)"); return report; }
        if (Directory.Exists(o.Output) && Directory.EnumerateFileSystemEntries(o.Output).Any())
        { report.Errors.Add($"{o.Output}: exists and is not empty; coco2yolo writes a new dataset (choose another --output)"); return report; }
        if (File.Exists(o.Output)) { report.Errors.Add($"{o.Output}: is a file, not a folder"); return report; }

        var converted = new List<(string Json, string Split, CocoConvert.Conversion C, string[] Sources)>();
        for (int j = 0; j < o.Jsons.Count; j++)
        {
            var json = o.Jsons[j];
            if (!File.Exists(json)) { report.Errors.Add($"{json}: no such file"); continue; }
            var parsed = CocoJson.parseInstances(json, File.ReadAllText(json));
            if (parsed.IsError) { report.Errors.Add(parsed.ErrorValue); continue; }
            var conv = CocoConvert.toYolo(json, parsed.ResultValue);
            if (conv.IsError) { report.Errors.AddRange(conv.ErrorValue.Select(e => e.ToString())); continue; }
            var c = conv.ResultValue;
            var split = SplitName(json);
            var imagesDir = j < o.Images.Count ? o.Images[j] : null;
            if (imagesDir is not null && !Directory.Exists(imagesDir)) { report.Errors.Add($"{imagesDir}: no such folder (--images of {json})"); continue; }
            var sources = new string[c.Images.Length];
            var missing = new List<string>();
            for (int i = 0; i < c.Images.Length; i++)
            {
                var img = c.Images[i];
                if (Path.IsPathRooted(img.FileName))
                { report.Errors.Add($"{json}: {img.JsonPath}.file_name: '{img.FileName}' must be relative to the image folder"); continue; }
                if (!Labels.isImagePath(img.FileName)) { report.Errors.Add($"{json}: {img.JsonPath}.file_name: '{img.FileName}' is not an image ({string.Join(", ", Labels.imageExtensions)})"); continue; }
                var found = ImageCandidates(json, split, imagesDir, img.FileName).FirstOrDefault(File.Exists);
                if (found is null) missing.Add($"{json}: {img.JsonPath}.file_name: image not found: {ImageCandidates(json, split, imagesDir, img.FileName).First()}");
                else sources[i] = found;
            }
            const int shown = 10;
            report.Errors.AddRange(missing.Take(shown));
            if (missing.Count > shown) report.Errors.Add($"{json}: and {missing.Count - shown} more images not found" + (imagesDir is null ? " (give their folder with --images)" : ""));
            converted.Add((json, split, c, sources));
        }
        if (!report.Ok) return report;
        if (converted.Count == 2)
        {
            var (a, b) = (converted[0].C, converted[1].C);
            if (!a.CategoryIds.SequenceEqual(b.CategoryIds) || !a.Names.SequenceEqual(b.Names))
            { report.Errors.Add($"{converted[1].Json}: its categories differ from {converted[0].Json}'s (both splits need one class table)"); return report; }
            if (converted[0].Split == converted[1].Split) converted[1] = converted[1] with { Split = converted[1].Split + "2" };
        }

        // the splits: (name, images) with the validation split second
        var first = converted[0];
        var all = Enumerable.Range(0, first.C.Images.Length).Select(i => (first.C.Images[i], first.Sources[i])).ToList();
        List<(string Name, List<(CocoConvert.ConvertedImage Image, string Source)> Items)> splits;
        if (converted.Count == 2)
        {
            int val = converted[1].Split.Contains("val", StringComparison.OrdinalIgnoreCase) || !converted[0].Split.Contains("val", StringComparison.OrdinalIgnoreCase) ? 1 : 0;
            var t = converted[1 - val];
            var v = converted[val];
            splits = [(t.Split, Items(t.C, t.Sources)), (v.Split, Items(v.C, v.Sources))];
        }
        else if (o.ValFraction == 0)
        {
            splits = [("train", all)];
            report.Warnings.Add("--val-fraction 0: the validation list is the training list (its mAP measures memory, not generalisation)");
        }
        else
        {
            int k = Math.Max(2, (int)Math.Round(1 / o.ValFraction));
            var ordered = all.OrderBy(x => x.Item1.FileName, StringComparer.Ordinal).ToList();
            splits = [("train", ordered.Where((_, i) => i % k != k - 1).ToList()), ("val", ordered.Where((_, i) => i % k == k - 1).ToList())];
            if (splits[1].Items.Count == 0) { report.Errors.Add($"{first.Json}: {ordered.Count} images are too few for a validation split of {o.ValFraction} (use --val-fraction 0)"); return report; }
        }

        var output = Path.GetFullPath(o.Output);
        Directory.CreateDirectory(output);
        foreach (var (name, items) in splits)
        {
            var list = new List<string>();
            var shared = items.GroupBy(x => Path.GetFileName(x.Image.FileName)).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
            foreach (var (image, source) in items)
            {
                // the file's name when it is unique in the split, else its path without '.' and '..' segments
                // (yolo2coco writes paths relative to the json's folder): always inside the output
                var inside = shared.Contains(Path.GetFileName(image.FileName))
                    ? string.Join('/', image.FileName.Split('/', '\\').Where(p => p is not ("" or "." or "..")))
                    : Path.GetFileName(image.FileName);
                var rel = Path.Combine("images", name, inside);
                var dst = Path.Combine(output, rel);
                AtomicFile.Copy(source, dst);
                var text = string.Concat(image.Rows.Select(r => Labels.rowText(r) + "\n"));
                AtomicFile.WriteAllText(Labels.labelPathFor(dst), text);
                list.Add(rel.Replace('\\', '/'));
            }
            list.Sort(StringComparer.Ordinal);
            AtomicFile.WriteAllText(Path.Combine(output, name + ".txt"), string.Concat(list.Select(l => l + "\n")));
            int objects = items.Sum(x => x.Image.Rows.Length), empty = items.Count(x => x.Image.Rows.Length == 0);
            report.Lines.Add($"{name}: {items.Count} images ({empty} without objects), {objects} objects -> {Path.Combine(output, name + ".txt")}");
        }
        var names = first.C.Names;
        AtomicFile.WriteAllText(Path.Combine(output, "classes.names"), string.Concat(names.Select(n => n + "\n")));
        var validList = splits[^1].Name + ".txt";
        AtomicFile.WriteAllText(Path.Combine(output, CocoDataFile), DataConfig.dataText(names.Length, splits[0].Name + ".txt", validList, "classes.names"));
        var ids = first.C.CategoryIds;
        if (ids.Length > 0 && ids[^1] - ids[0] + 1 != ids.Length)
            report.Lines.Add($"category ids {string.Join(", ", ids.Take(6))}{(ids.Length > 6 ? ", ..." : "")} (with gaps) -> classes 0..{ids.Length - 1} in id order");
        foreach (var (json, _, c, _) in converted)
        {
            var skipped = new List<string>();
            if (c.Crowd > 0) skipped.Add($"{c.Crowd} crowd annotations skipped");
            if (c.Empty > 0) skipped.Add($"{c.Empty} boxes without area skipped");
            if (c.Duplicate > 0) skipped.Add($"{c.Duplicate} repeated boxes dropped");
            if (c.Clipped > 0) skipped.Add($"{c.Clipped} boxes clipped to their image");
            if (skipped.Count > 0) report.Warnings.Add($"{json}: {string.Join(", ", skipped)}");
        }
        report.Lines.Add($"{names.Length} classes -> {Path.Combine(output, "classes.names")}; train with --data {Path.Combine(output, CocoDataFile)}");
        return report;

        static List<(CocoConvert.ConvertedImage, string)> Items(CocoConvert.Conversion c, string[] sources) =>
            Enumerable.Range(0, c.Images.Length).Select(i => (c.Images[i], sources[i])).ToList();
    }

    /// <summary>The split a COCO json holds, from its name: instances_val2017.json → val2017.</summary>
    static string SplitName(string json)
    {
        var stem = Path.GetFileNameWithoutExtension(json);
        return stem.StartsWith("instances_", StringComparison.Ordinal) ? stem["instances_".Length..] : stem;
    }

    static IEnumerable<string> ImageCandidates(string json, string split, string? imagesDir, string fileName)
    {
        if (imagesDir is not null) { yield return Path.Combine(imagesDir, fileName); yield break; }
        var dir = Path.GetDirectoryName(Path.GetFullPath(json))!;
        yield return Path.Combine(dir, fileName);
        var parent = Path.GetDirectoryName(dir);
        if (parent is null) yield break;
        yield return Path.Combine(parent, split, fileName);
        yield return Path.Combine(parent, "images", split, fileName);
    }

    /// <summary>
    /// yolo2coco: a COCO instances json of one split of a dataset (its .data file's train or valid list): image ids
    /// 1..N in list order, file_name relative to the json's folder, category id = class + 1 for every class, boxes in
    /// pixels of the image sizes read from the headers. <c>coco2yolo</c> reads it back to the same labels. An existing
    /// output file is refused.
    /// </summary>
    public static ToolReport YoloToCoco(string dataFile, string split, string output)
    {
        var report = new ToolReport();
        if (File.Exists(output) || Directory.Exists(output)) { report.Errors.Add($"{output}: exists; yolo2coco writes a new file (choose another --output)"); return report; }
        DataDescription data;
        try { data = DataFiles.Load(dataFile); }
        catch (InvalidInputException e) { report.Errors.AddRange(e.Errors.Select(x => x.ToString())); return report; }
        var source = split switch
        {
            "train" => data.Train,
            "valid" or "val" => data.Valid,
            _ => null,
        };
        if (source is null) { report.Errors.Add($"--split {split}: expected train or valid"); return report; }
        var scan = LabelScan.Scan(source, data.Classes);
        report.Errors.AddRange(scan.Errors.Select(e => e.ToString()));
        report.Errors.AddRange(scan.Skipped.Select(e => $"{e} (yolo2coco needs every image)"));
        if (!report.Ok) return report;
        var dir = Path.GetDirectoryName(Path.GetFullPath(output))!;
        var images = scan.Items.Select(i => new CocoGroundTruth.SourceImage(
            Path.GetRelativePath(dir, i.ImagePath).Replace('\\', '/'), i.Height0, i.Width0, i.Rows)).ToArray();
        var gt = CocoConvert.fromYolo(data.Names.ToArray(), images);
        AtomicFile.WriteAllText(output, CocoJson.serializeGroundTruth(gt));
        report.Lines.Add($"{source}: {images.Length} images, {gt.Annotations.Length} objects, {gt.Categories.Length} categories -> {output}");
        return report;
    }
}
