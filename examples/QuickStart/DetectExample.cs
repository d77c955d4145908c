using YoloSpp.Detection;
using YoloSpp.Evaluation;

namespace QuickStart;

/// <summary>The README's detection and evaluation example: the C# façade as a user calls it.</summary>
public static class DetectExample
{
    /// <summary>Detects objects in an image, writes an annotated copy, and evaluates the same weights on a dataset.</summary>
    /// <returns>The detections of the image and the dataset's mAP@.5.</returns>
    public static (IReadOnlyList<Detection> Detections, double Map50) Run(
        string cfg, string weights, string names, string data, string image, string annotated, int imageSize)
    {
        using var detector = Detector.Load(cfg, weights, names, new DetectorOptions { ImageSize = imageSize, ConfThreshold = 1e-5 });
        var detections = detector.Detect(image);
        detector.Annotate(image, annotated);   // draws those scoring above DrawThreshold (0.2)
        foreach (var d in detections.Take(3))
            Console.WriteLine($"{d.ClassName} {d.Confidence:F3} at ({d.X1}, {d.Y1})-({d.X2}, {d.Y2})");

        var result = Evaluator.Evaluate(cfg, weights, data, new EvaluationOptions { ConfThreshold = 1e-5 },
            new YoloSpp.Data.DataOptions { ImageSize = imageSize, BatchSize = 4 });
        Console.Write(result.Summary);
        return (detections, result.Map50);
    }
}
