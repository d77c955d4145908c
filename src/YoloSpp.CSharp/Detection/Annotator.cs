using SkiaSharp;
using YoloSpp.Data;
using YoloSpp.IO;

namespace YoloSpp.Detection;

/// <summary>
/// Draws detections as the reference's draw_box_utils does: a rectangle per object in its class's colour and a
/// filled label "name confidence" above it (inside the box when there is no room above), in a system sans-serif
/// font (DejaVu Sans, Arial, ...). Line width and font size follow the image's size and labels stay inside the
/// image, as ultralytics' Annotator draws them. It draws every detection it is given: <see cref="Detector.Annotate"/>
/// gives it those above <see cref="DetectorOptions.DrawThreshold"/>.
/// </summary>
public static class Annotator
{
    // a fixed palette (Tableau 20 and a few more): the same class has the same colour in every picture
    static readonly SKColor[] Palette =
    [
        new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40), new(148, 103, 189),
        new(140, 86, 75), new(227, 119, 194), new(127, 127, 127), new(188, 189, 34), new(23, 190, 207),
        new(174, 199, 232), new(255, 187, 120), new(152, 223, 138), new(255, 152, 150), new(197, 176, 213),
        new(196, 156, 148), new(247, 182, 210), new(199, 199, 199), new(219, 219, 141), new(158, 218, 229),
    ];

    static readonly Lazy<SKTypeface?> LabelTypeface = new(FindTypeface);

    /// <summary>A typeface with glyphs (Skia's default has none on Linux builds without fontconfig); null if none is installed.</summary>
    internal static SKTypeface? TextTypeface => LabelTypeface.Value;

    // Skia's Linux assets without fontconfig give an empty default typeface (no glyphs): look for a real font
    static SKTypeface? FindTypeface()
    {
        static bool HasGlyphs(SKTypeface? t) => t is not null && t.GlyphCount > 0;
        if (HasGlyphs(SKTypeface.Default)) return SKTypeface.Default;
        foreach (var family in new[] { "DejaVu Sans", "Arial", "Helvetica", "Liberation Sans" })
        {
            var t = SKFontManager.Default.MatchFamily(family);
            if (HasGlyphs(t)) return t;
        }
        return FontFile.Value is { } file ? SKTypeface.FromFile(file) : null;
    }

    static readonly Lazy<string?> FontFile = new(FindFontFile);

    /// <summary>A font file with glyphs (for drawing libraries that load fonts from files, e.g. the charts); null if
    /// none is installed in the usual places.</summary>
    internal static string? TextFontFile => FontFile.Value;

    static string? FindFontFile()
    {
        static bool HasGlyphs(string path)
        {
            using var t = SKTypeface.FromFile(path);
            return t is not null && t.GlyphCount > 0;
        }
        var candidates = new[]
        {
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", @"C:\Windows\Fonts\arial.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf", "/Library/Fonts/Arial.ttf",
        };
        foreach (var path in candidates.Where(File.Exists))
            if (HasGlyphs(path)) return path;
        if (Directory.Exists("/usr/share/fonts"))
            foreach (var path in Directory.EnumerateFiles("/usr/share/fonts", "*.ttf", SearchOption.AllDirectories).Order())
                if (HasGlyphs(path)) return path;
        return null;
    }

    /// <summary>The colour of a class (RGB), from a fixed palette of 20 that repeats.</summary>
    public static (byte R, byte G, byte B) ClassColor(int classId)
    {
        var c = Palette[((classId % Palette.Length) + Palette.Length) % Palette.Length];
        return (c.Red, c.Green, c.Blue);
    }

    /// <summary>A copy of <paramref name="image"/> with the detections drawn on it.</summary>
    public static RgbImage Draw(RgbImage image, IReadOnlyList<Detection> detections)
    {
        using var bmp = ToBitmap(image);
        DrawOn(bmp, detections);
        return FromBitmap(bmp);
    }

    /// <summary>Draws the detections on a copy of <paramref name="image"/> and writes it atomically: PNG for a .png path, else JPEG (quality 95).</summary>
    public static void Save(RgbImage image, IReadOnlyList<Detection> detections, string outputPath)
    {
        using var bmp = ToBitmap(image);
        DrawOn(bmp, detections);
        Write(bmp, outputPath);
    }

    /// <summary>The box outline's width for an image, as ultralytics' Annotator: max(round((h + w) / 2 × 0.003), 2) pixels.</summary>
    internal static int LineWidth(int width, int height) => Math.Max((int)Math.Round((height + width) / 2.0 * 0.003), 2);

    /// <summary>The label font's size for an image, as ultralytics' Annotator (its PIL path): max(round((h + w) / 2 × 0.035), 12) pixels.</summary>
    internal static float FontSize(int width, int height) => Math.Max((float)Math.Round((height + width) / 2.0 * 0.035), 12f);

    /// <summary>Where a label of <paramref name="labelWidth"/> × <paramref name="labelHeight"/> goes for a box whose
    /// top-left corner is (<paramref name="x1"/>, <paramref name="y1"/>): above the box when it fits, else just inside
    /// its top edge; moved left and up as needed so that it stays inside the image (as ultralytics' Annotator).</summary>
    internal static SKRect LabelRect(double x1, double y1, float labelWidth, float labelHeight, int imageWidth, int imageHeight)
    {
        float w = Math.Min(labelWidth, imageWidth), h = Math.Min(labelHeight, imageHeight);
        float left = Math.Clamp((float)x1, 0, imageWidth - w);
        float top = y1 - h >= 0 ? (float)y1 - h : Math.Clamp((float)y1, 0, imageHeight - h);
        return SKRect.Create(left, top, w, h);
    }

    static void DrawOn(SKBitmap bmp, IReadOnlyList<Detection> detections) =>
        DrawOn(bmp, detections, LineWidth(bmp.Width, bmp.Height), FontSize(bmp.Width, bmp.Height), withConfidence: true);

    /// <summary>Draws boxes with labels "name confidence" (or "name" alone, for ground truth) at a given line width and
    /// font size.</summary>
    internal static void DrawOn(SKBitmap bmp, IReadOnlyList<Detection> detections, int lw, float fontSize, bool withConfidence)
    {
        using var canvas = new SKCanvas(bmp);
        // no font at all: the label is a coloured tab without text
        using var font = new SKFont(LabelTypeface.Value ?? SKTypeface.Default, fontSize);
        using var stroke = new SKPaint { Style = SKPaintStyle.Stroke, StrokeWidth = lw, IsAntialias = false };
        using var fill = new SKPaint { Style = SKPaintStyle.Fill };
        using var text = new SKPaint { Color = SKColors.White, IsAntialias = true };
        font.GetFontMetrics(out var metrics);
        float textH = metrics.Descent - metrics.Ascent, pad = lw / 2f;
        foreach (var d in detections)
        {
            var (r, g, b) = ClassColor(d.ClassId);
            var colour = new SKColor(r, g, b);
            stroke.Color = colour;
            canvas.DrawRect(SKRect.Create((float)d.X1, (float)d.Y1, (float)(d.X2 - d.X1), (float)(d.Y2 - d.Y1)), stroke);
            var label = withConfidence ? $"{d.ClassName} {d.Confidence:0.00}" : d.ClassName;
            var rect = LabelRect(d.X1, d.Y1, Math.Max(font.MeasureText(label), textH) + 2 * pad, textH + pad, bmp.Width, bmp.Height);
            fill.Color = colour;
            canvas.DrawRect(rect, fill);
            // white text on the class colour, or black on a light one, as ultralytics picks
            text.Color = 0.299 * r + 0.587 * g + 0.114 * b > 160 ? SKColors.Black : SKColors.White;
            canvas.DrawText(label, rect.Left + pad, rect.Top - metrics.Ascent, SKTextAlign.Left, font, text);
        }
        canvas.Flush();
    }

    /// <summary>Writes <paramref name="text"/> with its top-left corner at (<paramref name="x"/>, <paramref name="y"/>).</summary>
    internal static void DrawText(SKBitmap bmp, float x, float y, string text, SKColor colour, float fontSize)
    {
        using var canvas = new SKCanvas(bmp);
        using var font = new SKFont(LabelTypeface.Value ?? SKTypeface.Default, fontSize);
        using var paint = new SKPaint { Color = colour, IsAntialias = true };
        font.GetFontMetrics(out var metrics);
        canvas.DrawText(text, x, y - metrics.Ascent, SKTextAlign.Left, font, paint);
        canvas.Flush();
    }

    /// <summary>Encodes a bitmap and writes it atomically: PNG for a .png path, else JPEG (quality 95).</summary>
    internal static void Write(SKBitmap bmp, string outputPath)
    {
        var png = outputPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase);
        using var data = bmp.Encode(png ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, png ? 100 : 95);
        AtomicFile.Write(outputPath, s => data.SaveTo(s));
    }

    internal static SKBitmap ToBitmap(RgbImage image)
    {
        var bmp = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var dst = bmp.GetPixelSpan();
        var px = image.Pixels;
        for (int i = 0, o = 0; i < px.Length; i += 3, o += 4)
        {
            dst[o] = px[i]; dst[o + 1] = px[i + 1]; dst[o + 2] = px[i + 2]; dst[o + 3] = 255;
        }
        return bmp;
    }

    static RgbImage FromBitmap(SKBitmap bmp)
    {
        int w = bmp.Width, h = bmp.Height, stride = bmp.RowBytes;
        var src = bmp.GetPixelSpan();
        var dst = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0, o = y * w * 3; x < w; x++, o += 3)
            {
                int s = y * stride + x * 4;
                dst[o] = src[s]; dst[o + 1] = src[s + 1]; dst[o + 2] = src[s + 2];
            }
        return new RgbImage(w, h, dst);
    }
}
