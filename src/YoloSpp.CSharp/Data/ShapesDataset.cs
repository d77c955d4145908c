using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using SkiaSharp;
using YoloSpp.Data;
using YoloSpp.IO;
using Cfg = YoloSpp.Model.Cfg;
using PixelBox = YoloSpp.Data.Shapes.PixelBox;
using ShapeKind = YoloSpp.Data.Shapes.ShapeKind;
using SizeBucket = YoloSpp.Data.Shapes.SizeBucket;

namespace YoloSpp.Data;

/// <summary>The background an image of the shapes dataset is drawn on.</summary>
public enum ShapesBackground
{
    /// <summary>Gradient, blurred blobs, lines and pixel noise (the dataset's default).</summary>
    Textured,
    /// <summary>One flat colour: for tests that need to tell an object's pixels from the background.</summary>
    Flat,
}

/// <summary>The classes a shapes dataset draws.</summary>
public enum ShapesClasses
{
    /// <summary>circle, square, triangle, star, ring: the demo's five.</summary>
    Shapes = 0,
    /// <summary>cross, arrow, hexagon, diamond: a second dataset with other classes (to fine-tune a model trained on
    /// the first).</summary>
    Symbols = 1,
}

/// <summary>A split of the shapes dataset.</summary>
public enum ShapesSplit
{
    /// <summary>The training images (images/train, labels/train, train.txt).</summary>
    Train = 0,
    /// <summary>The validation images (images/val, labels/val, val.txt).</summary>
    Val = 1,
}

/// <summary>Parameters of a generated shapes dataset; the same options give byte-identical files.</summary>
/// <param name="OutputDirectory">The dataset folder (created if absent).</param>
public sealed record ShapesOptions(string OutputDirectory)
{
    /// <summary>Training images (default 1500).</summary>
    public int Train { get; init; } = 1500;
    /// <summary>Validation images (default 200).</summary>
    public int Val { get; init; } = 200;
    /// <summary>Image side in pixels: a multiple of 32, at least 64 (default 160).</summary>
    public int Size { get; init; } = 160;
    /// <summary>Dataset seed: every image's RNG derives from it, the split and the image index (default 0).</summary>
    public int Seed { get; init; }
    /// <summary>JPEG quality of the images, 1..100 (default 90).</summary>
    public int JpegQuality { get; init; } = 90;
    /// <summary>The background kind (default <see cref="ShapesBackground.Textured"/>).</summary>
    public ShapesBackground Background { get; init; } = ShapesBackground.Textured;
    /// <summary>Most objects an image may hold (default 6; an image that is not empty holds 1..this many).</summary>
    public int MaxObjects { get; init; } = 6;
    /// <summary>Probability that an image holds no object (default 0.05).</summary>
    public double EmptyFraction { get; init; } = 0.05;
    /// <summary>The classes drawn (default <see cref="ShapesClasses.Shapes"/>).</summary>
    public ShapesClasses Classes { get; init; }
    /// <summary>Image height in pixels when it differs from the width (<see cref="Size"/>): a multiple of 32, at least
    /// 64; null (default): square.</summary>
    public int? Height { get; init; }
    /// <summary>The smallest object side in pixels (default 8; sides are drawn log-uniformly).</summary>
    public double MinObject { get; init; } = 8;
    /// <summary>The largest object side in pixels; null (default): 45 % of the image's shorter side.</summary>
    public double? MaxObject { get; init; }

    /// <summary>The image height: <see cref="Height"/>, else <see cref="Size"/>.</summary>
    public int CanvasHeight => Height ?? Size;
    /// <summary>The largest object side in pixels: <see cref="MaxObject"/>, else 45 % of the shorter side.</summary>
    public double LargestObject => MaxObject ?? 0.45 * Math.Min(Size, CanvasHeight);

    /// <summary>The class names in label order.</summary>
    public IReadOnlyList<string> ClassNames => Shapes.NamesOf((int)Classes);

