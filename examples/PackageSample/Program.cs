// Train, evaluate and detect with the YoloSpp package, as the README shows: the shapes dataset, the demo's network
// written from its built-in topology, one epoch, then the Evaluator and the Detector on the validation images.
using YoloSpp;
using YoloSpp.Data;
using YoloSpp.Detection;
using YoloSpp.Evaluation;
using YoloSpp.Model;
using YoloSpp.Training;

var root = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "yolospp-package-sample");
var data = ShapesDataset.Generate(new ShapesOptions(Path.Combine(root, "shapes")) { Train = 32, Val = 8, Size = 96 });
var cfg = Path.Combine(root, "shapes-spp.cfg");
ModelCfg.Write(ModelCfg.Topology("shapes-spp", 5), cfg);

var options = new TrainOptions
{
    Cfg = cfg, Data = data.DataFile, Epochs = 1, BatchSize = 8, ImageSize = 96, MultiScale = false, Mosaic = false,
    Device = "cpu", OutputDir = Path.Combine(root, "run"), Accumulate = 1,
};
var result = new Trainer(options, Console.WriteLine).Run();
Console.WriteLine($"trained {result.EpochsDone} epoch: mAP@0.5 {result.Final?.Map50:F4}, weights {result.LastCheckpoint}");

var eval = Evaluator.Evaluate(cfg, result.LastCheckpoint, data.DataFile, dataOptions: new YoloSpp.Data.DataOptions { ImageSize = 96 });
Console.WriteLine($"evaluated {eval.Images} images: mAP@0.5 {eval.Map50:F4}");

using var detector = Detector.Load(cfg, result.LastCheckpoint, Path.Combine(data.Directory, "shapes.names"),
    new DetectorOptions { ImageSize = 96, ConfThreshold = 0.001 });
var image = Directory.GetFiles(Path.Combine(data.Directory, "images", "val")).Order().First();
var detections = detector.Detect(image);
Console.WriteLine($"{detections.Count} detections on {Path.GetFileName(image)}");
Console.WriteLine($"conv guard: {ConvGuard.Report.Decision}");
