using System.Diagnostics;
using TorchSharp;
using YoloSpp.Data;
using YoloSpp.Detection;
using YoloSpp.Evaluation;
using YoloSpp.Geometry;
using YoloSpp.Model;
using YoloSpp.Platform;
using Hyp = YoloSpp.Training.Hyp;
using static TorchSharp.torch;

namespace YoloSpp.Evaluation;

/// <summary>Options of an evaluation run (the reference's evaluate uses conf 0.01, IoU 0.6, best class per box).</summary>
public sealed record EvaluationOptions
{
    /// <summary>Objectness and class-confidence threshold of NMS.</summary>
    public double ConfThreshold { get; init; } = 0.01;
    /// <summary>IoU threshold of NMS.</summary>
    public double IouThreshold { get; init; } = 0.6;
    /// <summary>Every (box, class) pair above the threshold instead of the best class per box.</summary>
    public bool MultiLabel { get; init; }
    /// <summary>Boxes kept per image after NMS.</summary>
    public int MaxDetections { get; init; } = 100;
    /// <summary>Merge-NMS: each kept box becomes the score-weighted mean of the boxes it suppressed (the reference's
    /// <c>merge</c> option, "for best mAP"; off by default, as there).</summary>
    public bool Merge { get; init; }
    /// <summary>A folder to draw the first batch into, with its labels (<c>val_batch0_labels.jpg</c>) and with the
    /// predictions scoring above 0.25 (<c>val_batch0_pred.jpg</c>), as yolov5's val.py; null (default): none.</summary>
    public string? PlotDirectory { get; init; }

    /// <summary>Checks the thresholds (each in [0, 1]) and the detection cap; throws <see cref="ArgumentException"/> naming the option.</summary>
    public void Validate() => Thresholds.Check(ConfThreshold, IouThreshold, MaxDetections);
}

/// <summary>AP of one class over all areas at maxDets 100.</summary>
/// <param name="CategoryId">Class index (the COCO category id).</param>
/// <param name="Name">Class name.</param>
/// <param name="Ap">AP@[.5:.95]; −1 when the class has no ground truth.</param>
/// <param name="Ap50">AP@.5; −1 when the class has no ground truth.</param>
public sealed record ClassAp(long CategoryId, string Name, double Ap, double Ap50);

/// <summary>The mean loss over the validation batches, each term multiplied by its gain (as the training loss).</summary>
/// <param name="Box">GIoU box loss.</param>
/// <param name="Objectness">Objectness loss.</param>
/// <param name="Class">Class loss.</param>
public readonly record struct ValidationLoss(double Box, double Objectness, double Class)
{
    /// <summary>Their sum.</summary>
    public double Total => Box + Objectness + Class;
}

/// <summary>One detection in COCO's result format: the image, the class and the box in original-image pixels.</summary>
/// <param name="ImageId">Image id (its index in the dataset).</param>
/// <param name="CategoryId">Class index.</param>
/// <param name="X">Left edge.</param>
/// <param name="Y">Top edge.</param>
/// <param name="W">Width.</param>
/// <param name="H">Height.</param>
/// <param name="Score">Confidence (objectness × class score).</param>
public readonly record struct ImageDetection(long ImageId, long CategoryId, double X, double Y, double W, double H, double Score)
{
    internal CocoDetection ToCoco() => new(ImageId, CategoryId, new CocoBox(X, Y, W, H), Score);
}

