using System.Diagnostics;
using Microsoft.FSharp.Core;
using TorchSharp;
using YoloSpp.Data;
using YoloSpp.Geometry;
using YoloSpp.Model;
using YoloSpp.Platform;
using static TorchSharp.torch;

namespace YoloSpp.Detection;

/// <summary>Settings of a <see cref="Detector"/>; the defaults are the reference's predict_test.py (confidence 0.1,
/// IoU 0.6, multi-label; it then draws only the boxes scoring above 0.2, see <see cref="DrawThreshold"/>), at the
/// size the model was trained at.</summary>
public sealed record DetectorOptions
{
    /// <summary>Network input size (long side), a multiple of <see cref="DarkNet.GridStride"/>. Default null: the size
    /// a checkpoint was trained at (<see cref="CheckpointInfo.ImageSize"/>), else 512 (predict_test.py's).</summary>
    public int? ImageSize { get; init; }
    /// <summary>Objectness and class-confidence threshold of NMS (predict_test.py's conf_thres). Default 0.1.</summary>
    public double ConfThreshold { get; init; } = 0.1;
    /// <summary>The score a detection must exceed to be drawn by <see cref="Detector.Annotate"/>, as the reference's
    /// predict draws (draw_objs' box_thresh, as predict_test.py calls it). Default 0.2. Detections are still returned
    /// from <see cref="ConfThreshold"/> on.</summary>
    public double DrawThreshold { get; init; } = 0.2;
    /// <summary>IoU threshold of NMS. Default 0.6.</summary>
    public double IouThreshold { get; init; } = 0.6;
    /// <summary>Every (box, class) pair above the threshold (the reference's predict), or only the best class per box. Default true.</summary>
    public bool MultiLabel { get; init; } = true;
    /// <summary>Boxes kept per image after NMS. Default 100.</summary>
    public int MaxDetections { get; init; } = 100;
    /// <summary>Merge-NMS: each kept box becomes the score-weighted mean of the boxes it suppressed (the reference's
    /// <c>merge</c> option). Default false, as there.</summary>
    public bool Merge { get; init; }
    /// <summary>Device to run on: "auto" (default: CUDA when available, else the CPU), "cpu", "cuda" or "cuda:N" (an
    /// explicit CUDA device falls back to the CPU with a notice when absent).</summary>
    public string Device { get; init; } = YoloSpp.Platform.Backend.AutoDevice;
    /// <summary>Use the confidence of the best mean F1 the training run recorded (its checkpoint, or the ONNX model
    /// exported from it) as <see cref="ConfThreshold"/> and <see cref="DrawThreshold"/>: the threshold to deploy at.
    /// A model without the record is refused. Default false.</summary>
    public bool UseBestConfidence { get; init; }
    /// <summary>Keep only these class indices (yolov5's <c>--classes 0 2</c>); null: every class.</summary>
    public IReadOnlyList<int>? Classes { get; init; }
    /// <summary>One NMS over all classes (yolov5's <c>--agnostic-nms</c>): a box suppresses overlapping boxes of other
    /// classes too. Default false.</summary>
    public bool AgnosticNms { get; init; }
    /// <summary>Sliced inference for small objects in large images (as SAHI): the image is cut into tiles of this many
    /// pixels a side, overlapping by <see cref="SliceOverlap"/>, each letterboxed to the input size; the tiles (and,
    /// with <see cref="SliceWholeImage"/>, the whole image) run as batches and their detections are mapped back and
    /// merged (<see cref="SliceMerge"/>). Null (default): the whole image at once.</summary>
    public int? Slice { get; init; }
    /// <summary>How much neighbouring tiles overlap, a fraction of the tile side in [0, 1). Default 0.2.</summary>
    public double SliceOverlap { get; init; } = 0.2;
    /// <summary>Also detect on the whole image (letterboxed to the input size), for the large objects a tile cuts.
    /// Default true.</summary>
    public bool SliceWholeImage { get; init; } = true;
    /// <summary>How the tiles' detections are merged: NMS (default) or SAHI's greedy non-maximum merging.</summary>
    public SliceMerge SliceMerge { get; init; } = SliceMerge.Nms;
    /// <summary>How boxes match when merging: intersection over the smaller box (default) or IoU.</summary>
    public SliceMatch SliceMatch { get; init; } = SliceMatch.Ios;
    /// <summary>The merge's match threshold: boxes whose <see cref="SliceMatch"/> is above it match. Default 0.5, SAHI's.</summary>
    public double SliceMatchThreshold { get; init; } = 0.5;

