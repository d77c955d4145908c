using ScottPlot;
using SkiaSharp;
using YoloSpp.Detection;
using YoloSpp.IO;
using Metrics = YoloSpp.Evaluation.Metrics;

namespace YoloSpp.Evaluation;

/// <summary>
/// The charts of an evaluation and a run, drawn with ScottPlot as yolov5's <c>plot_pr_curve</c>,
/// <c>plot_mc_curve</c> and <c>ConfusionMatrix.plot</c> draw them: per-class curves (a legend up to 20 classes, grey
/// lines beyond), the mean over the classes in bold, axes on 0–1 with ticks, grid and labels. PNG files, written
/// atomically.
/// </summary>
internal static class Charts
{
    const string FontName = "YoloSpp Sans";
    static readonly Lazy<bool> FontReady = new(RegisterFont);

    // Skia's Linux assets without fontconfig have no default font: give ScottPlot the font the annotator found
    static bool RegisterFont()
    {
        using var probe = SKTypeface.FromFamilyName(Fonts.Default);
        if (probe is not null && probe.GlyphCount > 0) return true;
        if (Annotator.TextFontFile is not { } file) return false;
        Fonts.AddFontFile(FontName, file);
        Fonts.Default = FontName;
        return true;
    }

    /// <summary>A new plot whose text has a font with glyphs (when the machine has one).</summary>
    internal static Plot NewPlot()
    {
        _ = FontReady.Value;
        var plot = new Plot();
        plot.Font.Set(Fonts.Default);
        return plot;
    }

