using SkiaSharp;
using TorchSharp;
using YoloSpp.Data;
using static TorchSharp.torch;

namespace YoloSpp.Detection;

/// <summary>
/// A batch as the network sees it, with its labels: yolov5's <c>plot_images</c> for training batches. The images (at
/// most 16) in a grid of ⌈√n⌉ columns on white, each with its label boxes and class names and its file name in the
/// corner; a grid wider than 1920 pixels is scaled down. Training writes the first batches as
/// <c>train_batch0.jpg</c>, <c>train_batch1.jpg</c>, … in its run folder: augmentation, labels and image sizes
/// can be checked by eye there.
/// </summary>
public static class BatchPlot
{
    /// <summary>The grid's largest side, as yolov5's <c>max_size</c>.</summary>
    public const int MaxSize = 1920;

    /// <summary>The most images drawn, as yolov5's <c>max_subplots</c>.</summary>
    public const int MaxImages = 16;

    /// <summary>Predictions drawn score above this, as yolov5's plot_images.</summary>
    public const double ConfidenceDrawn = 0.25;

    /// <summary>Draws a batch and writes it atomically (JPEG, or PNG for a .png path).</summary>
    /// <param name="images">The batch, [n, 3, h, w] RGB in [0, 1] (the loader's).</param>
    /// <param name="targets">Its labels, [k, 6]: image index, class, centre x, centre y, width, height (normalised); or
    /// predictions, [k, 7] with the confidence last: those above <see cref="ConfidenceDrawn"/> are drawn with it.</param>
    /// <param name="paths">The images' files (their names are written on the tiles); null for none.</param>
    /// <param name="names">Class names (a class without a name is drawn as its index).</param>
    /// <param name="outputPath">The file to write.</param>
    /// <exception cref="ArgumentException">The tensors have other shapes.</exception>
    public static void Save(Tensor images, Tensor targets, IReadOnlyList<string>? paths, IReadOnlyList<string> names, string outputPath)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(names);
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new ArgumentException($"images: expected [n, 3, h, w], got [{string.Join(", ", images.shape)}]", nameof(images));
        if (targets.numel() > 0 && (targets.dim() != 2 || targets.shape[1] is not (6 or 7)))
            throw new ArgumentException($"targets: expected [k, 6] (labels) or [k, 7] (predictions), got [{string.Join(", ", targets.shape)}]", nameof(targets));
        int cols7 = targets.numel() > 0 ? (int)targets.shape[1] : 6;
        using var scope = NewDisposeScope();
        int n = (int)Math.Min(images.shape[0], MaxImages), h = (int)images.shape[2], w = (int)images.shape[3];
        int cols = (int)Math.Ceiling(Math.Sqrt(n)), rows = (n + cols - 1) / cols;
        // as plot_images: scale tiles down (never up) so that the grid fits MaxSize
        double scale = Math.Min(1.0, MaxSize / (double)cols / Math.Max(h, w));
        int th = (int)Math.Ceiling(h * scale), tw = (int)Math.Ceiling(w * scale);
        // owned Scalars: numbers passed as Scalars are temporaries a GC on another thread can free mid-call
        using var full = 255.0.ToScalar();
        using var none = 0.0.ToScalar();
        var pixels = images.narrow(0, 0, n).detach().cpu().mul(full).round().clamp(none, full).to(ScalarType.Byte).permute(0, 2, 3, 1).contiguous();
        var bytes = pixels.data<byte>().ToArray();
        var grid = RgbImage.Filled(cols * tw, rows * th, 255);
        for (int i = 0; i < n; i++)
        {
            var tile = new RgbImage(w, h, bytes.AsSpan(i * h * w * 3, h * w * 3).ToArray());
            if (tw != w || th != h) tile = tile.Resized(tw, th);
            grid.Paste(tile, 0, 0, tw, th, i % cols * tw, i / cols * th);
        }
        // labels in the grid's pixels
        var boxes = new List<Detection>();
        var t = targets.numel() > 0 ? targets.detach().cpu().to(ScalarType.Float64).data<double>().ToArray() : [];
        for (int k = 0; k + cols7 - 1 < t.Length; k += cols7)
        {
            int img = (int)t[k];
            if (img < 0 || img >= n) continue;
            double conf = cols7 == 7 ? t[k + 6] : double.NaN;
            if (cols7 == 7 && !(conf > ConfidenceDrawn)) continue;
            int cls = (int)t[k + 1];
            double ox = img % cols * tw, oy = img / cols * th;
            double cx = t[k + 2] * tw, cy = t[k + 3] * th, bw = t[k + 4] * tw, bh = t[k + 5] * th;
            var name = cls >= 0 && cls < names.Count ? names[cls] : cls.ToString(System.Globalization.CultureInfo.InvariantCulture);
            boxes.Add(new Detection(cls, name, conf, ox + cx - bw / 2, oy + cy - bh / 2, ox + cx + bw / 2, oy + cy + bh / 2));
        }
        using var bmp = Annotator.ToBitmap(grid);
        // plot_images' sizes: fs = (h + w) · ns · 0.01, lines fs / 10
        float fs = Math.Max((float)((th + tw) * cols * 0.01), 8f);
        Annotator.DrawOn(bmp, boxes, Math.Max((int)Math.Round(fs / 10), 1), fs, withConfidence: cols7 == 7);
        using (var canvas = new SKCanvas(bmp))
        using (var border = new SKPaint { Style = SKPaintStyle.Stroke, StrokeWidth = 2, Color = SKColors.White })
            for (int i = 0; i < n; i++)
                canvas.DrawRect(SKRect.Create(i % cols * tw, i / cols * th, tw, th), border);
        if (paths is not null)
            for (int i = 0; i < n && i < paths.Count; i++)
            {
                var file = Path.GetFileName(paths[i]);
                Annotator.DrawText(bmp, i % cols * tw + 3, i / cols * th + 3, file.Length > 40 ? file[..40] : file, new SKColor(220, 220, 220), fs);
            }
        Annotator.Write(bmp, outputPath);
    }
}