    /// <summary>Checks the image size when one is given (a positive multiple of <see cref="DarkNet.GridStride"/>), the thresholds (each
    /// in [0, 1]) and the detection cap; throws <see cref="ArgumentException"/> naming the option.</summary>
    public void Validate()
    {
        if (ImageSize is { } size) DarkNet.CheckImageSize(size, "--img-size");
        Thresholds.Check(ConfThreshold, IouThreshold, MaxDetections);
        if (!(DrawThreshold >= 0 && DrawThreshold <= 1)) throw new ArgumentException($"--draw-threshold {DrawThreshold} must be in [0, 1]");
        if (Classes?.FirstOrDefault(k => k < 0, 0) is int bad && bad < 0) throw new ArgumentException($"--classes {bad}: class indices are >= 0");
        if (Slice is < 1) throw new ArgumentException($"--slice {Slice} must be a tile side in pixels >= 1");
        if (!(SliceOverlap >= 0 && SliceOverlap < 1)) throw new ArgumentException($"--overlap {SliceOverlap} must be in [0, 1)");
        if (!(SliceMatchThreshold >= 0 && SliceMatchThreshold <= 1)) throw new ArgumentException($"slice match threshold {SliceMatchThreshold} must be in [0, 1]");
    }

    /// <summary>Checks <see cref="Classes"/> against the model's class count.</summary>
    internal void CheckClasses(int numClasses)
    {
        if (Classes?.FirstOrDefault(k => k >= numClasses, -1) is { } k && k >= 0)
            throw new ArgumentException($"--classes {k}: the model has {numClasses} classes (0..{numClasses - 1})");
    }
}

/// <summary>The NMS settings every inference path checks alike.</summary>
internal static class Thresholds
{
    /// <summary>Throws <see cref="ArgumentException"/> unless both thresholds are in [0, 1] and at least one detection is kept.</summary>
    public static void Check(double conf, double iou, int maxDetections)
    {
        // written so that NaN fails too
        if (!(conf >= 0 && conf <= 1)) throw new ArgumentException($"--conf {conf} must be in [0, 1] (a score threshold)");
        if (!(iou >= 0 && iou <= 1)) throw new ArgumentException($"--iou {iou} must be in [0, 1] (an IoU threshold)");
        if (maxDetections < 1) throw new ArgumentException($"max detections {maxDetections} must be >= 1");
    }
}

/// <summary>One detected object, in pixels of the original image.</summary>
/// <param name="ClassId">0-based class index.</param>
/// <param name="ClassName">Name of the class (from the .names file).</param>
/// <param name="Confidence">Objectness × class probability.</param>
/// <param name="X1">Left edge.</param>
/// <param name="Y1">Top edge.</param>
/// <param name="X2">Right edge.</param>
/// <param name="Y2">Bottom edge.</param>
public sealed record Detection(int ClassId, string ClassName, double Confidence, double X1, double Y1, double X2, double Y2);

/// <summary>The detections of one image with the time each stage took (as the reference's predict prints them).</summary>
/// <param name="Detections">Objects found, by descending confidence within each class.</param>
/// <param name="Width">Original image width.</param>
/// <param name="Height">Original image height.</param>
/// <param name="Preprocess">Decoding (for a file), letterbox and conversion to a tensor.</param>
/// <param name="Inference">The forward pass.</param>
/// <param name="Nms">Non-maximum suppression and the mapping back to the original image.</param>
public sealed record DetectionResult(IReadOnlyList<Detection> Detections, int Width, int Height,
    TimeSpan Preprocess, TimeSpan Inference, TimeSpan Nms);

