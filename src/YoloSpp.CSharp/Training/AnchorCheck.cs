using YoloSpp.Data;
using YoloSpp.Model;

namespace YoloSpp.Training;

/// <summary>
/// yolov5's anchor check at the start of a run (check_anchors in utils/autoanchor.py): the training labels' sizes at
/// the training size (each image's long side at the image size, times a random 0.9–1.1 as yolov5's augment scale),
/// against the network's anchors in pixels, with the wh-ratio metric (<see cref="Anchors.ratioMetric"/>, threshold
/// 4.0: yolov5's <c>anchor_t</c>). A best possible recall above 0.98 is a good fit.
/// </summary>
public static class AnchorCheck
{
    /// <summary>yolov5's anchor-label wh ratio threshold (hyp <c>anchor_t</c>).</summary>
    public const double Threshold = 4.0;
    /// <summary>The best possible recall above which yolov5 keeps the anchors.</summary>
    public const double GoodFit = 0.98;

    /// <summary>The training labels' sizes in pixels at <paramref name="imageSize"/>: each image's long side at the image
    /// size, times a random 0.9–1.1 drawn from <paramref name="seed"/> (yolov5's augment scale).</summary>
    static Tuple<double, double>[] LabelSizes(YoloDataset train, int imageSize, int seed)
    {
        var rnd = new Random(seed);
        var wh = new List<Tuple<double, double>>();
        foreach (var item in train.Items)
        {
            double s = imageSize / (double)Math.Max(item.Width0, item.Height0) * (0.9 + 0.2 * rnd.NextDouble());
            foreach (var l in item.Labels) wh.Add(Tuple.Create(l.W * item.Width0 * s, l.H * item.Height0 * s));
        }
        return wh.ToArray();
    }

    static Tuple<double, double>[] Pairs(IEnumerable<(double W, double H)> anchors) => anchors.Select(a => Tuple.Create(a.W, a.H)).ToArray();

    /// <summary>Best possible recall and anchors above threshold of the anchors <paramref name="cfg"/>'s [yolo] layers use,
    /// for the labels of <paramref name="train"/> at <paramref name="imageSize"/>; the random scales are drawn from <paramref name="seed"/>.</summary>
    public static (double BestPossibleRecall, double AnchorsAboveThreshold) Measure(YoloDataset train, DarknetConfig cfg, int imageSize, int seed)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(cfg);
        return Anchors.ratioMetric(Threshold, LabelSizes(train, imageSize, seed), Pairs(cfg.MaskedAnchors)).ToValueTuple();
    }

    /// <summary>
    /// The check a run starts with, and with <paramref name="evolve"/> (<c>--autoanchor</c>) yolov5's remedy: below a
    /// best possible recall of 0.98, new anchors from the labels (<see cref="Anchors.kmeanAnchors"/>, the <c>anchors</c>
    /// command's k-means and genetic refinement, with the hyperparameters' IoU threshold, 1,000 generations) replace
    /// the cfg's when they recall more. Returns the cfg to build (the same one, or one with the new anchors).
    /// </summary>
    public static DarknetConfig Check(DarknetConfig cfg, YoloDataset train, int imageSize, int seed, double iouThreshold, bool evolve,
        string dataFile, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        ArgumentNullException.ThrowIfNull(train);
        var wh = LabelSizes(train, imageSize, seed);
        var current = Pairs(cfg.MaskedAnchors);
        var (bpr, aat) = Anchors.ratioMetric(Threshold, wh, current).ToValueTuple();
        log?.Invoke(Describe(bpr, aat, dataFile, imageSize, evolve));
        if (bpr > GoodFit || !evolve) return cfg;
        // k-means needs boxes over 2 px, as kmean_anchors filters them
        var boxes = wh.Where(b => b.Item1 >= 2 && b.Item2 >= 2).ToArray();
        if (cfg.Anchors.Count != current.Length || boxes.Length < current.Length)
        {
            log?.Invoke($"AutoAnchor: not evolved ({(boxes.Length < current.Length ? $"{boxes.Length} label boxes over 2 px for {current.Length} anchors" : "the [yolo] masks do not use every anchor once")}); proceeding with the cfg's anchors");
            return cfg;
        }
        var evolved = Anchors.kmeanAnchors(new Random(seed), boxes, current.Length, iouThreshold, 1000,
            Microsoft.FSharp.Core.FSharpFunc<Tuple<double, double>[], Microsoft.FSharp.Core.Unit>.FromConverter(_ => null!));
        var (newBpr, newAat) = Anchors.ratioMetric(Threshold, wh, evolved).ToValueTuple();
        if (!(newBpr > bpr))
        {
            log?.Invoke($"AutoAnchor: the evolved anchors recall no more ({newBpr:0.000}); proceeding with the cfg's anchors");
            return cfg;
        }
        var rounded = evolved.Select(a => (Math.Round(a.Item1, 1), Math.Round(a.Item2, 1))).ToArray();
        log?.Invoke($"AutoAnchor: new anchors, {newAat:0.00} anchors/target, {newBpr:0.000} Best Possible Recall: " +
            string.Join(",  ", rounded.Select(a => $"{a.Item1:0.#},{a.Item2:0.#}")) + " (in the run's cfg and its checkpoints)");
        return cfg.WithAnchors(rounded);
    }

    /// <summary>The line a run prints, in yolov5's words, and what to do about a poor fit.</summary>
    public static string Describe(double bpr, double aat, string dataFile, int imageSize, bool evolving = false) =>
        $"AutoAnchor: {aat:0.00} anchors/target, {bpr:0.000} Best Possible Recall (BPR). " + (bpr > GoodFit
            ? "Current anchors are a good fit to the dataset"
            : evolving
                ? "Anchors are a poor fit to the dataset, attempting to improve..."
                : $"Anchors are a poor fit to the dataset (BPR at most {GoodFit}): --autoanchor evolves new ones for this run, " +
                  $"`yolospp anchors --data {dataFile} --img-size {imageSize}` proposes some for the cfg");
}
