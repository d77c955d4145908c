using System.Globalization;
using SkiaSharp;
using TorchSharp.Modules;
using YoloSpp.IO;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>One epoch's record.</summary>
/// <param name="Epoch">Epoch (0-based).</param>
/// <param name="Stats">The 12 COCO stats (null when the epoch was not evaluated).</param>
/// <param name="MeanLosses">Mean box, objectness, class, total loss.</param>
/// <param name="LearningRate">LR at the end of the epoch.</param>
internal sealed record EpochRecord(int Epoch, IReadOnlyList<double>? Stats, LossValues MeanLosses, double LearningRate)
{
    /// <summary>Mean precision at the F1-best confidence (yolov5's P); null when not evaluated.</summary>
    public double? Precision { get; init; }
    /// <summary>Mean recall at the F1-best confidence (yolov5's R); null when not evaluated.</summary>
    public double? Recall { get; init; }
    /// <summary>The validation loss (yolov5's val/box_loss, val/obj_loss, val/cls_loss); null when not evaluated.</summary>
    public Evaluation.ValidationLoss? ValidationLoss { get; init; }
}

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
        "epoch,box_loss,obj_loss,cls_loss,loss,lr,AP50-95,AP50,AP75,APsmall,APmedium,APlarge,AR1,AR10,AR100,ARsmall,ARmedium,ARlarge,precision,recall,val_box_loss,val_obj_loss,val_cls_loss";

    /// <summary>Columns of <see cref="CsvHeader"/>: a resumed run's older lines (without precision, recall and the
    /// validation losses) are padded.</summary>
    static readonly int CsvColumns = CsvHeader.Split(',').Length;

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
                var padded = line + new string(',', Math.Max(0, CsvColumns - line.Split(',').Length));
                _csv.Add(padded);
                _records.Add(ParseCsv(padded));
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
        var stats = f.Skip(6).Take(12).Select(P).ToArray();
        double? Opt(int i) => i < f.Length && f[i].Length > 0 ? P(f[i]) : null;
        return new EpochRecord(int.Parse(f[0], CultureInfo.InvariantCulture), stats.Length == 12 && !stats.All(double.IsNaN) ? stats : null,
            new LossValues(P(f[1]), P(f[2]), P(f[3]), P(f[4])), P(f[5]))
        {
            Precision = Opt(18), Recall = Opt(19),
            ValidationLoss = Opt(20) is { } b && Opt(21) is { } o && Opt(22) is { } c ? new Evaluation.ValidationLoss(b, o, c) : null,
        };
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
        var pr = new[] { r.Precision, r.Recall, r.ValidationLoss?.Box, r.ValidationLoss?.Objectness, r.ValidationLoss?.Class }
            .Select(v => v is { } x ? F(x) : "");
        _csv.Add(string.Join(',', losses.Append(r.LearningRate).Select(F).Prepend(r.Epoch.ToString(CultureInfo.InvariantCulture)).Concat(stats).Concat(pr)));
        AtomicFile.WriteAllText(EpochsFile, EpochsText);
        if (r.Stats is not null)
        {
            _lines.Add(ResultsLine(r.Epoch, r.Stats, r.MeanLosses.Total, r.LearningRate));
            AtomicFile.WriteAllText(ResultsFile, ResultsText);
        }
        var values = losses.Concat(new[] { r.LearningRate }).ToList();
        if (r.Stats is not null) values.AddRange(new[] { r.Stats[0], r.Stats[1], r.Stats[8] });
        for (int i = 0; i < values.Count; i++) _tb.add_scalar(Tags[i], (float)values[i], r.Epoch);
        if (r.Precision is { } precision) _tb.add_scalar("metrics/precision", (float)precision, r.Epoch);
        if (r.Recall is { } recall) _tb.add_scalar("metrics/recall", (float)recall, r.Epoch);
        if (r.ValidationLoss is { } v)
        {
            _tb.add_scalar("val/giou_loss", (float)v.Box, r.Epoch);
            _tb.add_scalar("val/obj_loss", (float)v.Objectness, r.Epoch);
            _tb.add_scalar("val/cls_loss", (float)v.Class, r.Epoch);
        }
        Plot();
    }

    /// <summary>Adds pictures (PNG or JPEG files) to TensorBoard's images tab, each under its file name, at
    /// <paramref name="epoch"/>.</summary>
    public void AddImages(IEnumerable<string> files, int epoch)
    {
        foreach (var f in files.Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase)))
            _tb.add_img(Path.GetFileNameWithoutExtension(f), f, epoch);
    }

    /// <summary>Draws the run so far into <see cref="PlotFile"/>, one chart per series against the epoch (as yolov5's
    /// results.png): the three training losses and the same on the validation set, precision and recall (at the
    /// F1-best confidence), mAP@0.5 and mAP@0.5:0.95 on a fixed 0–1 axis, and the learning rate; with ticks, grid
    /// and labelled axes.</summary>
    public void Plot()
    {
        var series = new (string Title, Func<EpochRecord, double?> Get, bool Unit)[]
        {
            ("train box loss (GIoU)", r => r.MeanLosses.Box, false), ("train objectness loss", r => r.MeanLosses.Objectness, false),
            ("train class loss", r => r.MeanLosses.Class, false), ("precision", r => r.Precision, true),
            ("val box loss (GIoU)", r => r.ValidationLoss?.Box, false), ("val objectness loss", r => r.ValidationLoss?.Objectness, false),
            ("val class loss", r => r.ValidationLoss?.Class, false), ("recall", r => r.Recall, true),
            ("learning rate", r => r.LearningRate, false), ("mAP@0.5", r => r.Stats?[1], true), ("mAP@0.5:0.95", r => r.Stats?[0], true),
        };
        const int panelW = 400, panelH = 300, cols = 4;
        int rows = (series.Length + cols - 1) / cols;
        using var surface = SKSurface.Create(new SKImageInfo(panelW * cols, panelH * rows));
        surface.Canvas.Clear(SKColors.White);
        for (int k = 0; k < series.Length; k++)
        {
            var pts = _records.Select(r => (X: (double)r.Epoch, Y: series[k].Get(r))).Where(p => p.Y is { } y && double.IsFinite(y))
                .Select(p => (p.X, Y: p.Y!.Value)).ToArray();
            var plot = Evaluation.Charts.NewPlot();
            if (pts.Length > 0)
            {
                var line = plot.Add.Scatter(pts.Select(p => p.X).ToArray(), pts.Select(p => p.Y).ToArray());
                line.LineWidth = 2;
                line.MarkerSize = pts.Length <= 60 ? 5 : 0;
                line.Color = new ScottPlot.Color(31, 119, 180);
            }
            plot.Title(series[k].Title, size: 14);
            plot.XLabel("epoch", size: 12);
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            // mAP, precision and recall on 0–1, so that an untrained model does not look like a steep climb
            if (series[k].Unit) plot.Axes.SetLimitsY(0, 1);
            if (pts.Length > 0) plot.Axes.SetLimitsX(pts.Min(p => p.X) - 0.5, pts.Max(p => p.X) + 0.5);
            using var panel = SKImage.FromEncodedData(plot.GetImageBytes(panelW, panelH, ScottPlot.ImageFormat.Png));
            surface.Canvas.DrawImage(panel, (k % cols) * panelW, (k / cols) * panelH, new SKSamplingOptions(SKFilterMode.Nearest), null);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(PlotFile, data.ToArray());
    }

    /// <inheritdoc/>
    public void Dispose() { }
}