/// <summary>
/// The reference's predict: letterbox (img_utils variant, auto = true: the long side to the input size, the short
/// side padded with black to a multiple of 64), a forward pass of the BatchNorm-fused network in eval mode, NMS,
/// and scale_coords back to the original image with the letterbox's ratio and padding, rounded.
/// </summary>
public sealed partial class Detector : IDisposable
{
    readonly InferenceNetwork _model;
    readonly Nms.NmsOptions _nms;
    readonly Device _device;
    bool _disposed;

    /// <summary>The class names, index = class id.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>The options the detector was loaded with.</summary>
    public DetectorOptions Options { get; }
    /// <summary>The input size (long side) images are letterboxed to: <see cref="DetectorOptions.ImageSize"/>, else the
    /// checkpoint's training size, else 512.</summary>
    public int ImageSize { get; }

    /// <summary>What runs the network.</summary>
    public InferenceBackend Backend { get; }

    Detector(InferenceNetwork model, IReadOnlyList<string> names, DetectorOptions options, int imageSize, InferenceBackend backend)
    {
        (_model, ClassNames, Options, ImageSize, _device, Backend) = (model, names, options, imageSize, model.Device, backend);
        var d = Nms.NmsOptions.Default;
        options.CheckClasses(names.Count);
        var classes = options.Classes is { } c ? FSharpOption<int[]>.Some(c.ToArray()) : d.Classes;
        _nms = new Nms.NmsOptions(options.ConfThreshold, options.IouThreshold, options.MultiLabel, options.MaxDetections,
            d.MinWh, d.MaxWh, classes, options.AgnosticNms, options.Merge);
    }

    /// <summary>Loads a checkpoint written by training: it carries its cfg, class names and image size.</summary>
    /// <param name="weightsPath">A .ckpt file (last.ckpt, best.ckpt).</param>
    /// <param name="options">Thresholds, device, and an input size other than the checkpoint's; default <see cref="DetectorOptions"/>.</param>
    /// <param name="notice">Receives one-line notices (an override that differs from the checkpoint, a CUDA fallback).</param>
    /// <exception cref="InvalidInputException">The file is missing, not a checkpoint, or records no class names (an
    /// older checkpoint: use the overload with a .names file).</exception>
    public static Detector Load(string weightsPath, DetectorOptions? options = null, Action<string>? notice = null) =>
        Load(null, weightsPath, null, options, notice);

