using YoloSpp;
using YoloSpp.Geometry;
using YoloSpp.Platform;
using YoloSpp.Training;
using static TorchSharp.torch;

namespace QuickStart;

public static class Example
{
    /// <summary>The README's C# example; returns (GIoU, total loss).</summary>
    public static (double Giou, double Loss) Run()
    {
        Backend.Initialize();
        // GIoU of two boxes given as (cx, cy, w, h)
        double giou = BoxOps.BboxIou(new[] { 10.0, 10.0, 4.0, 4.0 }, new[] { 12.0, 11.0, 4.0, 6.0 }, IouType.GIoU);

        // the YOLOv3 loss for a 64x64 input with 3 classes: raw head outputs for strides 32, 16, 8
        using var scope = NewDisposeScope();
        var anchorsPx = new[] { new[] { 116.0, 90, 156, 198, 373, 326 }, new[] { 30.0, 61, 62, 45, 59, 119 }, new[] { 10.0, 13, 16, 30, 33, 23 } };
        var strides = new[] { 32, 16, 8 };
        var anchors = anchorsPx.Select((a, i) => tensor(a).view(3, 2) / strides[i]).ToArray();
        var p = strides.Select(s => randn(new long[] { 2, 3, 64 / s, 64 / s, 3 + 5 }, generator: new Generator(0))).ToArray();
        var targets = tensor(new float[] { 0, 1, 0.5f, 0.5f, 0.4f, 0.3f, 1, 2, 0.25f, 0.7f, 0.1f, 0.2f }).view(2, 6);
        var loss = new YoloLoss(LossOptions.From(HyperParameters.Default.AdjustedFor(numClasses: 3, imageSize: 64)), anchors, numClasses: 3);
        var parts = loss.Compute(p, targets);
        return (giou, parts.Total.item<float>());
    }

    public static void Main()
    {
        var (giou, total) = Run();
        Console.WriteLine($"GIoU = {giou:F6}, loss = {total:F4}");
    }
}