/// <summary>The 12 COCO numbers of a dataset, the per-class AP, and the detections they came from.</summary>
/// <param name="Stats">pycocotools' 12 stats (AP@[.5:.95], AP@.5, AP@.75, AP S/M/L, AR@1/10/100, AR S/M/L); −1 = undefined.</param>
/// <param name="Summary">The table pycocotools prints.</param>
/// <param name="PerClass">AP@[.5:.95] and AP@.5 per class that has ground truth.</param>
/// <param name="Detections">The detections in original-image pixels (COCO xywh), ready to save as JSON.</param>
/// <param name="Images">Images evaluated.</param>
/// <param name="Elapsed">Wall time: loading, inference, NMS and the COCO evaluation.</param>
public sealed record EvaluationResult(IReadOnlyList<double> Stats, string Summary, IReadOnlyList<ClassAp> PerClass,
    IReadOnlyList<ImageDetection> Detections, int Images, TimeSpan Elapsed)
{
    /// <summary>AP@[.5:.95] (stats[0]).</summary>
    public double Map => Stats[0];
    /// <summary>AP@.5 (stats[1]).</summary>
    public double Map50 => Stats[1];

    /// <summary>The mean validation loss per batch (box, objectness, class), as yolov5's val.py computes it with the
    /// training loss on the validation batches; null where not computed (the trainer's evaluations compute it).</summary>
    public ValidationLoss? Loss { get; init; }

    /// <summary>yolov5's validation numbers of the same detections: precision, recall and F1 against the confidence,
    /// the PR curves, the F1-best confidence and the confusion matrix (null where not computed).</summary>
    public ValidationMetrics? Validation { get; init; }

    /// <summary>Mean precision at the F1-best confidence (yolov5's P); NaN without <see cref="Validation"/>.</summary>
    public double Precision => Validation?.Precision ?? double.NaN;
    /// <summary>Mean recall at the F1-best confidence (yolov5's R); NaN without <see cref="Validation"/>.</summary>
    public double Recall => Validation?.Recall ?? double.NaN;

    /// <summary>The detections as a COCO result json (a list of {image_id, category_id, bbox, score}).</summary>
    public string DetectionsJson() => CocoJson.serializeDetections(Detections.Select(d => d.ToCoco()).ToArray());
}

/// <summary>
/// The reference's evaluate(): letterboxed (or rect) batches through the network in eval mode, NMS, boxes mapped
/// back to the original images with scale_coords (max-based gain, as the reference) and rounded, then the
/// pycocotools-exact COCO evaluation.
/// </summary>
public static partial class Evaluator
{
    /// <summary>
    /// Evaluates a checkpoint written by training on the <c>valid</c> list of <paramref name="dataPath"/>, as the
    /// reference's validation.py does (rectangular batches of 1), at the size the checkpoint was trained at: the
    /// checkpoint carries its cfg and image size, the class names come from the .data file's names.
    /// </summary>
    /// <param name="weightsPath">A .ckpt file (last.ckpt, best.ckpt).</param>
    /// <param name="dataPath">.data file (classes, valid, names).</param>
    /// <param name="options">NMS settings; default: the reference's evaluate (conf 0.01, IoU 0.6).</param>
    /// <exception cref="InvalidInputException">The checkpoint, the .data/.names file or the valid list is missing or
    /// malformed, or the checkpoint's class count is not the .data file's.</exception>
    public static EvaluationResult Evaluate(string weightsPath, string dataPath, EvaluationOptions? options = null) =>
        Evaluate(null, weightsPath, dataPath, options);