    /// <summary>Builds the network, loads every tensor of a weights file and fuses it for inference; or, with
    /// <see cref="InferenceBackend.OnnxRuntime"/>, loads a model <see cref="YoloSpp.Export.OnnxExport"/> wrote.</summary>
    /// <param name="cfgPath">Darknet cfg file or built-in topology name; null for a .ckpt (it carries its cfg) and for
    /// ONNX Runtime (the model carries it). Given for a .ckpt, it overrides the checkpoint's (with a notice when it differs).</param>
    /// <param name="weightsPath">A .ckpt, or .weights, .pt/.pth, .safetensors holding every tensor of the cfg's
    /// network; the .onnx model for ONNX Runtime.</param>
    /// <param name="namesPath">.names file: one class a line, as many as the network's classes; null for a .ckpt
    /// that records its names and for ONNX Runtime (the model carries them).</param>
    /// <param name="options">Input size, thresholds, device; default <see cref="DetectorOptions"/>.</param>
    /// <param name="notice">Receives notices such as a CUDA fallback or an override that differs from the checkpoint (optional).</param>
    /// <param name="backend">TorchSharp (default) or ONNX Runtime. Pre-processing, NMS and scale_coords are the same.</param>
    /// <exception cref="InvalidInputException">The cfg or weights file is missing, or weights other than a .ckpt come without a cfg.</exception>
    /// <exception cref="InvalidInputException">The cfg is malformed.</exception>
    /// <exception cref="InvalidInputException">The .names file is missing, empty or has another class count than the
    /// network, or no class names are known (neither a .names file nor the checkpoint's record).</exception>
    /// <exception cref="InvalidInputException">The weights do not fit the cfg.</exception>
    /// <exception cref="ArgumentException">The image size is not a positive multiple of <see cref="DarkNet.GridStride"/>.</exception>
    public static Detector Load(string? cfgPath, string weightsPath, string? namesPath, DetectorOptions? options = null,
        Action<string>? notice = null, InferenceBackend backend = InferenceBackend.TorchSharp)
    {
        options ??= new DetectorOptions();
        options.Validate();
        YoloSpp.Platform.Backend.Initialize();
        if (backend == InferenceBackend.OnnxRuntime)
        {
            var onnx = InferenceNetwork.LoadOnnx(cfgPath, weightsPath, OnnxCudaDevice(options.Device), notice);
            try
            {
                string[] names = namesPath is not null ? DataFiles.ReadNames(namesPath) : onnx.EmbeddedNames!.ToArray();
                if (names.Length != onnx.NumClasses)
                    throw new InvalidInputException(namesPath!, $"{names.Length} class names but {weightsPath} has {onnx.NumClasses} classes");
                if (onnx.FixedImageSize is { } f)
                    notice?.Invoke($"{weightsPath} has a fixed {f.Height}x{f.Width} input: images are letterboxed to it (no minimal rectangle)");
                options = WithBestConfidence(options, onnx.BestConfidence, weightsPath, notice);
                return new Detector(onnx, names, options, options.ImageSize ?? onnx.TrainedImageSize ?? TrainedModel.DefaultImageSize, backend);
            }
            catch
            {
                onnx.Dispose();
                throw;
            }
        }
        var trained = TrainedModel.Open(weightsPath, cfgPath, namesPath, options.ImageSize, notice);
        var classNames = trained.RequireClassNames();
        options = WithBestConfidence(options, trained.Checkpoint?.BestConfidence, weightsPath, notice);
        if (trained.ImageSizeNotice is { } n) notice?.Invoke(n);
        var device = YoloSpp.Platform.Backend.ResolveDevice(options.Device, notice);
        var model = InferenceNetwork.FromTrained(trained, device, fuse: true);
        return new Detector(model, classNames, options, trained.ImageSize, backend);
    }

    /// <summary>The GPU an ONNX Runtime model is asked to run on: N for "cuda:N", 0 for "cuda"; null for the CPU
    /// and "auto" (ONNX Runtime's CPU build is the one this package brings).</summary>
    internal static int? OnnxCudaDevice(string device)
    {
        if (!device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase)) return null;
        var colon = device.IndexOf(':');
        return colon < 0 ? 0
            : int.TryParse(device.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n
            : throw new ArgumentException($"--device {device}: expected cpu, cuda or cuda:N");
    }

    static DetectorOptions WithBestConfidence(DetectorOptions options, double? best, string weightsPath, Action<string>? notice)
    {
        if (!options.UseBestConfidence) return options;
        if (best is not { } conf)
            throw new InvalidInputException(weightsPath, "records no best confidence (a checkpoint of a run that evaluated an epoch, or a model exported from one, does): give --conf a number");
        notice?.Invoke(conf > 0
            ? $"confidence threshold {conf:0.000}: the best mean F1 of the run that trained {weightsPath}"
            : $"confidence threshold 0: the run that trained {weightsPath} found no object at any confidence (its best mean F1 is 0), so every box is kept; train longer or give --conf a number");
        return options with { ConfThreshold = conf, DrawThreshold = conf };
    }

