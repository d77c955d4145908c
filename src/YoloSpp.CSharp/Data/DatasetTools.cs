using YoloSpp.Data;
using CfgWrite = YoloSpp.Model.CfgWrite;

namespace YoloSpp.Data;

/// <summary>The outcome of a dataset tool: report lines, problems ("file:line: reason") and warnings.</summary>
public sealed class ToolReport
{
    /// <summary>Summary lines for the user.</summary>
    public List<string> Lines { get; } = [];
    /// <summary>Every problem; a non-empty list means bad input (exit 2).</summary>
    public List<string> Errors { get; } = [];
    /// <summary>Non-fatal notes.</summary>
    public List<string> Warnings { get; } = [];
    /// <summary>Whether there were no errors.</summary>
    public bool Ok => Errors.Count == 0;
}

/// <summary>Options of <see cref="DatasetTools.VocToYolo"/> (the reference's trans_voc2yolo.py settings).</summary>
public sealed class VocToYoloOptions
{
    /// <summary>The VOC year folder holding Annotations/, JPEGImages/ and ImageSets/Main/.</summary>
    public required string VocRoot { get; init; }
    /// <summary>Class table: pascal_voc_classes.json ({"name": 1-based id}) or a .names list.</summary>
    public required string Classes { get; init; }
    /// <summary>Output root: train/ and val/ with images/ and labels/, train.txt, val.txt, classes.names.</summary>
    public required string Output { get; init; }
    /// <summary>Training ids file, relative to ImageSets/Main. Default train.txt.</summary>
    public string TrainList { get; init; } = "train.txt";
    /// <summary>Validation ids file, relative to ImageSets/Main. Default val.txt.</summary>
    public string ValList { get; init; } = "val.txt";
    /// <summary>Drop objects marked difficult. Default false (the reference converts every object).</summary>
    public bool SkipDifficult { get; init; }
}

/// <summary>Dataset tools of the reference: trans_voc2yolo.py, calculate_dataset.py, and the data check.</summary>
public static partial class DatasetTools
{
    /// <summary>
    /// Reads a dataset split (an image list file or a folder of images) with its label files, as the training loader
    /// does: every image, its size from the header, its labels checked for <paramref name="numClasses"/> classes, and
    /// every problem with its file and line. The result is cached beside the list (<c>.cache</c>) unless
    /// <paramref name="useCache"/> is false.
    /// </summary>
    public static ScanResult ScanLabels(string source, int numClasses, bool useCache = true) => LabelScan.Scan(source, numClasses, useCache);