    /// <summary>
    /// Evaluates a trained model given as files, as the reference's test step does: the network of
    /// <paramref name="weightsPath"/> (a .ckpt carries its cfg; other weights need <paramref name="cfgPath"/>), on the
    /// <c>valid</c> list of <paramref name="dataPath"/> with the class names of its <c>.names</c>.
    /// </summary>
    /// <param name="cfgPath">Darknet cfg file or built-in topology name; its class count must equal the .data file's
    /// <c>classes</c>. Null for a .ckpt (it carries its cfg) and for ONNX Runtime; given for a .ckpt, it overrides the
    /// checkpoint's (with a notice when it differs).</param>
    /// <param name="weightsPath">A .ckpt, or .weights, .pt/.pth, .safetensors holding every tensor of the cfg's network.</param>
    /// <param name="dataPath">.data file (classes, valid, names).</param>
    /// <param name="options">NMS settings; default: the reference's evaluate (conf 0.01, IoU 0.6).</param>
    /// <param name="dataOptions">Image size, batch size and rect batching; augmentation is always off. Null:
    /// validation.py's (batch 1, rect) at the checkpoint's training size (512 for weights that do not record one);
    /// given, its image size is used (with a notice when it differs from the checkpoint's).</param>
    /// <param name="device">Device to run on (default: CUDA when available, else the CPU).</param>
    /// <param name="cancellation">Stops between batches.</param>
    /// <param name="backend">TorchSharp (default) or ONNX Runtime; for ONNX Runtime <paramref name="weightsPath"/> is a
    /// model <see cref="YoloSpp.Export.OnnxExport"/> wrote and <paramref name="cfgPath"/> may be null (the model carries its cfg).</param>
    /// <param name="notice">Receives one-line notices (an override that differs from the checkpoint).</param>
    /// <exception cref="InvalidInputException">The cfg or weights file is missing, or weights other than a .ckpt come without a cfg.</exception>
    /// <exception cref="InvalidInputException">The cfg is malformed.</exception>
    /// <exception cref="InvalidInputException">The .data/.names file or the valid list is missing or malformed.</exception>
    /// <exception cref="InvalidInputException">The weights do not fit the cfg.</exception>
    /// <exception cref="InvalidInputException">The cfg and the .data file disagree on the class count, or the weights file is unreadable.</exception>
    public static EvaluationResult Evaluate(string? cfgPath, string weightsPath, string dataPath,
        EvaluationOptions? options = null, DataOptions? dataOptions = null, Device? device = null,
        CancellationToken cancellation = default, InferenceBackend backend = InferenceBackend.TorchSharp, Action<string>? notice = null)
    {
        options?.Validate();
        var data = DataFiles.Load(dataPath);
        var names = data.Names.ToArray();
        Backend.Initialize();
        var d = dataOptions ?? DataOptions.Validation;
        if (backend == InferenceBackend.OnnxRuntime)
        {
            using var onnx = InferenceNetwork.LoadOnnx(cfgPath, weightsPath, CPU, notice);
            int size = dataOptions?.ImageSize ?? onnx.TrainedImageSize ?? TrainedModel.DefaultImageSize;
            return EvaluateFiles(onnx, weightsPath, dataPath, data, names, size, d, options, cancellation);
        }
        var trained = TrainedModel.Open(weightsPath, cfgPath, null, dataOptions?.ImageSize, notice);
        if (trained.ImageSizeNotice is { } n) notice?.Invoke(n);
        return Evaluate(trained, dataPath, options, dataOptions, device, cancellation);
    }

    /// <summary>
    /// Evaluates a trained model opened with <see cref="TrainedModel.Open"/> (its cfg, and the image size it was
    /// opened with) on the <c>valid</c> list of <paramref name="dataPath"/>, with the class names of its <c>.names</c>.
    /// </summary>
    /// <param name="model">The network and its image size (<see cref="TrainedModel.ImageSize"/>).</param>
    /// <param name="dataPath">.data file (classes, valid, names); its class count must be the network's.</param>
    /// <param name="options">NMS settings; default: the reference's evaluate (conf 0.01, IoU 0.6).</param>
    /// <param name="dataOptions">Batch size, rect batching, workers; null: validation.py's (batch 1, rect). The image
    /// size is always the model's.</param>
    /// <param name="device">Device to run on (default: CUDA when available, else the CPU).</param>
    /// <param name="cancellation">Stops between batches.</param>
    /// <exception cref="InvalidInputException">The .data/.names file or the valid list is missing or malformed, the
    /// class counts differ, or the weights do not fit the network.</exception>
    public static EvaluationResult Evaluate(TrainedModel model, string dataPath, EvaluationOptions? options = null,
        DataOptions? dataOptions = null, Device? device = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var data = DataFiles.Load(dataPath);
        var names = data.Names.ToArray();
        Backend.Initialize();
        // the class counts are compared before any weights are read, so that a mismatch is named as such
        if (model.NumClasses != data.Classes)
            throw new InvalidInputException(model.CfgSource, $"the cfg has {model.NumClasses} classes but {dataPath} says classes={data.Classes}");
        using var network = InferenceNetwork.FromTrained(model, device ?? Backend.ResolveDevice(Backend.AutoDevice));
        return EvaluateFiles(network, model.WeightsPath, dataPath, data, names, model.ImageSize, dataOptions ?? DataOptions.Validation, options, cancellation);
    }

