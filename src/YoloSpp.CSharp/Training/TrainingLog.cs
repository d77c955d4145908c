using System.Globalization;
using SkiaSharp;
using TorchSharp.Modules;
using YoloSpp.Detection;
using YoloSpp.IO;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>One epoch's record.</summary>
/// <param name="Epoch">Epoch (0-based).</param>
/// <param name="Stats">The 12 COCO stats (null when the epoch was not evaluated).</param>
/// <param name="MeanLosses">Mean box, objectness, class, total loss.</param>
/// <param name="LearningRate">LR at the end of the epoch.</param>
internal sealed record EpochRecord(int Epoch, IReadOnlyList<double>? Stats, LossValues MeanLosses, double LearningRate);

/// <summary>
/// The run's logs. The results file is the reference's, digit for digit (people's plotting scripts read it): a
/// line per evaluated epoch, <c>epoch:N</c> then the 12 COCO stats and the mean total loss as Python's
/// <c>str(round(x, 4))</c> and the LR as <c>str(round(lr, 6))</c>, two spaces apart. <c>epochs.csv</c> holds more:
/// every epoch (evaluated or not) with the four mean losses, the LR and the stats at full precision. Also
/// TensorBoard scalars with the reference's tags and a PNG plot of losses, mAP and LR. Files are rewritten atomically.
/// </summary>
internal sealed class TrainingLog : IDisposable
{
    static readonly string[] Tags =
        { "train/giou_loss", "train/obj_loss", "train/cls_loss", "train/loss", "learning_rate", "mAP@[IoU=0.50:0.95]", "mAP@[IoU=0.5]", "mAR@[IoU=0.50:0.95]" };

    /// <summary>The header of <c>epochs.csv</c>.</summary>
    public const string CsvHeader =
        "epoch,box_loss,obj_loss,cls_loss,loss,lr,AP50-95,AP50,AP75,APsmall,APmedium,APlarge,AR1,AR10,AR100,ARsmall,ARmedium,ARlarge";

    readonly List<EpochRecord> _records = new();
    readonly SummaryWriter _tb;
    readonly List<string> _lines = new();
    readonly List<string> _csv = new() { CsvHeader };

    /// <summary>Results file path.</summary>
    public string ResultsFile { get; }
    /// <summary>The per-epoch CSV path.</summary>
    public string EpochsFile { get; }
    /// <summary>Plot path.</summary>
    public string PlotFile { get; }
    /// <summary>TensorBoard folder.</summary>
    public string TensorBoardDir { get; }
    /// <summary>The results text so far.</summary>
    public string ResultsText => string.Concat(_lines.Select(l => l + "\n"));
    /// <summary>The CSV text so far.</summary>
    public string EpochsText => string.Concat(_csv.Select(l => l + "\n"));

    /// <summary>Opens the logs in <paramref name="outputDir"/>; a resumed run continues its results text
    /// (<paramref name="previousResults"/>) and CSV (<paramref name="previousEpochs"/>, absent in older checkpoints).</summary>
    public TrainingLog(string outputDir, string resultName, string? previousResults = null, string? previousEpochs = null)
    {
        Directory.CreateDirectory(outputDir);
        ResultsFile = Path.Combine(outputDir, resultName);
        EpochsFile = Path.Combine(outputDir, "epochs.csv");
        PlotFile = Path.Combine(outputDir, "results.png");
        TensorBoardDir = Path.Combine(outputDir, "tensorboard");
        _tb = utils.tensorboard.SummaryWriter(TensorBoardDir, createRunName: false);
        if (!string.IsNullOrEmpty(previousResults))
            _lines.AddRange(previousResults.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        if (!string.IsNullOrEmpty(previousEpochs))
            foreach (var line in previousEpochs.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1))
            {
                _csv.Add(line);
                _records.Add(ParseCsv(line));
            }
        else
            _records.AddRange(_lines.Select(ParseResultsLine).OfType<EpochRecord>());
    }

    static string F(double x) => x.ToString("R", CultureInfo.InvariantCulture);
    static double P(string s) => s.Length == 0 ? double.NaN : double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>The reference's results line of an evaluated epoch.</summary>
    public static string ResultsLine(int epoch, IReadOnlyList<double> stats, double totalLoss, double lr) =>
        $"epoch:{epoch} " + string.Join("  ", stats.Append(totalLoss).Select(v => PyFloat.repr(PyFloat.round(4, v)))
            .Append(PyFloat.repr(PyFloat.round(6, lr))));

    static EpochRecord ParseCsv(string line)
    {
        var f = line.Split(',');
        var stats = f.Skip(6).Select(P).ToArray();
        return new EpochRecord(int.Parse(f[0], CultureInfo.InvariantCulture), stats.Length == 12 && !stats.All(double.IsNaN) ? stats : null,
            new LossValues(P(f[1]), P(f[2]), P(f[3]), P(f[4])), P(f[5]));
    }

