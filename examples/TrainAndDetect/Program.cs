using YoloSpp.Data;
using YoloSpp.Detection;
using YoloSpp.Training;

// 1. a small synthetic dataset (5 classes of shapes), 2. train one epoch, 3. detect on one validation image
var data = ShapesDataset.Generate(new ShapesOptions(Path.Combine("runs", "example", "shapes")) { Train = 96, Val = 16, Size = 96 });
var options = new TrainOptions
{
    Cfg = "shapes-spp", Data = data.DataFile, Hyp = "shapes", Epochs = 1,
    BatchSize = 16, ImageSize = 96, MultiScale = false, Mosaic = false, OutputDir = Path.Combine("runs", "example"),
};
var result = new Trainer(options, Console.WriteLine).Run(new Progress<TrainProgress>(p => Console.WriteLine($"epoch {p.Epoch}: batch {p.Batch}/{p.Batches}, loss {p.MeanLosses.Total:F3}")));
Console.WriteLine($"mAP@0.5 {result.Final?.Map50:F4}, weights {result.LastCheckpoint}");
// the checkpoint carries its network, class names and image size
using var detector = Detector.Load(result.LastCheckpoint, new DetectorOptions { ConfThreshold = 0.001 });
var detections = detector.Detect(Path.Combine(data.Directory, "images", "val", "000000.jpg"));
Console.WriteLine($"{detections.Count} detections (after one epoch the scores are still low)");
foreach (var d in detections.Take(5)) Console.WriteLine($"{d.ClassName} {d.Confidence:F4} ({d.X1}, {d.Y1})-({d.X2}, {d.Y2})");
