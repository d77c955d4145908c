using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Detection;

/// <summary>
/// A model written by <see cref="YoloSpp.Export.OnnxExport"/>, run by ONNX Runtime on the CPU: images [batch, channels, height, width]
/// in, the decoded <c>prediction</c> [batch, rows, 5 + nc] out, as <see cref="DarkNetOutput.Detections"/>. The class
/// names, input size and cfg come from the model's metadata.
/// </summary>
public sealed class OnnxRuntimeNetwork : IDisposable
{
    // the contract of a YoloSpp ONNX model, which OnnxExport writes
    /// <summary>The input's name: images [batch, channels, height, width], RGB in [0, 1].</summary>
    public const string InputName = "images";
    /// <summary>The decoded output's name.</summary>
    public const string OutputName = "prediction";
    /// <summary>Metadata keys stored in the model (values are JSON, except the cfg text).</summary>
    public static class MetadataKeys
    {
        /// <summary>Class names, a JSON array.</summary>
        public const string Names = "names";
        /// <summary>Fixed input size as [height, width], or null for a dynamic one.</summary>
        public const string ImageSize = "img_size";
        /// <summary>The yolo heads' strides, a JSON array (rows come in this order).</summary>
        public const string Strides = "strides";
        /// <summary>Per head, its anchors in input pixels [[w, h], …].</summary>
        public const string Anchors = "anchors";
        /// <summary>The Darknet cfg the network was built from.</summary>
        public const string Cfg = "cfg";
        /// <summary>A line describing the output layout.</summary>
        public const string Layout = "layout";
        /// <summary>The image size the network was trained at, a JSON number, or null when not recorded.</summary>
        public const string TrainImageSize = "train_img_size";
        /// <summary>The confidence of the best mean F1 at the run's best epoch, a JSON number, or null when not recorded.</summary>
        public const string BestConfidence = "best_conf";
    }

    readonly InferenceSession _session;
    readonly RunOptions _run = new();
    readonly string[] _inputNames = [InputName];
    readonly string[] _outputNames = [OutputName];

    /// <summary>The model file.</summary>
    public string Path { get; }
    /// <summary>Class names (from the metadata).</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Number of classes.</summary>
    public int NumClasses => ClassNames.Count;
    /// <summary>Input channels.</summary>
    public int Channels { get; }
    /// <summary>The input size the graph fixes (height, width), or null when any multiple of 32 runs.</summary>
    public (int Height, int Width)? FixedImageSize { get; }
    /// <summary>The batch size the graph fixes, or null for a dynamic batch.</summary>
    public int? FixedBatchSize { get; }
    /// <summary>The Darknet cfg text the model was exported from (empty when the metadata lacks it).</summary>
    public string CfgText { get; }
    /// <summary>The image size the network was trained at (metadata <c>train_img_size</c>), or null when not recorded.</summary>
    public int? TrainedImageSize { get; }

    OnnxRuntimeNetwork(string path, InferenceSession session)
    {
        (Path, _session) = (path, session);
        if (!session.InputMetadata.TryGetValue(InputName, out var input) || input.Dimensions.Length != 4)
            throw new InvalidInputException(path, $"not a YoloSpp model: no 4-d input named '{InputName}'");
        if (!session.OutputMetadata.ContainsKey(OutputName))
            throw new InvalidInputException(path, $"not a YoloSpp model: no output named '{OutputName}'");
        var dims = input.Dimensions;
        Channels = dims[1];
        FixedBatchSize = dims[0] > 0 ? dims[0] : null;
        FixedImageSize = dims[2] > 0 && dims[3] > 0 ? (dims[2], dims[3]) : null;
        var meta = session.ModelMetadata.CustomMetadataMap;
        if (!meta.TryGetValue(MetadataKeys.Names, out var names))
            throw new InvalidInputException(path, $"not a YoloSpp model: the metadata has no '{MetadataKeys.Names}'");
        try { ClassNames = JsonSerializer.Deserialize<string[]>(names) ?? []; }
        catch (JsonException e) { throw new InvalidInputException(path, $"metadata '{MetadataKeys.Names}' is not a JSON list of strings: {e.Message}"); }
        CfgText = meta.TryGetValue(MetadataKeys.Cfg, out var cfg) ? cfg : "";
        if (meta.TryGetValue(MetadataKeys.TrainImageSize, out var trained) && int.TryParse(trained, out var size) && size > 0)
            TrainedImageSize = size;
        if (meta.TryGetValue(MetadataKeys.BestConfidence, out var best)
            && double.TryParse(best, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var conf) && conf is >= 0 and <= 1)
            BestConfidence = conf;
    }

    /// <summary>The confidence of the best mean F1 at the run's best epoch (metadata <c>best_conf</c>); null when not recorded.</summary>
    public double? BestConfidence { get; }