    /// <summary>A record from a results line (the plot of a run resumed from a checkpoint without the CSV): the
    /// reference's format (stats, total loss, LR) or this port's earlier one (stats, four losses, LR).</summary>
    static EpochRecord? ParseResultsLine(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (!parts[0].StartsWith("epoch:") || (parts.Length != 15 && parts.Length != 18)) return null;
        var stats = parts.Skip(1).Take(12).Select(P).ToArray();
        var losses = parts.Length == 15 ? new LossValues(double.NaN, double.NaN, double.NaN, P(parts[13]))
            : new LossValues(P(parts[13]), P(parts[14]), P(parts[15]), P(parts[16]));
        return new EpochRecord(int.Parse(parts[0][6..], CultureInfo.InvariantCulture), stats.All(double.IsNaN) ? null : stats, losses, P(parts[^1]));
    }

    /// <summary>Records an epoch in every log: the results file only when it was evaluated, as the reference.</summary>
    public void Add(EpochRecord r)
    {
        _records.Add(r);
        var losses = new[] { r.MeanLosses.Box, r.MeanLosses.Objectness, r.MeanLosses.Class, r.MeanLosses.Total };
        var stats = r.Stats?.Select(F) ?? Enumerable.Repeat("", 12);
        _csv.Add(string.Join(',', losses.Append(r.LearningRate).Select(F).Prepend(r.Epoch.ToString(CultureInfo.InvariantCulture)).Concat(stats)));
        AtomicFile.WriteAllText(EpochsFile, EpochsText);
        if (r.Stats is not null)
        {
            _lines.Add(ResultsLine(r.Epoch, r.Stats, r.MeanLosses.Total, r.LearningRate));
            AtomicFile.WriteAllText(ResultsFile, ResultsText);
        }
        var values = losses.Concat(new[] { r.LearningRate }).ToList();
        if (r.Stats is not null) values.AddRange(new[] { r.Stats[0], r.Stats[1], r.Stats[8] });
        for (int i = 0; i < values.Count; i++) _tb.add_scalar(Tags[i], (float)values[i], r.Epoch);
        Plot();
    }

    /// <summary>Draws losses, mAP and LR over epochs into <see cref="PlotFile"/>.</summary>
    public void Plot()
    {
        const int panelW = 360, panelH = 240, cols = 3, rows = 2;
        using var surface = SKSurface.Create(new SKImageInfo(panelW * cols, panelH * rows));
        var c = surface.Canvas;
        c.Clear(SKColors.White);
        var series = new (string Title, Func<EpochRecord, double?> Get)[]
        {
            ("box loss (GIoU)", r => r.MeanLosses.Box), ("objectness loss", r => r.MeanLosses.Objectness), ("class loss", r => r.MeanLosses.Class),
            ("mAP@0.5", r => r.Stats?[1]), ("mAP@0.5:0.95", r => r.Stats?[0]), ("learning rate", r => r.LearningRate),
        };
        using var font = new SKFont(YoloSpp.Detection.Annotator.TextTypeface ?? SKTypeface.Default, 14);
        using var small = new SKFont(YoloSpp.Detection.Annotator.TextTypeface ?? SKTypeface.Default, 11);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var axis = new SKPaint { Color = SKColors.Gray, StrokeWidth = 1, IsStroke = true };
        using var line = new SKPaint { Color = new SKColor(31, 119, 180), StrokeWidth = 2, IsStroke = true, IsAntialias = true };
        for (int k = 0; k < series.Length; k++)
        {
            float ox = (k % cols) * panelW, oy = (k / cols) * panelH;
            var pts = _records.Select(r => (X: (double)r.Epoch, Y: series[k].Get(r))).Where(p => p.Y is { } y && double.IsFinite(y)).Select(p => (p.X, Y: p.Y!.Value)).ToArray();
            c.DrawText(series[k].Title, ox + 10, oy + 20, SKTextAlign.Left, font, text);
            var rect = new SKRect(ox + 50, oy + 30, ox + panelW - 15, oy + panelH - 30);
            c.DrawRect(rect, axis);
            if (pts.Length == 0) continue;
            double x0 = pts.Min(p => p.X), x1 = Math.Max(pts.Max(p => p.X), x0 + 1), y0 = Math.Min(0, pts.Min(p => p.Y)), y1 = pts.Max(p => p.Y);
            if (y1 <= y0) y1 = y0 + 1;
            c.DrawText(y1.ToString("G3", CultureInfo.InvariantCulture), ox + 4, rect.Top + 10, SKTextAlign.Left, small, text);
            c.DrawText(y0.ToString("G3", CultureInfo.InvariantCulture), ox + 4, rect.Bottom, SKTextAlign.Left, small, text);
            c.DrawText($"epoch {x0:0}–{x1:0}", rect.Left, rect.Bottom + 16, SKTextAlign.Left, small, text);
            SKPoint Map((double X, double Y) p) => new((float)(rect.Left + (p.X - x0) / (x1 - x0) * rect.Width), (float)(rect.Bottom - (p.Y - y0) / (y1 - y0) * rect.Height));
            for (int j = 1; j < pts.Length; j++) c.DrawLine(Map(pts[j - 1]), Map(pts[j]), line);
            foreach (var p in pts) c.DrawCircle(Map(p), 2.5f, line);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(PlotFile, data.ToArray());
    }

    /// <inheritdoc/>
    public void Dispose() { }
}
