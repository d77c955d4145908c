using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using YoloSpp.Detection;
using YoloSpp.Data;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Export;

/// <summary>
/// Settings of an int8 export (<see cref="OnnxExportOptions.Int8"/>): static quantization in ONNX's QDQ form, which
/// ONNX Runtime runs with its integer kernels (QLinearConv and friends; u8s8, VNNI where the CPU has it).
/// Weights are int8, symmetric, one scale per output channel; activations are uint8 with one scale and zero point per
/// tensor, from the minimum and maximum each tensor takes over the calibration images (the input's are fixed: 1/255,
/// 0, exact for 8-bit images). The yolo heads' linear convs stay float32, so the boxes' exp keeps its precision.
/// </summary>
public sealed record OnnxInt8Options
{
    /// <summary>Calibration batches [n, channels, height, width], float32 in [0, 1] as the network sees them
    /// (letterboxed RGB / 255): a few dozen images of the training data are typical.</summary>
    public required IReadOnlyList<Tensor> Calibration { get; init; }
    /// <summary>7-bit weights (−64…63) instead of 8-bit, for CPUs without VNNI (AVX2, AVX-512 before VNNI), where ONNX
    /// Runtime's u8s8 kernels add pairs of products in 16 bits and can saturate.</summary>
    public bool ReduceRange { get; init; }

    /// <summary>Calibration images as one batch [n, 3, height, width]: <paramref name="count"/> images spread evenly
    /// over <paramref name="source"/>, letterboxed to height × width as <see cref="Detection.Detector"/> does (black
    /// padding), RGB / 255. The caller owns (disposes) the tensor.</summary>
    /// <param name="source">A .data file or data.yaml (its train list), an image list file, a folder of images or one image.</param>
    /// <param name="height">Letterbox height, a multiple of 32.</param>
    /// <param name="width">Letterbox width, a multiple of 32.</param>
    /// <param name="count">Images to take (all when the source has fewer).</param>
    /// <exception cref="InvalidInputException">The source, a list line or an image cannot be read.</exception>
    public static Tensor LoadCalibrationImages(string source, int height, int width, int count = 64)
    {
        ArgumentNullException.ThrowIfNull(source);
        DarkNet.CheckImageSize(height, "calibration height");
        DarkNet.CheckImageSize(width, "calibration width");
        if (count <= 0) throw new ArgumentException($"calibration image count {count} must be positive", nameof(count));
        var list = (source.EndsWith(".data", StringComparison.OrdinalIgnoreCase) || Data.DataConfig.isYaml(source)) && File.Exists(source)
            ? Data.DataFiles.ReadData(source).Train : source;
        var errors = new List<InputError>();
        var images = File.Exists(list) && Data.Labels.isImagePath(list) ? [list] : Data.LabelScan.ResolveImages(list, errors, []);
        if (errors.Count > 0) throw new InvalidInputException(errors);
        int n = Math.Min(count, images.Count);
        var options = new Data.Letterbox.Options(Data.Letterbox.Variant.ImgUtils, false, false, true);
        var batch = new Tensor[n];
        try
        {
            for (int k = 0; k < n; k++)
            {
                var path = images[(int)((long)k * images.Count / n)];
                var image = Data.RgbImage.Load(path);
                var plan = Data.Letterbox.plan(options, image.Height, image.Width, height, width);
                batch[k] = image.Letterboxed(plan, 0).ToTensor();
            }
            return cat(batch, 0);
        }
        finally { foreach (var t in batch) t?.Dispose(); }
    }
}

public static partial class OnnxExport
{
    /// <summary>The lowest opset an int8 export writes (per-channel DequantizeLinear).</summary>
    public const int MinInt8Opset = 13;

