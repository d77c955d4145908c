using System.Diagnostics;
using YoloSpp.Data;
using YoloSpp.Detection;

namespace YoloSpp.Evaluation;

public static partial class Evaluator
{
    /// <summary>
    /// Evaluates a <see cref="Detector"/> on the <c>valid</c> list of <paramref name="dataPath"/>: every image through
    /// <see cref="Detector.Detect(string)"/> (so with its sliced inference, <see cref="DetectorOptions.Slice"/>, or any
    /// other option), scored by the same COCO evaluation and validation numbers as the batched evaluation. Give the
    /// detector the evaluation's thresholds (conf 0.01, IoU 0.6, best class per box) to compare with it.
    /// </summary>
    /// <exception cref="InvalidInputException">The .data/.names file or the valid list is missing or malformed, or
    /// the class counts differ.</exception>
    public static EvaluationResult Evaluate(Detector detector, string dataPath, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(detector);
        var watch = Stopwatch.StartNew();
        var data = DataFiles.Load(dataPath);
        if (detector.ClassNames.Count != data.Classes)
            throw new InvalidInputException(dataPath, $"classes={data.Classes} but the model has {detector.ClassNames.Count} classes");
        if (!File.Exists(data.Valid) && !Directory.Exists(data.Valid))
            throw new InvalidInputException(dataPath, $"valid list not found: {data.Valid}");
        // the labels and original sizes only: the detector letterboxes each image itself
        var dataset = YoloDataset.Open(data.Valid, data.Classes, new DataOptions { ImageSize = detector.ImageSize, BatchSize = 1, Augment = false, Shuffle = false });
        var detections = new List<ImageDetection>();
        for (int i = 0; i < dataset.Count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            foreach (var d in detector.Detect(dataset.Items[i].ImagePath))
                detections.Add(new ImageDetection(i, d.ClassId, d.X1, d.Y1, d.X2 - d.X1, d.Y2 - d.Y1, d.Confidence));
        }
        return Result(dataset, detections, data.Names.ToArray(), watch);
    }
}