    /// <summary>Writes the plot as a PNG of <paramref name="width"/>×<paramref name="height"/> pixels.</summary>
    internal static void Save(Plot plot, string path, int width, int height) =>
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));

    internal static Color ClassColor(int c)
    {
        var (r, g, b) = Annotator.ClassColor(c);
        return new Color(r, g, b);
    }

    /// <summary>Axes on [0, 1] with labels, a title and the legend outside on the right.</summary>
    static void UnitAxes(Plot plot, string x, string y, string title)
    {
        plot.Axes.SetLimits(0, 1, 0, 1);
        plot.XLabel(x);
        plot.YLabel(y);
        plot.Title(title);
        plot.ShowLegend(Edge.Right);
        plot.Legend.FontSize = 11;
    }

    /// <summary>PR_curve.png: precision against recall per class (AP@0.5 in the legend) and their mean.</summary>
    internal static void PrCurve(ValidationMetrics m, string path)
    {
        var plot = NewPlot();
        var px = m.Px.ToArray();
        var perClass = m.Classes.Count is > 0 and < 21;
        for (int k = 0; k < m.Classes.Count; k++)
        {
            var line = plot.Add.ScatterLine(px, m.PrCurves[k].ToArray());
            line.LineWidth = 1;
            line.Color = perClass ? ClassColor(m.Classes[k]) : Colors.Gray;
            if (perClass) line.LegendText = $"{Name(m, m.Classes[k])} {m.Ap50[k]:0.000}";
        }
        if (m.Classes.Count > 0)
        {
            var mean = Enumerable.Range(0, px.Length).Select(i => m.PrCurves.Average(c => c[i])).ToArray();
            var all = plot.Add.ScatterLine(px, mean);
            all.LineWidth = 3;
            all.Color = Colors.Blue;
            all.LegendText = $"all classes {m.Ap50.Average():0.000} mAP@0.5";
        }
        UnitAxes(plot, "Recall", "Precision", "Precision-Recall Curve");
        Save(plot, path, 1000, 640);
    }

    /// <summary>A metric against the confidence per class and their smoothed mean, with its maximum and where
    /// (F1_curve.png, P_curve.png, R_curve.png).</summary>
    internal static void ConfidenceCurve(ValidationMetrics m, IReadOnlyList<IReadOnlyList<double>> curves, string metric, string path)
    {
        var plot = NewPlot();
        var px = m.Px.ToArray();
        var perClass = m.Classes.Count is > 0 and < 21;
        for (int k = 0; k < curves.Count; k++)
        {
            var line = plot.Add.ScatterLine(px, curves[k].ToArray());
            line.LineWidth = 1;
            line.Color = perClass ? ClassColor(m.Classes[k]) : Colors.Gray;
            if (perClass) line.LegendText = Name(m, m.Classes[k]);
        }
        if (curves.Count > 0)
        {
            var mean = Metrics.smooth(Enumerable.Range(0, px.Length).Select(i => curves.Average(c => c[i])).ToArray(), 0.05);
            var best = Array.IndexOf(mean, mean.Max());
            var all = plot.Add.ScatterLine(px, mean);
            all.LineWidth = 3;
            all.Color = Colors.Blue;
            all.LegendText = $"all classes {mean[best]:0.00} at {px[best]:0.000}";
        }
        UnitAxes(plot, "Confidence", metric, $"{metric}-Confidence Curve");
        Save(plot, path, 1000, 640);
    }

    /// <summary>confusion_matrix.png: the matrix as a heatmap (columns normalised to sum 1 when
    /// <paramref name="normalize"/>, as yolov5 draws it), each cell's value written in it up to 30 classes.</summary>
    internal static void Confusion(ValidationMetrics m, string path, bool normalize)
    {
        var n = m.Confusion.Count;
        Save(ConfusionPlot(m, normalize), path, ConfusionWidth(n), ConfusionHeight(n));
    }

    internal static int ConfusionWidth(int n) => 900 + 12 * n;
    internal static int ConfusionHeight(int n) => 720 + 12 * n;

    /// <summary>The confusion matrix's chart: cell (predicted i, true j) is centred at x = j, y = n − 1 − i.</summary>
    internal static Plot ConfusionPlot(ValidationMetrics m, bool normalize)
    {
        var plot = NewPlot();
        var n = m.Confusion.Count;
        var labels = m.Names.Append("background").ToArray();
        var sums = Enumerable.Range(0, n).Select(j => m.Confusion.Sum(r => r[j])).ToArray();
        var values = new double[n, n];
        double max = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                var v = normalize ? m.Confusion[i][j] / (sums[j] + 1e-9) : m.Confusion[i][j];
                // as yolov5: cells below 0.005 are left blank
                values[i, j] = normalize && v < 0.005 ? double.NaN : v;
                max = Math.Max(max, v);
            }
        // a matrix without any cell above 0.005 (nothing matched: a validation set without labels) is all NaN, which
        // ScottPlot cannot range: one cell at 0 keeps the picture (blank) drawable
        if (normalize && max < 0.005) values[0, 0] = 0;
        var heat = plot.Add.Heatmap(values);
        heat.ManualRange = new ScottPlot.Range(0, Math.Max(max, 1e-9));
        heat.Colormap = new ScottPlot.Colormaps.Blues().Reversed();
        heat.NaNCellColor = Colors.White;
        plot.Add.ColorBar(heat);
        // the heatmap puts row 0 at the top: row i is drawn at y = n − 1 − i, column j at x = j
        if (n <= 31)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    if (double.IsNaN(values[i, j]) || (!normalize && values[i, j] == 0)) continue;
                    var text = plot.Add.Text(normalize ? values[i, j].ToString("0.00") : values[i, j].ToString("0"), j, n - 1 - i);
                    text.LabelAlignment = Alignment.MiddleCenter;
                    text.LabelFontSize = n <= 12 ? 14 : 9;
                    text.LabelFontColor = values[i, j] > 0.5 * max ? Colors.White : Colors.Black;
                }
        var positions = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, labels);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions.Reverse().ToArray(), labels);
        if (n > 8) plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.HideGrid();
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.XLabel("True");
        plot.YLabel("Predicted");
        plot.Title(normalize ? "Confusion Matrix (each true class's column sums to 1)" : "Confusion Matrix (counts)");
        return plot;
    }

    /// <summary>
    /// labels.png, a dataset's labels at a glance (yolov5's plot_labels): instances per class, and 2-D histograms
    /// (50 × 50 bins) of the box centres (x, y) and sizes (width, height), normalised to the image, the image's top
    /// at the top.
    /// </summary>
    /// <param name="names">Class names.</param>
    /// <param name="labels">Every label: class, centre x, centre y, width, height (0–1).</param>
    /// <param name="path">The PNG to write.</param>
    internal static void Labels(IReadOnlyList<string> names, IReadOnlyList<(int Class, double Cx, double Cy, double W, double H)> labels, string path)
    {
        const int panelW = 520, panelH = 480, bins = 50;
        var panels = new List<Plot>();
        var counts = new double[Math.Max(names.Count, 1)];
        foreach (var l in labels)
            if (l.Class >= 0 && l.Class < counts.Length) counts[l.Class]++;
        var bars = NewPlot();
        var bar = bars.Add.Bars(counts);
        for (int c = 0; c < bar.Bars.Count; c++) bar.Bars[c].FillColor = ClassColor(c);
        var positions = Enumerable.Range(0, counts.Length).Select(i => (double)i).ToArray();
        bars.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions,
            Enumerable.Range(0, counts.Length).Select(i => i < names.Count ? names[i] : i.ToString()).ToArray());
        if (counts.Length > 8) bars.Axes.Bottom.TickLabelStyle.Rotation = 45;
        bars.Axes.Margins(bottom: 0);
        bars.Title($"instances per class ({labels.Count} labels)");
        bars.YLabel("instances");
        panels.Add(bars);
        panels.Add(Histogram2D(labels.Select(l => (l.Cx, l.Cy)), bins, "box centres", "x", "y"));
        panels.Add(Histogram2D(labels.Select(l => (l.W, l.H)), bins, "box sizes", "width", "height"));
        using var surface = SKSurface.Create(new SKImageInfo(panelW * panels.Count, panelH));
        surface.Canvas.Clear(SKColors.White);
        for (int k = 0; k < panels.Count; k++)
        {
            using var panel = SKImage.FromEncodedData(panels[k].GetImageBytes(panelW, panelH, ImageFormat.Png));
            surface.Canvas.DrawImage(panel, k * panelW, 0, new SKSamplingOptions(SKFilterMode.Nearest), null);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>A 2-D histogram of points in [0, 1]² as a heatmap (empty bins white), the first coordinate across,
    /// the second down from the top.</summary>
    static Plot Histogram2D(IEnumerable<(double X, double Y)> points, int bins, string title, string x, string y)
    {
        var plot = NewPlot();
        var h = new double[bins, bins];
        double max = 0;
        foreach (var (px, py) in points)
        {
            int i = Math.Clamp((int)(py * bins), 0, bins - 1), j = Math.Clamp((int)(px * bins), 0, bins - 1);
            max = Math.Max(max, ++h[i, j]);
        }
        for (int i = 0; i < bins; i++)
            for (int j = 0; j < bins; j++)
                if (h[i, j] == 0) h[i, j] = double.NaN;
        var heat = plot.Add.Heatmap(h);
        heat.Colormap = new ScottPlot.Colormaps.Blues().Reversed();
        heat.ManualRange = new ScottPlot.Range(0, Math.Max(max, 1));
        heat.NaNCellColor = Colors.White;
        plot.Add.ColorBar(heat);
        // bin j is drawn at x = j, row i at y = bins − 1 − i: label the axes in image fractions
        double[] at = [-0.5, bins / 4.0 - 0.5, bins / 2.0 - 0.5, 3 * bins / 4.0 - 0.5, bins - 0.5];
        string[] fractions = ["0", "0.25", "0.5", "0.75", "1"];
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(at, fractions);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(at, fractions.Reverse().ToArray());
        plot.Axes.SetLimits(-0.5, bins - 0.5, -0.5, bins - 0.5);
        plot.HideGrid();
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        return plot;
    }

    static string Name(ValidationMetrics m, int c) => c < m.Names.Count ? m.Names[c] : c.ToString();
}
