using YoloSpp.Data;
using CocoDataset = YoloSpp.Evaluation.CocoDataset;
using Cfg = YoloSpp.Model.Cfg;
using Hyp = YoloSpp.Training.Hyp;
using static YoloSpp.Data.Augment;
using LabelRow = YoloSpp.Data.Labels.LabelRow;

namespace YoloSpp.Data;

/// <summary>Options of a dataset and its loader (the reference's LoadImagesAndLabels and DataLoader arguments).</summary>
public sealed class DataOptions
{
    /// <summary>Target image size (long side), a multiple of <see cref="YoloSpp.Model.DarkNet.GridStride"/>. Default 512.</summary>
    public int ImageSize { get; init; } = 512;
    /// <summary>Images per batch. Default 4.</summary>
    public int BatchSize { get; init; } = 4;
    /// <summary>Random affine, HSV and flip augmentation (training). Default false.</summary>
    public bool Augment { get; init; }
    /// <summary>4-image mosaic (only with <see cref="Augment"/>, as the reference: mosaic = augment and not rect). Default true.</summary>
    public bool Mosaic { get; init; } = true;
    /// <summary>Rectangular batches sorted by aspect ratio (validation). Default false.</summary>
    public bool Rect { get; init; }
    /// <summary>Augmentation gains (degrees, translate, scale, shear, hsv_h/s/v). Default: the reference's hyp.yaml.</summary>
    public HyperParameters Hyp { get; init; } = HyperParameters.Default;
    /// <summary>Shuffle the order every epoch (not with <see cref="Rect"/>). Default false.</summary>
    public bool Shuffle { get; init; }
    /// <summary>Seed of shuffling and augmentation; the same seed gives the same bytes. Default 0.</summary>
    public int Seed { get; init; }
    /// <summary>Batches prepared ahead of the consumer. Default 2.</summary>
    public int Prefetch { get; init; } = 2;
    /// <summary>Items of a batch decoded in parallel. Default: the processor count.</summary>
    public int Workers { get; init; } = Environment.ProcessorCount;
    /// <summary>Every label is class 0 (the reference's single_cls). Default false.</summary>
    public bool SingleClass { get; init; }
    /// <summary>Keep each decoded, resized image in memory after its first load (the reference's cache_images). Default false.</summary>
    public bool CacheImages { get; init; }
    /// <summary>Data-parallel sharding: the number of ranks the epoch is split over (DistributedSampler's
    /// num_replicas; batches then drop an incomplete last one, as train_multi_GPU.py's BatchSampler). Default 1: no sharding.</summary>
    public int ShardCount { get; init; } = 1;
    /// <summary>This process's rank among <see cref="ShardCount"/>. Default 0.</summary>
    public int ShardRank { get; init; }

    /// <summary>The reference's validation.py data: LoadImagesAndLabels(valid, 512, batch_size=1, rect=True).</summary>
    public static DataOptions Validation => new() { ImageSize = 512, BatchSize = 1, Rect = true };
}

/// <summary>How an evaluation image was letterboxed, to map boxes back: original (h0, w0), the total resize ratio and the half padding (x0 = (x − PadW) / RatioW).</summary>
public readonly record struct ImageShape(int Height0, int Width0, double RatioH, double RatioW, double PadW, double PadH);

/// <summary>One prepared image: RGB pixels, its objects (normalised to the prepared image) and where it came from.</summary>
public sealed record Sample(RgbImage Image, IReadOnlyList<ObjectLabel> Labels, string Path, int Index, ImageShape? Shape);

/// <summary>
/// The reference's LoadImagesAndLabels: scanned items plus __getitem__ (load_image, letterbox or mosaic, random
/// affine, HSV, flip). Item preparation is thread-safe and deterministic for (seed, epoch, index).
/// </summary>
public sealed class YoloDataset
{
    readonly DatasetItem[] _items;
    readonly int[] _batchOf;
    readonly (int H, int W)[] _batchShapes;
    // cache_images: load_image's result per item (never mutated: letterbox and mosaic copy out of it)
    // (references: a slot is written whole, so a worker never reads half of one)
    readonly Loaded?[] _cache;

    sealed record Loaded(RgbImage Image, int H0, int W0);