    /// <summary>Throws <see cref="ArgumentException"/> with a one-line reason when an option is out of range.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputDirectory)) throw new ArgumentException("the output folder is empty");
        if (Size < 64 || Size % Cfg.GridStride != 0) throw new ArgumentException($"--size {Size} must be a multiple of {Cfg.GridStride} and at least 64");
        if (Train < 0) throw new ArgumentException($"--train {Train} must not be negative");
        if (Val < 0) throw new ArgumentException($"--val {Val} must not be negative");
        if (Train > 999_999 || Val > 999_999) throw new ArgumentException("at most 999999 images a split (six-digit file names)");
        if (JpegQuality is < 1 or > 100) throw new ArgumentException($"JPEG quality {JpegQuality} must be in 1..100");
        if (MaxObjects < 1) throw new ArgumentException($"at most {MaxObjects} objects an image: must be at least 1");
        if (EmptyFraction is < 0 or > 1 || double.IsNaN(EmptyFraction)) throw new ArgumentException($"empty fraction {EmptyFraction} must be in [0, 1]");
        if (!Enum.IsDefined(Classes)) throw new ArgumentException($"unknown class set {(int)Classes}");
        if (Height is { } h && (h < 64 || h % Cfg.GridStride != 0)) throw new ArgumentException($"--height {h} must be a multiple of {Cfg.GridStride} and at least 64");
        if (!(MinObject >= 3)) throw new ArgumentException($"--min-object {MinObject} must be at least 3 pixels");
        if (!(LargestObject >= MinObject) || LargestObject > Math.Min(Size, CanvasHeight))
            throw new ArgumentException($"--max-object {LargestObject} must be at least --min-object ({MinObject}) and fit the image");
    }
}

/// <summary>One object of a rendered image: its class and its box in pixels (tight around the drawn shape, clipped
/// to the image; for an object partly hidden by a later one, the box of the whole object).</summary>
public sealed record ShapesObject(int Class, double X1, double Y1, double X2, double Y2)
{
    /// <summary>The label row of the YOLO layout: <c>class cx cy w h</c> normalised by the image side, 6 decimals.</summary>
    public string LabelRow(int size) => Shapes.LabelRow(Class, size, new PixelBox(X1, Y1, X2, Y2));

    /// <summary>The label row in a width × height image (x normalised by the width, y by the height).</summary>
    public string LabelRow(int width, int height) => Shapes.LabelRowOf(Class, width, height, new PixelBox(X1, Y1, X2, Y2));
}

/// <summary>A rendered image of the shapes dataset before JPEG encoding.</summary>
/// <param name="Size">Side in pixels.</param>
/// <param name="Rgba">Pixels, row-major, 4 bytes (R, G, B, A = 255) each.</param>
/// <param name="Objects">The objects in drawing order (later ones occlude earlier ones).</param>
public sealed record ShapesImage(int Size, byte[] Rgba, IReadOnlyList<ShapesObject> Objects)
{
    /// <summary>Height in pixels (<see cref="Size"/> is the width); the same as it for a square image.</summary>
    public int Height { get; init; } = Size;
}

/// <summary>What <see cref="ShapesDataset.Generate"/> produced (or found already there).</summary>
/// <param name="Directory">The dataset folder (absolute).</param>
/// <param name="DataFile">The .data file to train on (absolute).</param>
/// <param name="TrainImages">Training images.</param>
/// <param name="ValImages">Validation images.</param>
/// <param name="EmptyImages">Images with no object.</param>
/// <param name="ClassNames">Class names in label order.</param>
/// <param name="ObjectsPerClass">Objects of each class, in label order.</param>
/// <param name="ObjectsPerSize">Objects per COCO size bucket at the image size: small, medium, large.</param>
/// <param name="Reused">True when the folder already held this dataset and nothing was written.</param>
/// <param name="Elapsed">Time the call took.</param>
public sealed record ShapesSummary(
    string Directory, string DataFile, int TrainImages, int ValImages, int EmptyImages,
    IReadOnlyList<string> ClassNames, IReadOnlyList<int> ObjectsPerClass, IReadOnlyList<int> ObjectsPerSize,
    bool Reused, TimeSpan Elapsed)
{
    /// <summary>All objects of both splits.</summary>
    public int Objects => ObjectsPerClass.Sum();
}