    /// <summary>Loads an exported model.</summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="threads">Intra-op threads; 0 (default): as many as TorchSharp uses.</param>
    /// <exception cref="InvalidInputException">The file is missing, not ONNX, or not a model <see cref="YoloSpp.Export.OnnxExport"/> wrote.</exception>
    public static OnnxRuntimeNetwork Load(string path, int threads = 0) => Load(path, threads, null, null);

    /// <summary>Loads an exported model to run on GPU <paramref name="cudaDevice"/> with ONNX Runtime's CUDA execution
    /// provider, which the <c>Microsoft.ML.OnnxRuntime.Gpu.Linux</c> (or <c>.Gpu.Windows</c>) package brings; where
    /// that provider or the GPU is missing, the model runs on the CPU and <paramref name="notice"/> says why.</summary>
    /// <exception cref="InvalidInputException">The file is missing, not ONNX, or not a model <see cref="YoloSpp.Export.OnnxExport"/> wrote.</exception>
    public static OnnxRuntimeNetwork Load(string path, int threads, int? cudaDevice, Action<string>? notice)
    {
        if (!File.Exists(path)) throw new InvalidInputException(path, "ONNX model not found");
        SessionOptions Options() => new()
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads > 0 ? threads : Math.Max(1, get_num_threads()),
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        InferenceSession? session = null;
        bool onGpu = false;
        if (cudaDevice is { } gpu)
        {
            using var cuda = Options();
            try
            {
                cuda.AppendExecutionProvider_CUDA(gpu);
                session = new InferenceSession(path, cuda);
                onGpu = true;
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException or TypeInitializationException)
            {
                notice?.Invoke($"ONNX Runtime's CUDA execution provider is not available here (the Microsoft.ML.OnnxRuntime.Gpu.Linux package brings it, with CUDA and cuDNN): {path} runs on the CPU ({e.Message.Split('\n')[0]})");
            }
        }
        if (session is null)
        {
            using var options = Options();
            try { session = new InferenceSession(path, options); }
            catch (OnnxRuntimeException e) { throw new InvalidInputException(path, $"ONNX Runtime cannot load it: {e.Message}"); }
        }
        try { return new OnnxRuntimeNetwork(path, session) { OnGpu = onGpu }; }
        catch { session.Dispose(); throw; }
    }

    /// <summary>Whether the model runs on a GPU (ONNX Runtime's CUDA execution provider).</summary>
    public bool OnGpu { get; private init; }

    /// <summary>Checks that a batch [batch, channels, height, width] fits the graph's fixed dimensions.</summary>
    /// <exception cref="ArgumentException">It does not; the message names the model and both shapes.</exception>
    public void CheckInput(long batch, long channels, long height, long width)
    {
        var fixedSize = FixedImageSize is { } s ? $"{s.Height}x{s.Width}" : "any size";
        if (channels != Channels || FixedImageSize is { } f && (f.Height != height || f.Width != width) || FixedBatchSize is { } b && b != batch)
            throw new ArgumentException(
                $"{Path}: input [{batch}, {channels}, {height}, {width}] does not fit the model's " +
                $"[{FixedBatchSize?.ToString() ?? "batch"}, {Channels}, {fixedSize}]; export it without --img-size (any size) " +
                "and with a dynamic batch, or feed the size it was exported for");
    }

    /// <summary>Runs a batch given as CHW float planes in [0, 1] (batch·channels·height·width values, used in place);
    /// returns the rows and the flat prediction.</summary>
    public (long Rows, float[] Prediction) Run(float[] images, int batch, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(images);
        CheckInput(batch, Channels, height, width);
        if (images.LongLength != (long)batch * Channels * height * width)
            throw new ArgumentException($"{images.Length} values for a batch [{batch}, {Channels}, {height}, {width}]", nameof(images));
        using var input = OrtValue.CreateTensorValueFromMemory(images, [batch, Channels, height, width]);
        using var outputs = _session.Run(_run, _inputNames, [input], _outputNames);
        var output = outputs[0];
        var shape = output.GetTensorTypeAndShape().Shape;
        return (shape[1], output.GetTensorDataAsSpan<float>().ToArray());
    }

    /// <summary>The decoded detections [batch, rows, 5 + nc] of images [batch, channels, height, width] (float32),
    /// as a CPU tensor.</summary>
    public Tensor Predict(Tensor images)
    {
        if (images.dim() != 4)
            throw new ArgumentException($"images must be [batch, {Channels}, height, width], got [{string.Join(", ", images.shape)}]", nameof(images));
        long bs = images.shape[0], c = images.shape[1], h = images.shape[2], w = images.shape[3];
        CheckInput(bs, c, h, w);
        using var cpu = images.to(ScalarType.Float32).cpu().contiguous();
        var (rows, prediction) = Run(cpu.data<float>().ToArray(), (int)bs, (int)h, (int)w);
        return tensor(prediction, [bs, rows, NumClasses + 5]);
    }

    /// <summary>Frees the ONNX Runtime session.</summary>
    public void Dispose()
    {
        _session.Dispose();
        _run.Dispose();
    }
}
