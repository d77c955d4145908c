using YoloSpp.Data;
using YoloSpp.Detection;
using YoloSpp.Evaluation;
using YoloSpp.Export;
using YoloSpp.Training;

// a dataset in the YOLO layout: 200 generated images of shapes (yours: "my-data/my.data")
var data = ShapesDataset.Generate(new ShapesOptions("shapes") { Train = 160, Val = 40, Size = 96 }).DataFile;

// train the built-in shapes-spp network with the built-in shapes hyperparameters (the demo's preset) on it
var options = TrainOptions.ShapesDemo with { Data = data, ImageSize = 96, Epochs = 3, OutputDir = "runs/csharp" };
var run = new Trainer(options, Console.WriteLine).Run();
var weights = run.BestCheckpoint ?? run.LastCheckpoint;
Console.WriteLine($"trained {run.EpochsDone} epochs: mAP@0.5 {run.Final?.Map50:F3}, weights {weights}");

// the checkpoint carries its network, class names and image size
var eval = Evaluator.Evaluate(weights, data);
Console.WriteLine($"evaluated {eval.Images} images: mAP@0.5 {eval.Map50:F3}, mAP@0.5:0.95 {eval.Map:F3}");

using var detector = Detector.Load(weights);
var image = Path.Combine("shapes", "images", "val", "000000.jpg");
var found = detector.Detect(image);
Console.WriteLine($"{found.Count} objects in {image}");
foreach (var d in found.Take(5))
    Console.WriteLine($"  {d.ClassName} {d.Confidence:F2} at ({d.X1}, {d.Y1})-({d.X2}, {d.Y2})");
detector.Annotate(image, "000000-boxes.jpg");

OnnxExport.Export(weights, "shapes.onnx");
Console.WriteLine("wrote 000000-boxes.jpg and shapes.onnx");