/// <summary>The embedded default dataset: synthetic shapes (circle, square, triangle, star, ring) on textured
/// backgrounds in the YOLO layout the reference trains on (the README's "The shapes dataset" describes the generator).</summary>
public static partial class ShapesDataset
{
    /// <summary>Bumped whenever the drawing changes, so that an old folder is regenerated rather than reused.</summary>
    public const int Version = 1;

    /// <summary>The manifest written last: its presence with equal parameters means the folder is complete.</summary>
    public const string ManifestFile = "shapes.json";

    /// <summary>The .data file's name inside the dataset folder.</summary>
    public const string DataFileName = "shapes.data";

    // box sides log-uniform from MinObject (8 px) to MaxObject (45 % of the image side), overlap up to IoU 0.35 (the generator's specification)
    const double MaxIou = 0.35;
    // an earlier object may be at most half hidden by later ones (see Shapes.fits)
    const double MaxCovered = 0.5;
    // at most a quarter of an object's diameter may leave the image, and 60 % of its box must stay inside
    const double MinVisible = 0.6;
    const int PlacementTries = 30;
    // RGB distance between an object's colour and the mean of the pixels under its box
    const double MinContrast = 110;

    static string SplitName(ShapesSplit s) => s == ShapesSplit.Train ? "train" : "val";

    /// <summary>Generates the dataset described by <paramref name="options"/>, or reuses the folder when its
    /// manifest says it already holds exactly this dataset. Images are drawn in parallel, each from its own RNG, and
    /// every file is written atomically; the manifest is written last.</summary>
    /// <param name="options">What to generate and where.</param>
    /// <param name="progress">Receives the number of images written so far (from worker threads).</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public static ShapesSummary Generate(ShapesOptions options, IProgress<int>? progress = null)
    {
        options.Validate();
        var clock = Stopwatch.StartNew();
        var dir = Path.GetFullPath(options.OutputDirectory);
        var manifest = Manifest.Of(options);
        if (IsComplete(dir, options, manifest)) return Summarise(dir, options, reused: true, clock.Elapsed);

        Directory.CreateDirectory(dir);
        // an interrupted regeneration must not look complete
        File.Delete(Path.Combine(dir, ManifestFile));
        foreach (var split in new[] { ShapesSplit.Train, ShapesSplit.Val })
        {
            Directory.CreateDirectory(Path.Combine(dir, "images", SplitName(split)));
            Directory.CreateDirectory(Path.Combine(dir, "labels", SplitName(split)));
        }

        int total = options.Train + options.Val, done = 0;
        Parallel.For(0, total, i =>
        {
            var (split, index) = i < options.Train ? (ShapesSplit.Train, i) : (ShapesSplit.Val, i - options.Train);
            var (jpeg, objects) = RenderJpeg(options, split, index);
            AtomicFile.WriteAllBytes(Path.Combine(dir, ImagePath(split, index)), jpeg);
            var rows = new StringBuilder();
            foreach (var o in objects) rows.Append(o.LabelRow(options.Size, options.CanvasHeight)).Append('\n');
            AtomicFile.WriteAllText(Path.Combine(dir, LabelPath(split, index)), rows.ToString());
            progress?.Report(Interlocked.Increment(ref done));
        });
        RemoveStale(dir, ShapesSplit.Train, options.Train);
        RemoveStale(dir, ShapesSplit.Val, options.Val);

        AtomicFile.WriteAllText(Path.Combine(dir, "train.txt"), ImageList(ShapesSplit.Train, options.Train));
        AtomicFile.WriteAllText(Path.Combine(dir, "val.txt"), ImageList(ShapesSplit.Val, options.Val));
        AtomicFile.WriteAllText(Path.Combine(dir, "shapes.names"), string.Concat(options.ClassNames.Select(n => n + "\n")));
        // paths relative to the .data file's folder
        AtomicFile.WriteAllText(Path.Combine(dir, DataFileName),
            $"classes={options.ClassNames.Count}\ntrain=train.txt\nvalid=val.txt\nnames=shapes.names\n");
        AtomicFile.WriteAllText(Path.Combine(dir, ManifestFile), manifest.ToJson());
        return Summarise(dir, options, reused: false, clock.Elapsed);
    }