    /// <summary>The options the dataset was opened with.</summary>
    public DataOptions Options { get; }
    /// <summary>The scan (counts, warnings).</summary>
    public ScanResult Scan { get; }
    /// <summary>The images, in dataset order (sorted by aspect ratio when rect).</summary>
    public IReadOnlyList<DatasetItem> Items => _items;
    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }
    /// <summary>Number of images.</summary>
    public int Count => _items.Length;
    /// <summary>Whether items are mosaics (augment, mosaic and not rect).</summary>
    public bool UsesMosaic => Options.Augment && Options.Mosaic && !Options.Rect;

    YoloDataset(ScanResult scan, int nc, DataOptions o)
    {
        (Scan, NumClasses, Options) = (scan, o.SingleClass ? 1 : nc, o);
        if (Cfg.checkImageSize("image size", o.ImageSize) is { IsError: true } bad) throw new ArgumentException(bad.ErrorValue);
        if (o.BatchSize < 1) throw new ArgumentException("batch size must be >= 1");
        _items = scan.Items.ToArray();
        // single_cls: l[:, 0] = 0 (after the labels were checked against the dataset's classes)
        if (o.SingleClass)
            _items = _items.Select(it => new DatasetItem(it.ImagePath, it.LabelPath, it.Width0, it.Height0,
                it.Rows.Select(r => new LabelRow(0, r.Cx, r.Cy, r.W, r.H)).ToArray())).ToArray();
        _cache = new Loaded?[o.CacheImages ? _items.Length : 0];
        _batchOf = Enumerable.Range(0, _items.Length).Select(i => i / o.BatchSize).ToArray();
        _batchShapes = [];
        if (o.Rect)
        {
            // reference: sort by h/w, then one shape per batch
            var (order, shapes) = rectShapes(_items.Select(it => Tuple.Create(it.Height0, it.Width0)).ToArray(), o.BatchSize, o.ImageSize, 0.0).ToValueTuple();
            _items = order.Select(i => _items[i]).ToArray();
            _batchShapes = shapes.Select(s => (s.Item1, s.Item2)).ToArray();
        }
    }

    /// <summary>Scans an image list or folder and opens it. Throws <see cref="InvalidInputException"/> listing every bad row and image.</summary>
    public static YoloDataset Open(string source, int numClasses, DataOptions options)
    {
        var scan = LabelScan.Scan(source, numClasses);
        if (scan.Errors.Count > 0) throw new InvalidInputException(scan.Errors);
        return new YoloDataset(scan, numClasses, options);
    }

    /// <summary>The rect shape (h, w) of the batch holding item <paramref name="index"/>, or the square size.</summary>
    public (int Height, int Width) ShapeOf(int index) =>
        Options.Rect ? _batchShapes[_batchOf[index]] : (Options.ImageSize, Options.ImageSize);

    /// <summary>The random source of one item: a splitmix64 mix of (seed, epoch, index), so parallel workers stay deterministic.</summary>
    public static Random RandomFor(int seed, int epoch, int index)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ (ulong)(uint)epoch * 0xBF58476D1CE4E5B9UL ^ (ulong)(uint)index * 0x94D049BB133111EBUL;
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return new Random((int)(z & 0x7FFFFFFF));
    }

    static double Uniform(Random r, double a, double b) => a + (b - a) * r.NextDouble();

    /// <summary>The reference's __getitem__ for <paramref name="index"/> in epoch <paramref name="epoch"/>.</summary>
    public Sample GetItem(int index, int epoch = 0)
    {
        var rnd = RandomFor(Options.Seed, epoch, index);
        var item = _items[index];
        var hyp = Options.Hyp.Core;
        RgbImage img;
        PixelBox[] boxes;
        ImageShape? shape = null;
        if (UsesMosaic)
            (img, boxes) = LoadMosaic(index, rnd);
        else
        {
            var (loaded, h0, w0) = LoadImage(index);
            var (sh, sw) = ShapeOf(index);
            // letterbox(img, shape, auto=False, scale_up=self.augment)
            var plan = Letterbox.plan(new Letterbox.Options(Letterbox.Variant.Datasets, false, false, Options.Augment),
                loaded.Height, loaded.Width, sh, sw);
            img = loaded.Letterboxed(plan);
            // the total ratio (load_image's × letterbox's), so scaleCoords maps boxes straight back to (h0, w0); the
            // reference's tuple holds load_image's h/h0 only and its evaluate recomputes the gain instead
            shape = new ImageShape(h0, w0, plan.RatioH * loaded.Height / h0, plan.RatioW * loaded.Width / w0, plan.PadW, plan.PadH);
            boxes = toPixels(item.Rows, loaded.Width, loaded.Height, plan.RatioW, plan.RatioH, plan.PadW, plan.PadH);
        }
        if (Options.Augment)
        {
            if (!UsesMosaic) (img, boxes) = RandomAffine(img, boxes, rnd, 0);
            // augment_hsv: r = U(-1, 1, 3) * [h, s, v] + 1
            double gh = Uniform(rnd, -1, 1) * hyp.HsvH + 1, gs = Uniform(rnd, -1, 1) * hyp.HsvS + 1, gv = Uniform(rnd, -1, 1) * hyp.HsvV + 1;
            img.AugmentHsv(gh, gs, gv);
        }
        var rows = toNormalised(img.Width, img.Height, boxes);
        if (Options.Augment && rnd.NextDouble() < 0.5)
        {
            img.FlipLeftRight();
            rows = flipLr(rows);
        }
        return new Sample(img, ObjectLabel.Of(rows), item.ImagePath, index, shape);
    }

    /// <summary>load_image: the image resized to the dataset size, and its original (h0, w0); from the cache when on.</summary>
    (RgbImage Image, int H0, int W0) LoadImage(int index)
    {
        if (_cache.Length > 0 && Volatile.Read(ref _cache[index]) is { } hit) return (hit.Image, hit.H0, hit.W0);
        var img = RgbImage.LoadResized(_items[index].ImagePath, Options.ImageSize, Options.Augment, out var h0, out var w0);
        // two workers may load the same image at once: both results are the same bytes
        if (_cache.Length > 0) Volatile.Write(ref _cache[index], new Loaded(img, h0, w0));
        return (img, h0, w0);
    }

    /// <summary>random_affine: draws (a, s, tx, ty, shear x, shear y) in the reference's order, warps when needed, moves the boxes.</summary>
    (RgbImage, PixelBox[]) RandomAffine(RgbImage img, PixelBox[] boxes, Random rnd, int border)
    {
        var h = Options.Hyp.Core;
        var d = new AffineDraw(Uniform(rnd, -h.Degrees, h.Degrees), Uniform(rnd, 1 - h.Scale, 1 + h.Scale),
            Uniform(rnd, -h.Translate, h.Translate), Uniform(rnd, -h.Translate, h.Translate),
            Uniform(rnd, -h.Shear, h.Shear), Uniform(rnd, -h.Shear, h.Shear));
        int height = img.Height + border * 2, width = img.Width + border * 2;
        var m = affineMatrix(d, img.Height, img.Width, border);
        if (needsWarp(m, border)) img = img.WarpAffine(m, width, height);
        return (img, transformBoxes(m, d.Scale, width, height, boxes));
    }

    /// <summary>load_mosaic: 4 images around a random centre on a 2s canvas (pad 114), then random_affine with border −s/2.</summary>
    (RgbImage, PixelBox[]) LoadMosaic(int index, Random rnd)
    {
        int s = Options.ImageSize;
        int xc = (int)Uniform(rnd, s * 0.5, s * 1.5), yc = (int)Uniform(rnd, s * 0.5, s * 1.5);
        // random.randint(0, n - 1) is inclusive
        int[] indices = [index, rnd.Next(_items.Length), rnd.Next(_items.Length), rnd.Next(_items.Length)];
        var canvas = RgbImage.Filled(2 * s, 2 * s, 114);
        var boxes = new List<PixelBox>();
        for (int i = 0; i < 4; i++)
        {
            var it = _items[indices[i]];
            var tile = LoadImage(indices[i]).Image;
            var (dst, src) = mosaicTile(s, xc, yc, i, tile.Height, tile.Width).ToValueTuple();
            canvas.Paste(tile, src.X1, src.Y1, src.X2, src.Y2, dst.X1, dst.Y1);
            boxes.AddRange(mosaicLabels(s, dst, src, tile.Height, tile.Width, it.Rows));
        }
        // border = -s // 2 (Python floor division; s is even)
        return RandomAffine(canvas, boxes.ToArray(), rnd, -s / 2);
    }

    /// <summary>The reference's convert_to_coco_api over this dataset (image ids = dataset order, original sizes).</summary>
    internal YoloSpp.Evaluation.CocoDataset ToCocoGroundTruth(IReadOnlyList<string>? names = null) =>
        CocoGroundTruth.convert((names ?? Array.Empty<string>()).ToArray(), _items.Select(it => new CocoGroundTruth.SourceImage(it.ImagePath, it.Height0, it.Width0, it.Rows)).ToArray());
}