    /// <summary>Each quantized tensor's range (minimum and maximum, both including 0) over the calibration batches,
    /// from ONNX Runtime running the float32 graph with those tensors as extra outputs.</summary>
    static Dictionary<string, (float Min, float Max)> Calibrate(DarkNet net, OnnxExportOptions options, OnnxInt8Options int8)
    {
        if (int8.Calibration is not { Count: > 0 } batches)
            throw new ArgumentException("int8 export needs at least one calibration batch", nameof(options));
        var quantizer = Quantizer.Calibrating();
        var g = new GraphWriter(options with { DynamicBatch = true }, net.Config.Channels, quantizer);
        WriteNetwork(g, net, options, HeadGrids(net, options));
        foreach (var t in quantizer.Observed) g.ValueOutput(t);
        var bytes = g.ToModel(new Dictionary<string, string>()).ToByteArray();
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC,
            IntraOpNumThreads = Math.Max(1, get_num_threads()),
            InterOpNumThreads = 1,
        };
        using var session = new InferenceSession(bytes, sessionOptions);
        var names = quantizer.Observed.ToArray();
        var ranges = names.ToDictionary(n => n, _ => (Min: 0f, Max: 0f));
        using var run = new RunOptions();
        for (int b = 0; b < batches.Count; b++)
        {
            var batch = batches[b];
            if (batch.dim() != 4 || batch.shape[1] != net.Config.Channels || batch.shape[0] == 0)
                throw new ArgumentException($"calibration batch {b} is [{string.Join(", ", batch.shape)}], not [n, {net.Config.Channels}, height, width]", nameof(options));
            long h = batch.shape[2], w = batch.shape[3];
            if (options.ImageSize is { } s ? s.Height != h || s.Width != w : h % DarkNet.GridStride != 0 || w % DarkNet.GridStride != 0)
                throw new ArgumentException($"calibration batch {b} is {h}x{w}: " + (options.ImageSize is { } f
                    ? $"the export fixes {f.Height}x{f.Width}" : $"height and width must be multiples of {DarkNet.GridStride}"), nameof(options));
            // one image at a time: every intermediate tensor comes back
            for (long i = 0; i < batch.shape[0]; i++)
            {
                using var cpu = batch[i].unsqueeze(0).detach().to(ScalarType.Float32).cpu().contiguous();
                using var input = OrtValue.CreateTensorValueFromMemory(cpu.data<float>().ToArray(), cpu.shape);
                using var outputs = session.Run(run, [OnnxRuntimeNetwork.InputName], [input], names);
                for (int k = 0; k < names.Length; k++)
                {
                    var (lo, hi) = MinMax(outputs[k].GetTensorDataAsSpan<float>());
                    var r = ranges[names[k]];
                    ranges[names[k]] = (Math.Min(r.Min, lo), Math.Max(r.Max, hi));
                }
            }
        }
        foreach (var (n, (lo, hi)) in ranges)
            if (!float.IsFinite(lo) || !float.IsFinite(hi))
                throw new ArgumentException($"calibration: tensor {n} takes non-finite values ({lo} to {hi}): the weights are not usable", nameof(options));
        return ranges;
    }

    static (float Min, float Max) MinMax(ReadOnlySpan<float> v)
    {
        float lo = 0, hi = 0;
        foreach (var x in v)
        {
            if (x < lo) lo = x;
            if (x > hi) hi = x;
            if (float.IsNaN(x)) return (float.NaN, float.NaN);
        }
        return (lo, hi);
    }

    /// <summary>
    /// Where the graph writer puts quantization: in calibration mode it only records the tensors that will be
    /// quantized; with ranges it writes QuantizeLinear → DequantizeLinear after each of them and int8 weights (with
    /// int32 biases) before each conv, the pattern ONNX Runtime's QDQ transformers fuse into integer kernels.
    /// </summary>
    sealed class Quantizer
    {
        readonly IReadOnlyDictionary<string, (float Min, float Max)>? _ranges;
        readonly bool _reduceRange;
        readonly List<string> _observed = [];
        // the tensors that carry uint8-representable values (DequantizeLinear outputs), with their scale and zero point
        readonly Dictionary<string, (float Scale, byte Zero)> _params = [];
        // float tensor → its quantized version, so that several consumers share one QuantizeLinear
        readonly Dictionary<string, string> _dequantized = [];

        Quantizer(IReadOnlyDictionary<string, (float Min, float Max)>? ranges, bool reduceRange) =>
            (_ranges, _reduceRange) = (ranges, reduceRange);

        public static Quantizer Calibrating() => new(null, false);
        public static Quantizer Quantizing(IReadOnlyDictionary<string, (float Min, float Max)> ranges, bool reduceRange) => new(ranges, reduceRange);

        /// <summary>Tensors to calibrate, in graph order.</summary>
        public IReadOnlyList<string> Observed => _observed;

        /// <summary>The network's input: [0, 1] at 1/255, zero point 0.</summary>
        public string Input(GraphWriter g, string x) => Emit(g, x, (1f / 255f, 0));

        /// <summary>Quantizes <paramref name="x"/> with its calibrated range, or (<paramref name="sameAs"/>) with the
        /// parameters of the quantized tensor an order-preserving op (MaxPool, Resize) produced it from.</summary>
        public string Activation(GraphWriter g, string x, string? sameAs = null)
        {
            if (sameAs is not null) return Emit(g, x, _params[sameAs]);
            if (_ranges is null) { _observed.Add(x); return Emit(g, x, default); }
            return Emit(g, x, FromRange(_ranges[x]));
        }

        /// <summary><paramref name="x"/> itself when it is already quantized, else its quantized version.</summary>
        public string Ensure(GraphWriter g, string x) =>
            _params.ContainsKey(x) ? x : _dequantized.TryGetValue(x, out var y) ? y : Activation(g, x);

        static (float Scale, byte Zero) FromRange((float Min, float Max) r)
        {
            float lo = Math.Min(r.Min, 0f), hi = Math.Max(r.Max, 0f);
            if (hi - lo < 1e-12f) return (1f, 0);
            float scale = (hi - lo) / 255f;
            return (scale, (byte)Math.Clamp(MathF.Round(-lo / scale), 0f, 255f));
        }

        string Emit(GraphWriter g, string x, (float Scale, byte Zero) q)
        {
            if (_ranges is null) { _params[x] = q; return x; }
            var scale = g.Floats($"{x}.scale", [q.Scale], []);
            var zero = g.Bytes($"{x}.zero_point", TensorProto.Types.DataType.Uint8, [q.Zero], []);
            var quantized = g.Node("QuantizeLinear", [x, scale, zero], $"{x}.quantize");
            var y = g.Node("DequantizeLinear", [quantized, scale, zero], $"{x}.dequantize");
            _params[y] = q;
            _dequantized[x] = y;
            return y;
        }

        /// <summary>The inputs of a conv: in calibration mode the float weights; with ranges int8 weights (per output
        /// channel) and an int32 bias at the input's scale × each weight scale, both dequantized.</summary>
        public string[] ConvInputs(GraphWriter g, string p, string x, Tensor weight, Tensor bias)
        {
            if (_ranges is null) return [x, g.Weight($"{p}.Conv2d.weight", weight), g.Weight($"{p}.Conv2d.bias", bias)];
            float sx = _params[x].Scale;
            using var wc = weight.detach().cpu().to(ScalarType.Float32).contiguous();
            using var bc = bias.detach().cpu().to(ScalarType.Float32).contiguous();
            var w = wc.data<float>().ToArray();
            var b = bc.data<float>().ToArray();
            int oc = (int)wc.shape[0], per = w.Length / oc;
            float qmax = _reduceRange ? 63f : 127f;
            var wq = new sbyte[w.Length];
            var sw = new float[oc];
            var sb = new float[oc];
            var bq = new int[oc];
            for (int c = 0; c < oc; c++)
            {
                float m = 0;
                for (int k = 0; k < per; k++) m = Math.Max(m, Math.Abs(w[c * per + k]));
                sw[c] = m > 0 ? m / qmax : 1f;
                for (int k = 0; k < per; k++)
                    wq[c * per + k] = (sbyte)Math.Clamp(MathF.Round(w[c * per + k] / sw[c]), -qmax - 1, qmax);
                sb[c] = sx * sw[c];
                bq[c] = (int)Math.Clamp(Math.Round((double)b[c] / sb[c]), int.MinValue, int.MaxValue);
            }
            var axis = Attr.Int("axis", 0);
            var wdq = g.Node("DequantizeLinear",
                [g.Bytes($"{p}.Conv2d.weight_quantized", TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(wq.AsSpan()), wc.shape),
                 g.Floats($"{p}.Conv2d.weight_scale", sw, [oc]),
                 g.Bytes($"{p}.Conv2d.weight_zero_point", TensorProto.Types.DataType.Int8, new byte[oc], [oc])],
                $"{p}.Conv2d.weight_dequantize", axis);
            var bdq = g.Node("DequantizeLinear",
                [g.Bytes($"{p}.Conv2d.bias_quantized", TensorProto.Types.DataType.Int32, MemoryMarshal.AsBytes(bq.AsSpan()), [oc]),
                 g.Floats($"{p}.Conv2d.bias_scale", sb, [oc]),
                 g.Bytes($"{p}.Conv2d.bias_zero_point", TensorProto.Types.DataType.Int32, new byte[4 * oc], [oc])],
                $"{p}.Conv2d.bias_dequantize", axis);
            return [x, wdq, bdq];
        }
    }
}