    /// <summary>Detects objects in an image file.</summary>
    /// <exception cref="InvalidInputException">The file is not a readable image.</exception>
    public IReadOnlyList<Detection> Detect(string imagePath) => DetectWithTimings(imagePath).Detections;

    /// <summary>Detects objects in an RGB image.</summary>
    public IReadOnlyList<Detection> Detect(RgbImage image) => DetectWithTimings(image).Detections;

    /// <summary>Detects objects in an image file and reports the time of each stage (decoding counts as pre-processing).</summary>
    /// <exception cref="InvalidInputException">The file is not a readable image.</exception>
    public DetectionResult DetectWithTimings(string imagePath)
    {
        var watch = Stopwatch.StartNew();
        var image = RgbImage.Load(imagePath);
        return Run(image, watch);
    }

    /// <summary>Detects objects in an RGB image and reports the time of each stage.</summary>
    public DetectionResult DetectWithTimings(RgbImage image) => Run(image, Stopwatch.StartNew());

    /// <summary>Detects objects in an image file, draws those scoring above <see cref="DetectorOptions.DrawThreshold"/>
    /// (see <see cref="Annotator"/>; as the reference's predict) and writes the picture to <paramref name="outputPath"/>
    /// (PNG for .png, else JPEG).</summary>
    /// <returns>The detections drawn.</returns>
    public IReadOnlyList<Detection> Annotate(string imagePath, string outputPath)
    {
        var image = RgbImage.Load(imagePath);
        var drawn = Drawn(Detect(image));
        Annotator.Save(image, drawn, outputPath);
        return drawn;
    }

    /// <summary>The detections <see cref="Annotate"/> draws: those whose confidence exceeds <see cref="DetectorOptions.DrawThreshold"/>
    /// (draw_objs' <c>scores &gt; box_thresh</c>).</summary>
    public IReadOnlyList<Detection> Drawn(IEnumerable<Detection> detections) =>
        detections.Where(d => d.Confidence > Options.DrawThreshold).ToArray();

    DetectionResult Run(RgbImage image, Stopwatch watch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Options.Slice is { } tile) return RunSliced(image, tile, watch);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // a model with a fixed input takes the letterbox to exactly that size (auto = false, as load_onnx_test.py)
        var (th, tw) = _model.FixedImageSize ?? (ImageSize, ImageSize);
        var options = new Letterbox.Options(Letterbox.Variant.ImgUtils, _model.FixedImageSize is null, false, true);
        var plan = Letterbox.plan(options, image.Height, image.Width, th, tw);
        // the reference's predict pads with black (color=(0, 0, 0)), not the dataset's grey 114
        var boxed = image.Letterboxed(plan, 0);
        var input = boxed.ToTensor().to(_device);
        var preprocess = watch.Elapsed;

        var pred = _model.Predict(input);
        if (_device.type == DeviceType.CUDA) cuda.synchronize(_device);
        var inference = watch.Elapsed;

        var perImage = Nms.nonMaxSuppression(_nms, pred);
        var detections = new List<Detection>();
        if (perImage[0] is { } kept)
        {
            var rows = kept.Value.cpu();
            var ratioPad = new Boxes.RatioPad(plan.RatioW, plan.PadW, plan.PadH);
            var boxes = Boxes.scaleCoords(boxed.Height, boxed.Width, rows[TensorIndex.Colon, TensorIndex.Slice(0, 4)],
                image.Height, image.Width, FSharpOption<Boxes.RatioPad>.Some(ratioPad)).round();
            var b = boxes.data<float>().ToArray();
            var r = rows.data<float>().ToArray();
            for (int k = 0; k < rows.shape[0]; k++)
            {
                int cls = (int)r[6 * k + 5];
                detections.Add(new Detection(cls, ClassNames[cls], r[6 * k + 4], b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]));
            }
        }
        var nms = watch.Elapsed;
        return new DetectionResult(detections, image.Width, image.Height, preprocess, inference - preprocess, nms - inference);
    }

    /// <summary>Frees the network.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _model.Dispose();
    }
}
