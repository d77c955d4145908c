using YoloSpp.Data;
using YoloSpp.Detection;

namespace YoloSpp.Evaluation;

/// <summary>
/// Pictures of a dataset, to check annotations before training on them: its label statistics (<c>labels.png</c>,
/// as yolov5's plot_labels) and a grid of its images with their labels drawn (as the training batches are drawn).
/// </summary>
public static class DatasetCharts
{
    /// <summary>Writes labels.png: instances per class, and 2-D histograms of the box centres and sizes.</summary>
    /// <param name="dataset">The dataset (its labels as read, before any augmentation).</param>
    /// <param name="names">Class names.</param>
    /// <param name="path">The PNG to write (atomically).</param>
    public static void WriteLabels(YoloDataset dataset, IReadOnlyList<string> names, string path)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var single = dataset.Options.SingleClass;
        var labels = dataset.Items.SelectMany(it => it.Labels)
            .Select(l => (single ? 0 : l.Class, l.Cx, l.Cy, l.W, l.H)).ToArray();
        Charts.Labels(single ? [names.Count > 0 ? names[0] : "0"] : names, labels, path);
    }

    /// <summary>Writes the first <paramref name="count"/> images of the dataset (at most <see cref="BatchPlot.MaxImages"/>)
    /// letterboxed to its image size, unaugmented, with their labels and file names, as one JPEG grid.</summary>
    /// <param name="source">An image list file or a folder of images with its labels.</param>
    /// <param name="names">Class names (their count is the dataset's class count).</param>
    /// <param name="path">The picture to write (JPEG, or PNG for a .png path).</param>
    /// <param name="count">Images drawn (1 to 16).</param>
    /// <param name="imageSize">Tile size (long side), a multiple of 32.</param>
    public static void WriteSample(string source, IReadOnlyList<string> names, string path, int count = BatchPlot.MaxImages, int imageSize = 512)
    {
        if (count < 1 || count > BatchPlot.MaxImages) throw new ArgumentException($"--n {count} must be in [1, {BatchPlot.MaxImages}]");
        var dataset = YoloDataset.Open(source, names.Count, new DataOptions { ImageSize = imageSize, BatchSize = count, Augment = false });
        using var batch = new YoloDataLoader(dataset).Epoch(0).First();
        BatchPlot.Save(batch.Images, batch.Targets, batch.Paths, names, path);
    }
}