    /// <summary>
    /// trans_voc2yolo: for each id of the train and val lists, converts Annotations/id.xml to split/labels/id.txt
    /// and copies JPEGImages/id.jpg to split/images/; writes the class names and one image list per split.
    /// Annotations without objects are skipped with a warning, as the reference does.
    /// </summary>
    public static ToolReport VocToYolo(VocToYoloOptions o)
    {
        var report = new ToolReport();
        if (!File.Exists(o.Classes)) { report.Errors.Add($"{o.Classes}: no such file"); return report; }
        var table = Voc.parseClasses(o.Classes, File.ReadAllText(o.Classes));
        if (table.IsError) { report.Errors.AddRange(table.ErrorValue.Select(e => e.ToString())); return report; }
        var classes = table.ResultValue;
        var main = Path.Combine(o.VocRoot, "ImageSets", "Main");
        var pending = new List<(string Split, string Image, string Label, string Text)>();
        foreach (var (split, list) in new[] { ("train", o.TrainList), ("val", o.ValList) })
        {
            var listPath = Path.Combine(main, list);
            if (!File.Exists(listPath)) { report.Errors.Add($"{listPath}: no such file"); continue; }
            var ids = File.ReadAllLines(listPath);
            for (int i = 0; i < ids.Length; i++)
            {
                var id = ids[i].Trim();
                if (id.Length == 0) continue;
                var xml = Path.Combine(o.VocRoot, "Annotations", id + ".xml");
                var img = Path.Combine(o.VocRoot, "JPEGImages", id + ".jpg");
                if (!File.Exists(xml)) { report.Errors.Add($"{listPath}:{i + 1}: annotation not found: {xml}"); continue; }
                if (!File.Exists(img)) { report.Errors.Add($"{listPath}:{i + 1}: image not found: {img}"); continue; }
                var conv = Voc.convert(xml, classes, o.SkipDifficult, File.ReadAllText(xml));
                if (conv.IsError) { report.Errors.AddRange(conv.ErrorValue.Select(e => e.ToString())); continue; }
                report.Warnings.AddRange(conv.ResultValue.Warnings);
                if (conv.ResultValue.ObjectCount == 0) continue;
                pending.Add((split, img, id + ".txt", string.Join("\n", conv.ResultValue.Rows.Select(Labels.rowText))));
            }
        }
        // write nothing unless every input was good, so a failed run leaves no half dataset behind
        if (!report.Ok) return report;
        foreach (var split in new[] { "train", "val" })
        {
            var imgDir = Directory.CreateDirectory(Path.Combine(o.Output, split, "images")).FullName;
            var lblDir = Directory.CreateDirectory(Path.Combine(o.Output, split, "labels")).FullName;
            var items = pending.Where(p => p.Split == split).ToList();
            var list = new List<string>();
            foreach (var p in items)
            {
                var dst = Path.Combine(imgDir, Path.GetFileName(p.Image));
                if (!File.Exists(dst)) File.Copy(p.Image, dst);
                File.WriteAllText(Path.Combine(lblDir, p.Label), p.Text);
                list.Add(Path.GetRelativePath(o.Output, dst).Replace('\\', '/'));
            }
            File.WriteAllLines(Path.Combine(o.Output, split + ".txt"), list);
            report.Lines.Add($"{split}: {items.Count} images, {items.Sum(p => p.Text.Length == 0 ? 0 : p.Text.Split('\n').Length)} objects");
        }
        File.WriteAllText(Path.Combine(o.Output, "classes.names"), string.Join("\n", classes.Select(c => c.Item1)) + "\n");
        report.Lines.Add($"wrote {Path.Combine(o.Output, "classes.names")} ({classes.Length} classes)");
        return report;
    }

    /// <summary>
    /// calculate_dataset: image lists from each split's label files (split/labels/x.txt → split/images/x.&lt;ext&gt;),
    /// a .data file, a copy of the names and the cfg rewritten for the class count (<c>CfgWrite.withClasses</c>).
    /// Writes my_train_data.txt, my_val_data.txt, my_data_label.names, my_data.data and my_yolov3.cfg to
    /// <paramref name="output"/>; paths inside are relative to it.
    /// </summary>
    public static ToolReport DatasetConfig(string root, string namesFile, string cfgFile, string output)
    {
        var report = new ToolReport();
        foreach (var f in new[] { namesFile, cfgFile })
            if (!File.Exists(f)) report.Errors.Add($"{f}: no such file");
        if (!report.Ok) return report;
        var names = DataConfig.parseNames(namesFile, null, File.ReadAllText(namesFile));
        if (names.IsError) { report.Errors.AddRange(names.ErrorValue.Select(e => e.ToString())); return report; }
        int nc = names.ResultValue.Length;
        var cfg = CfgWrite.withClasses(cfgFile, nc, null, File.ReadAllText(cfgFile));
        if (cfg.IsError) { report.Errors.AddRange(cfg.ErrorValue.Select(e => e.ToString())); return report; }
        Directory.CreateDirectory(output);
        var lists = new Dictionary<string, List<string>>();
        foreach (var split in new[] { "train", "val" })
        {
            var labels = Path.Combine(root, split, "labels");
            var images = new List<string>();
            if (!Directory.Exists(labels)) { report.Errors.Add($"{labels}: no such folder"); continue; }
            foreach (var lbl in Directory.EnumerateFiles(labels, "*.txt").Order(StringComparer.Ordinal))
            {
                if (Path.GetFileName(lbl) == "classes.txt") continue; // the reference skips labelImg's class file
                var stem = Path.Combine(root, split, "images", Path.GetFileNameWithoutExtension(lbl));
                var img = Labels.imageExtensions.Select(e => stem + e).FirstOrDefault(File.Exists);
                if (img is null) report.Errors.Add($"{lbl}: no image {stem}.<{string.Join("|", Labels.imageExtensions)}>");
                else images.Add(Path.GetRelativePath(output, img).Replace('\\', '/'));
            }
            lists[split] = images;
        }
        if (!report.Ok) return report;
        File.WriteAllLines(Path.Combine(output, "my_train_data.txt"), lists["train"]);
        File.WriteAllLines(Path.Combine(output, "my_val_data.txt"), lists["val"]);
        File.WriteAllText(Path.Combine(output, "my_data_label.names"), string.Join("\n", names.ResultValue) + "\n");
        File.WriteAllText(Path.Combine(output, "my_data.data"), DataConfig.dataText(nc, "my_train_data.txt", "my_val_data.txt", "my_data_label.names"));
        File.WriteAllText(Path.Combine(output, "my_yolov3.cfg"), cfg.ResultValue);
        report.Lines.Add($"train {lists["train"].Count} images, val {lists["val"].Count} images, {nc} classes -> {Path.Combine(output, "my_data.data")}");
        return report;
    }