    static EvaluationResult EvaluateFiles(InferenceNetwork network, string weightsPath, string dataPath, DataDescription data, string[] names,
        int imageSize, DataOptions d, EvaluationOptions? options, CancellationToken cancellation)
    {
        if (network.NumClasses != data.Classes)
            throw new InvalidInputException(weightsPath, $"the model has {network.NumClasses} classes but {dataPath} says classes={data.Classes}");
        if (!File.Exists(data.Valid) && !Directory.Exists(data.Valid))
            throw new InvalidInputException(dataPath, $"valid list not found: {data.Valid}");
        var dataset = YoloDataset.Open(data.Valid, data.Classes, new DataOptions
        {
            ImageSize = imageSize, BatchSize = d.BatchSize, Rect = d.Rect, Hyp = d.Hyp, Workers = d.Workers,
            Prefetch = d.Prefetch, Augment = false, Shuffle = false,
        });
        return Evaluate(x => (network.Predict(x), null), dataset, network.Device, options, names, cancellation);
    }

    /// <summary>Evaluates <paramref name="model"/> on every image of <paramref name="dataset"/> (opened without augmentation).</summary>
    public static EvaluationResult Evaluate(DarkNet model, YoloDataset dataset, Device? device = null,
        EvaluationOptions? options = null, IReadOnlyList<string>? classNames = null, CancellationToken cancellation = default)
    {
        device ??= model.parameters().First().device;
        var wasTraining = model.training;
        model.eval();
        try { return Evaluate(x => (model.forward(x).Detections!, null), dataset, device, options, classNames, cancellation); }
        finally { if (wasTraining) model.train(); }
    }

    /// <summary>The evaluation of a model being trained, with the validation loss: <paramref name="loss"/> maps the raw
    /// heads and the batch's targets to (box, objectness, class).</summary>
    internal static EvaluationResult EvaluateWithLoss(DarkNet model, YoloDataset dataset, Device device, EvaluationOptions options,
        IReadOnlyList<string>? classNames, Func<Tensor[], Tensor, (double Box, double Objectness, double Class)> loss, CancellationToken cancellation)
    {
        var wasTraining = model.training;
        model.eval();
        double box = 0, obj = 0, cls = 0;
        int batches = 0;
        try
        {
            var result = Evaluate(x => { var o = model.forward(x); return (o.Detections!, o.Raw); }, dataset, device, options, classNames, cancellation,
                (raw, targets) =>
                {
                    var (b, o, c) = loss(raw, targets.to(device));
                    (box, obj, cls, batches) = (box + b, obj + o, cls + c, batches + 1);
                });
            return batches == 0 ? result : result with { Loss = new ValidationLoss(box / batches, obj / batches, cls / batches) };
        }
        finally { if (wasTraining) model.train(); }
    }

    /// <summary>val_batch0_labels.jpg and val_batch0_pred.jpg: the batch with its labels, and with its predictions
    /// (input pixels, corners) as normalised centre boxes with their confidence.</summary>
    static void PlotFirstBatch(string dir, DataBatch batch, Microsoft.FSharp.Core.FSharpOption<Tensor>[] perImage, int w1, int h1, IReadOnlyList<string> names)
    {
        Directory.CreateDirectory(dir);
        BatchPlot.Save(batch.Images, batch.Targets, batch.Paths, names, Path.Combine(dir, "val_batch0_labels.jpg"));
        var rows = new List<double>();
        for (int i = 0; i < perImage.Length; i++)
        {
            if (perImage[i] is null) continue;
            var r = perImage[i].Value.cpu().to(ScalarType.Float64).data<double>().ToArray();
            for (int k = 0; k + 5 < r.Length; k += 6)
                rows.AddRange([i, r[k + 5], (r[k] + r[k + 2]) / 2 / w1, (r[k + 1] + r[k + 3]) / 2 / h1, (r[k + 2] - r[k]) / w1, (r[k + 3] - r[k + 1]) / h1, r[k + 4]]);
        }
        using var preds = tensor(rows.ToArray(), ScalarType.Float64).reshape(-1, 7);
        BatchPlot.Save(batch.Images, preds, batch.Paths, names, Path.Combine(dir, "val_batch0_pred.jpg"));
    }