    /// <summary>Draws image <paramref name="index"/> of a split exactly as <see cref="Generate"/> does, without
    /// writing anything (the pixels before JPEG encoding).</summary>
    public static ShapesImage Render(ShapesOptions options, ShapesSplit split, int index)
    {
        options.Validate();
        using var bmp = Draw(options, split, index, out var objects);
        return new ShapesImage(options.Size, CopyPixels(bmp), objects) { Height = options.CanvasHeight };
    }

    /// <summary>The image's path relative to the dataset folder, e.g. images/train/000042.jpg.</summary>
    public static string ImagePath(ShapesSplit split, int index) => $"images/{SplitName(split)}/{index:D6}.jpg";

    /// <summary>The label file's path relative to the dataset folder, e.g. labels/train/000042.txt.</summary>
    public static string LabelPath(ShapesSplit split, int index) => $"labels/{SplitName(split)}/{index:D6}.txt";

    static string ImageList(ShapesSplit split, int count)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < count; i++) sb.Append(ImagePath(split, i)).Append('\n');
        return sb.ToString();
    }

    static (byte[] Jpeg, IReadOnlyList<ShapesObject> Objects) RenderJpeg(ShapesOptions o, ShapesSplit split, int index)
    {
        using var bmp = Draw(o, split, index, out var objects);
        using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, o.JpegQuality)
            ?? throw new InvalidOperationException("SkiaSharp could not encode a JPEG");
        return (data.ToArray(), objects);
    }

    // ---- drawing ----

    static SKBitmap Draw(ShapesOptions o, ShapesSplit split, int index, out IReadOnlyList<ShapesObject> objects)
    {
        var rng = new Random(Shapes.ImageSeed(o.Seed, (int)split, index));
        int s = o.Size, sh = o.CanvasHeight;
        var bmp = new SKBitmap(new SKImageInfo(s, sh, SKColorType.Rgba8888, SKAlphaType.Opaque));
        using var canvas = new SKCanvas(bmp);
        DrawBackground(canvas, bmp, s, sh, rng, o.Background);

        var placed = new List<PixelBox>();
        var list = new List<ShapesObject>();
        var kinds = Shapes.Kinds((int)o.Classes);
        int n = rng.NextDouble() < o.EmptyFraction ? 0 : rng.Next(1, o.MaxObjects + 1);
        for (int k = 0; k < n; k++)
        {
            for (int attempt = 0; attempt < PlacementTries; attempt++)
            {
                var shape = Propose(rng, s, sh, kinds, o.MinObject, o.LargestObject);
                var box = Shapes.ClipTo(s, sh, shape.Box);
                if (box.Area < MinVisible * shape.Box.Area || box.Width < 3 || box.Height < 3) continue;
                if (!Shapes.Fits(MaxIou, MaxCovered, placed, box)) continue;
                var colour = ContrastingColour(rng, MeanColour(bmp, box));
                DrawShape(canvas, shape, colour);
                placed.Add(box);
                list.Add(new ShapesObject(Array.IndexOf(kinds, shape.Kind), box.X1, box.Y1, box.X2, box.Y2));
                break;
            }
        }
        canvas.Flush();
        objects = list;
        return bmp;
    }

    sealed record Shape(ShapeKind Kind, double Cx, double Cy, double Radius, double Rotation, double Inner, double[]? Polygon, PixelBox Box);

    static Shape Propose(Random rng, int w, int h, ShapeKind[] kinds, double minSide, double maxSide)
    {
        var kind = kinds[rng.Next(kinds.Length)];
        double side = Math.Exp(Lerp(Math.Log(minSide), Math.Log(maxSide), rng.NextDouble()));
        double r = side / 2;
        double cx = Lerp(r / 2, w - r / 2, rng.NextDouble()), cy = Lerp(r / 2, h - r / 2, rng.NextDouble());
        double rot = rng.NextDouble() * 2 * Math.PI;
        // ring: an annulus of random thickness; star: random depth of its notches; cross, arrow, diamond: random
        // width of their arms, shaft and short diagonal
        double inner = kind switch
        {
            ShapeKind.Ring => Lerp(0.4, 0.75, rng.NextDouble()),
            ShapeKind.Star => Lerp(0.38, 0.55, rng.NextDouble()),
            ShapeKind.Cross => Lerp(0.22, 0.36, rng.NextDouble()),
            ShapeKind.Arrow => Lerp(0.18, 0.3, rng.NextDouble()),
            ShapeKind.Diamond => Lerp(0.45, 0.7, rng.NextDouble()),
            _ => 0,
        };
        double[]? poly = kind switch
        {
            ShapeKind.Square => Shapes.RegularPolygon(4, cx, cy, r, rot),
            ShapeKind.Triangle => Shapes.RegularPolygon(3, cx, cy, r, rot),
            ShapeKind.Star => Shapes.Star(cx, cy, r, inner, rot),
            ShapeKind.Cross => Shapes.Cross(cx, cy, r, inner, rot),
            ShapeKind.Arrow => Shapes.Arrow(cx, cy, r, inner, rot),
            ShapeKind.Hexagon => Shapes.RegularPolygon(6, cx, cy, r, rot),
            ShapeKind.Diamond => Shapes.Diamond(cx, cy, r, inner, rot),
            _ => null,
        };
        // the box of the rotated geometry itself, not of the circle around it
        var box = poly is null ? Shapes.CircleBox(cx, cy, r) : Shapes.PolygonBox(poly);
        return new Shape(kind, cx, cy, r, rot, inner, poly, box);
    }

    static void DrawShape(SKCanvas canvas, Shape sh, SKColor colour)
    {
        using var paint = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Fill, Color = colour };
        using var builder = new SKPathBuilder();
        if (sh.Polygon is { } p)
        {
            var pts = new SKPoint[p.Length / 2];
            for (int i = 0; i < pts.Length; i++) pts[i] = new SKPoint((float)p[2 * i], (float)p[2 * i + 1]);
            builder.AddPoly(pts, true);
        }
        else
        {
            builder.AddCircle((float)sh.Cx, (float)sh.Cy, (float)sh.Radius, SKPathDirection.Clockwise);
            if (sh.Kind == ShapeKind.Ring)
            {
                builder.AddCircle((float)sh.Cx, (float)sh.Cy, (float)(sh.Radius * sh.Inner), SKPathDirection.Clockwise);
                builder.FillType = SKPathFillType.EvenOdd;
            }
        }
        using var path = builder.Detach();
        canvas.DrawPath(path, paint);
    }

    static void DrawBackground(SKCanvas canvas, SKBitmap bmp, int s, int sh, Random rng, ShapesBackground kind)
    {
        var c1 = RandomColour(rng);
        if (kind == ShapesBackground.Flat)
        {
            canvas.Clear(c1);
            return;
        }
        // a gradient between two related colours in a random direction
        var c2 = Jitter(rng, c1, 100);
        double a = rng.NextDouble() * 2 * Math.PI, h = s / 2.0, hy = sh / 2.0;
        var p0 = new SKPoint((float)(h - Math.Cos(a) * h), (float)(hy - Math.Sin(a) * hy));
        var p1 = new SKPoint((float)(h + Math.Cos(a) * h), (float)(hy + Math.Sin(a) * hy));
        using (var shader = SKShader.CreateLinearGradient(p0, p1, new[] { c1, c2 }, null, SKShaderTileMode.Clamp))
        using (var paint = new SKPaint { Shader = shader })
            canvas.DrawRect(0, 0, s, sh, paint);

        // blurred blobs: soft, so that they never read as a crisp circle
        if (rng.NextDouble() < 0.7)
        {
            int blobs = rng.Next(2, 9);
            for (int i = 0; i < blobs; i++)
            {
                var col = Jitter(rng, c1, 140).WithAlpha((byte)rng.Next(60, 161));
                float bx = (float)(rng.NextDouble() * s), by = (float)(rng.NextDouble() * sh);
                float rx = (float)(Lerp(0.1, 0.5, rng.NextDouble()) * s), ry = (float)(Lerp(0.1, 0.5, rng.NextDouble()) * sh);
                float sigma = (float)(Lerp(0.03, 0.1, rng.NextDouble()) * Math.Min(s, sh));
                using var blur = SKMaskFilter.CreateBlur(SKBlurStyle.Normal, sigma);
                using var paint = new SKPaint { IsAntialias = true, Color = col, MaskFilter = blur };
                canvas.DrawOval(bx, by, rx, ry, paint);
            }
        }
        // thin straight lines across the image
        if (rng.NextDouble() < 0.5)
        {
            int lines = rng.Next(1, 7);
            for (int i = 0; i < lines; i++)
            {
                var col = RandomColour(rng).WithAlpha((byte)rng.Next(90, 256));
                float x0 = (float)(rng.NextDouble() * s), y0 = (float)(rng.NextDouble() * sh);
                float x1 = (float)(rng.NextDouble() * s), y1 = (float)(rng.NextDouble() * sh);
                using var paint = new SKPaint { IsAntialias = true, Color = col, StrokeWidth = (float)Lerp(1, 3, rng.NextDouble()), Style = SKPaintStyle.Stroke };
                canvas.DrawLine(x0, y0, x1, y1, paint);
            }
        }
        canvas.Flush();
        // per-pixel noise, per channel
        if (rng.NextDouble() < 0.7)
        {
            int amp = rng.Next(4, 25);
            var px = CopyPixels(bmp);
            for (int i = 0; i < px.Length; i += 4)
                for (int c = 0; c < 3; c++)
                    px[i + c] = (byte)Math.Clamp(px[i + c] + rng.Next(-amp, amp + 1), 0, 255);
            Marshal.Copy(px, 0, bmp.GetPixels(), px.Length);
            bmp.NotifyPixelsChanged();
        }
    }

    static byte[] CopyPixels(SKBitmap bmp)
    {
        var px = new byte[bmp.Width * bmp.Height * 4];
        if (bmp.RowBytes != bmp.Width * 4) throw new InvalidOperationException("unexpected row padding");
        Marshal.Copy(bmp.GetPixels(), px, 0, px.Length);
        return px;
    }

    static (double R, double G, double B) MeanColour(SKBitmap bmp, PixelBox box)
    {
        int x0 = (int)Math.Floor(box.X1), x1 = Math.Min(bmp.Width, (int)Math.Ceiling(box.X2));
        int y0 = (int)Math.Floor(box.Y1), y1 = Math.Min(bmp.Height, (int)Math.Ceiling(box.Y2));
        var span = bmp.GetPixelSpan();
        double r = 0, g = 0, b = 0;
        int n = 0;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
            {
                int i = (y * bmp.Width + x) * 4;
                r += span[i]; g += span[i + 1]; b += span[i + 2]; n++;
            }
        return n == 0 ? (128, 128, 128) : (r / n, g / n, b / n);
    }

    static SKColor ContrastingColour(Random rng, (double R, double G, double B) under)
    {
        for (int i = 0; i < 40; i++)
        {
            var c = RandomColour(rng);
            double dr = c.Red - under.R, dg = c.Green - under.G, db = c.Blue - under.B;
            if (Math.Sqrt(dr * dr + dg * dg + db * db) >= MinContrast) return c;
        }
        // practically unreachable: the far corner of the RGB cube is always at least 221 away
        return new SKColor((byte)(under.R < 128 ? 255 : 0), (byte)(under.G < 128 ? 255 : 0), (byte)(under.B < 128 ? 255 : 0));
    }

    static SKColor RandomColour(Random rng) => new((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));

    static SKColor Jitter(Random rng, SKColor c, int amount)
    {
        byte J(byte v) => (byte)Math.Clamp(v + rng.Next(-amount, amount + 1), 0, 255);
        return new SKColor(J(c.Red), J(c.Green), J(c.Blue));
    }

    static double Lerp(double a, double b, double t) => a + (b - a) * t;

    // ---- the folder ----
}