    /// <summary>
    /// check-data: the .data file, its names, and a label scan of the train and valid lists. Lines are each scan's
    /// summary; errors name the file (and line) of every problem: bad rows, unreadable, truncated, corrupt or
    /// oversized images, label folders, and a training list without any labels.
    /// </summary>
    public static ToolReport CheckData(string dataFile)
    {
        var report = new ToolReport();
        if (Directory.Exists(dataFile)) { report.Errors.Add($"{dataFile}: is a folder, not a {(DataConfig.isYaml(dataFile) ? "data.yaml" : ".data")} file"); return report; }
        if (!File.Exists(dataFile)) { report.Errors.Add($"{dataFile}: no such file"); return report; }
        DataDescription d;
        try { d = DataFiles.ReadData(dataFile); }
        catch (InvalidInputException e) { report.Errors.AddRange(e.Errors.Select(x => x.ToString())); return report; }
        // a .data file's names file (a yaml holds its names)
        if (d.Names.Count == 0)
        {
            if (!File.Exists(d.NamesFile)) report.Errors.Add($"{dataFile}: names file not found: {d.NamesFile}");
            else
            {
                try { DataFiles.ReadNames(d.NamesFile, d.Classes); }
                catch (InvalidInputException e) { report.Errors.AddRange(e.Errors.Select(x => x.ToString())); }
            }
        }
        foreach (var (key, path) in new[] { ("train", d.Train), ("valid", d.Valid) })
        {
            if (!File.Exists(path) && !Directory.Exists(path)) { report.Errors.Add($"{dataFile}: {key} list not found: {path}"); continue; }
            var scan = LabelScan.Scan(path, d.Classes);
            report.Errors.AddRange(scan.Errors.Select(e => e.ToString()));
            // training skips a corrupt image with a warning; a check reports it as the problem it is
            report.Errors.AddRange(scan.Skipped.Select(e => $"{e} (training skips it)"));
            report.Warnings.AddRange(scan.Warnings.Where(w => !scan.Skipped.Any(k => w.StartsWith(k.File + ": ", StringComparison.Ordinal))));
            // no labels at all: training refuses such a set; a validation set without labels only makes mAP meaningless
            if (scan.NoLabels is { } none)
            {
                if (key == "train") report.Errors.Add($"{path}: {none}");
                else report.Warnings.Add($"{path}: {none}; evaluation on it reports no mAP");
            }
            if (scan.Errors.Count == 0) report.Lines.Add($"{key}: {scan.Summary}");
        }
        return report;
    }
}