    /// <summary>The evaluation over any network that maps a batch to its decoded detections [bs, rows, 5 + nc] (and,
    /// for a DarkNet, its raw heads, which <paramref name="onRaw"/> receives with the batch's targets).</summary>
    static EvaluationResult Evaluate(Func<Tensor, (Tensor Detections, Tensor[]? Raw)> predict, YoloDataset dataset, Device device,
        EvaluationOptions? options, IReadOnlyList<string>? classNames, CancellationToken cancellation,
        Action<Tensor[], Tensor>? onRaw = null)
    {
        options ??= new EvaluationOptions();
        options.Validate();
        var watch = Stopwatch.StartNew();
        var d = Nms.NmsOptions.Default;
        var nms = new Nms.NmsOptions(options.ConfThreshold, options.IouThreshold, options.MultiLabel, options.MaxDetections,
            d.MinWh, d.MaxWh, d.Classes, d.Agnostic, options.Merge);
        var detections = new List<ImageDetection>();
        bool first = true;
        foreach (var batch in new YoloDataLoader(dataset).Epoch(0))
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var _ = batch;
            using var noGrad = no_grad();
            var images = batch.Images.to(device);
            var (pred, raw) = predict(images);
            if (onRaw is not null && raw is not null) onRaw(raw, batch.Targets);
            var perImage = Nms.nonMaxSuppression(nms, pred);
            int h1 = (int)images.shape[2], w1 = (int)images.shape[3];
            if (options.PlotDirectory is { } plots && first)
                PlotFirstBatch(plots, batch, perImage, w1, h1, classNames ?? []);
            first = false;
            for (int i = 0; i < perImage.Length; i++)
            {
                var p = perImage[i];
                if (p is null) continue;
                var shape = batch.Shapes[i] ?? throw new InvalidOperationException($"{batch.Paths[i]}: no original size (evaluation needs an unaugmented dataset)");
                var rows = p.Value.cpu();
                var boxes = Boxes.scaleCoords(h1, w1, rows[TensorIndex.Colon, TensorIndex.Slice(0, 4)], shape.Height0, shape.Width0, null).round();
                var b = boxes.data<float>().ToArray();
                var r = rows.data<float>().ToArray();
                for (int k = 0; k < rows.shape[0]; k++)
                {
                    float x1 = b[4 * k], y1 = b[4 * k + 1], x2 = b[4 * k + 2], y2 = b[4 * k + 3];
                    detections.Add(new ImageDetection(batch.Indices[i], (long)r[6 * k + 5], x1, y1, x2 - x1, y2 - y1, r[6 * k + 4]));
                }
            }
        }
        return Result(dataset, detections, classNames, watch);
    }

    /// <summary>COCO's numbers, the per-class AP and yolov5's validation numbers of <paramref name="detections"/>
    /// (image ids: indices into <paramref name="dataset"/>) against the dataset's labels.</summary>
    static EvaluationResult Result(YoloDataset dataset, List<ImageDetection> detections, IReadOnlyList<string>? classNames, Stopwatch watch)
    {
        var gt = dataset.ToCocoGroundTruth(classNames);
        var detArray = detections.ToArray();
        var result = CocoEval.evaluate(gt, detArray.Select(d => d.ToCoco()).ToArray());
        var perClass = result.PerCategory.Select(c => new ClassAp(c.CategoryId, c.Name, c.Ap, c.Ap50)).ToArray();
        var names = classNames is { } n && n.Count == dataset.NumClasses
            ? n : Enumerable.Range(0, dataset.NumClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var validation = ValidationMetrics.FromCoco(names, gt, detArray.Select(d => d.ToCoco()));
        return new EvaluationResult(result.Stats, result.Summary, perClass, detArray, dataset.Count, watch.Elapsed) { Validation = validation };
    }
}
