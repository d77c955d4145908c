using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace YoloSpp.Platform;

/// <summary>One shape of <see cref="OnnxInt8Check"/>: a conv [cin → cout, k×k, stride] on an h×w input.</summary>
public sealed record Int8ConvShape(int InChannels, int OutChannels, int Kernel, int Stride, int Height, int Width)
{
    /// <summary>"cin->cout kxk/s hxw".</summary>
    public override string ToString() => $"{InChannels}->{OutChannels} {Kernel}x{Kernel}/{Stride} {Height}x{Width}";
}

/// <summary>The outcome of one shape: uint8 outputs that differ from the exact computation, and by how much.</summary>
public sealed record Int8ConvResult(Int8ConvShape Shape, int Elements, int Mismatches, int WorstSteps)
{
    /// <summary>Every output within one quantization step (the requantization's float rounding) and at most 1 %
    /// of them off by one.</summary>
    public bool Ok => WorstSteps <= 1 && Mismatches * 100 <= Elements;
}

/// <summary>
/// Checks ONNX Runtime's int8 convolution kernels on this CPU the way the convolution guard checks libtorch's: a
/// DequantizeLinear → Conv → QuantizeLinear graph, which ONNX Runtime fuses into QLinearConv (u8 activations, s8
/// weights per channel, s32 bias), on odd shapes with activations over the whole uint8 range, against the exact
/// integer sums requantized here. Kernels that add pairs of u8·s8 products in 16 bits (AVX2, AVX-512 before VNNI)
/// saturate on full-range weights; 7-bit weights (the int8 export's <c>OnnxInt8Options.ReduceRange</c>) keep them exact.
/// </summary>
public static class OnnxInt8Check
{
    /// <summary>The shapes checked: odd sizes, 1×1 and 3×3, strides 1 and 2, channel counts that are and are not
    /// multiples of the kernels' blocks.</summary>
    public static IReadOnlyList<Int8ConvShape> Shapes { get; } =
    [
        new(3, 16, 3, 1, 13, 17), new(16, 24, 3, 2, 15, 9), new(24, 8, 1, 1, 7, 11), new(64, 32, 3, 1, 9, 13),
        new(32, 64, 3, 2, 10, 7), new(128, 96, 1, 1, 5, 6), new(96, 40, 3, 1, 6, 5), new(256, 128, 3, 1, 4, 4),
    ];

    /// <summary>Runs every shape with full-range (±127) or, with <paramref name="reduceRange"/>, 7-bit (−64…63)
    /// weights.</summary>
    public static IReadOnlyList<Int8ConvResult> Run(bool reduceRange, int threads = 0) =>
        Shapes.Select((s, i) => Check(s, reduceRange, 1000 + i, threads)).ToArray();

    static Int8ConvResult Check(Int8ConvShape s, bool reduceRange, int seed, int threads)
    {
        var rng = new Random(seed);
        int k = s.Kernel, pad = k / 2, cin = s.InChannels, cout = s.OutChannels;
        int oh = (s.Height + 2 * pad - k) / s.Stride + 1, ow = (s.Width + 2 * pad - k) / s.Stride + 1;
        int wmax = reduceRange ? 63 : 127;
        var x = new byte[cin * s.Height * s.Width];
        for (int i = 0; i < x.Length; i++) x[i] = (byte)rng.Next(256);
        // a tenth of the weights at the extremes, where 16-bit pair sums overflow first
        var w = new sbyte[cout * cin * k * k];
        for (int i = 0; i < w.Length; i++)
            w[i] = (sbyte)(rng.Next(10) == 0 ? (rng.Next(2) == 0 ? -wmax - 1 : wmax) : rng.Next(-wmax - 1, wmax + 1));
        const float sx = 0.02f;
        const byte zx = 17;
        var sw = new float[cout];
        var bias = new int[cout];
        for (int o = 0; o < cout; o++) { sw[o] = 0.001f * (1 + rng.Next(9)); bias[o] = rng.Next(-20000, 20000); }
        // the exact sums, over the zero-padded input (padding holds the zero point: real value 0)
        var acc = new long[cout * oh * ow];
        for (int o = 0; o < cout; o++)
            for (int y = 0; y < oh; y++)
                for (int xo = 0; xo < ow; xo++)
                {
                    long sum = bias[o];
                    for (int c = 0; c < cin; c++)
                        for (int dy = 0; dy < k; dy++)
                        {
                            int iy = y * s.Stride + dy - pad;
                            if (iy < 0 || iy >= s.Height) continue;
                            for (int dx = 0; dx < k; dx++)
                            {
                                int ix = xo * s.Stride + dx - pad;
                                if (ix < 0 || ix >= s.Width) continue;
                                sum += (long)(x[(c * s.Height + iy) * s.Width + ix] - zx) * w[((o * cin + c) * k + dy) * k + dx];
                            }
                        }
                    acc[(o * oh + y) * ow + xo] = sum;
                }
        // the output's scale spreads the real outputs' range over the uint8 steps
        var real = acc.Select((a, i) => a * (double)(sx * sw[i / (oh * ow)])).ToArray();
        double rmin = Math.Min(0, real.Min()), rmax = Math.Max(0, real.Max());
        float sy = (float)((rmax - rmin) / 255);
        var zy = (byte)Math.Clamp(Math.Round(-rmin / sy), 0, 255);

        var got = RunOnnx(s, x, w, sx, zx, sw, bias, sy, zy, oh, ow, threads);
        int mismatches = 0, worst = 0;
        for (int i = 0; i < acc.Length; i++)
        {
            int o = i / (oh * ow);
            // ONNX Runtime's requantization: the int32 sum times the float scale sx·sw/sy, rounded to even
            float scale = sx * sw[o] / sy;
            int expected = (int)Math.Clamp(MathF.Round(acc[i] * scale) + zy, 0, 255);
            int d = Math.Abs(got[i] - expected);
            if (d != 0) mismatches++;
            worst = Math.Max(worst, d);
        }
        return new Int8ConvResult(s, acc.Length, mismatches, worst);
    }

    static byte[] RunOnnx(Int8ConvShape s, byte[] x, sbyte[] w, float sx, byte zx, float[] sw, int[] bias, float sy, byte zy,
        int oh, int ow, int threads)
    {
        int cout = s.OutChannels;
        var graph = new GraphProto { Name = "int8 conv check" };
        void Init(string name, TensorProto.Types.DataType type, long[] dims, ReadOnlySpan<byte> data)
        {
            var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(data) };
            t.Dims.Add(dims);
            graph.Initializer.Add(t);
        }
        void Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
        {
            var n = new NodeProto { OpType = op, Name = output };
            n.Input.Add(inputs);
            n.Output.Add(output);
            n.Attribute.Add(attributes);
            graph.Node.Add(n);
        }
        AttributeProto Ints(string name, params long[] v)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.Add(v);
            return a;
        }
        var axis = new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 0 };
        Init("x_scale", TensorProto.Types.DataType.Float, [], MemoryMarshal.AsBytes(new[] { sx }.AsSpan()));
        Init("x_zero", TensorProto.Types.DataType.Uint8, [], [zx]);
        Init("w", TensorProto.Types.DataType.Int8, [cout, s.InChannels, s.Kernel, s.Kernel], MemoryMarshal.AsBytes(w.AsSpan()));
        Init("w_scale", TensorProto.Types.DataType.Float, [cout], MemoryMarshal.AsBytes(sw.AsSpan()));
        Init("w_zero", TensorProto.Types.DataType.Int8, [cout], new byte[cout]);
        Init("b", TensorProto.Types.DataType.Int32, [cout], MemoryMarshal.AsBytes(bias.AsSpan()));
        Init("b_scale", TensorProto.Types.DataType.Float, [cout], MemoryMarshal.AsBytes(sw.Select(v => sx * v).ToArray().AsSpan()));
        Init("b_zero", TensorProto.Types.DataType.Int32, [cout], new byte[4 * cout]);
        Init("y_scale", TensorProto.Types.DataType.Float, [], MemoryMarshal.AsBytes(new[] { sy }.AsSpan()));
        Init("y_zero", TensorProto.Types.DataType.Uint8, [], [zy]);
        Node("DequantizeLinear", ["x", "x_scale", "x_zero"], "x_dq");
        Node("DequantizeLinear", ["w", "w_scale", "w_zero"], "w_dq", axis);
        Node("DequantizeLinear", ["b", "b_scale", "b_zero"], "b_dq", axis);
        int pad = s.Kernel / 2;
        Node("Conv", ["x_dq", "w_dq", "b_dq"], "conv", Ints("kernel_shape", s.Kernel, s.Kernel), Ints("strides", s.Stride, s.Stride),
            Ints("pads", pad, pad, pad, pad));
        Node("QuantizeLinear", ["conv", "y_scale", "y_zero"], "y");
        graph.Input.Add(Value("x", [1, s.InChannels, s.Height, s.Width]));
        graph.Output.Add(Value("y", [1, cout, oh, ow]));
        var model = new ModelProto { IrVersion = 7, Graph = graph, ProducerName = "YoloSpp int8 check" };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = threads > 0 ? threads : Math.Max(1, TorchSharp.torch.get_num_threads()),
            InterOpNumThreads = 1,
        };
        using var session = new InferenceSession(model.ToByteArray(), options);
        using var input = OrtValue.CreateTensorValueFromMemory(x, [1, s.InChannels, s.Height, s.Width]);
        using var run = new RunOptions();
        using var outputs = session.Run(run, ["x"], [input], ["y"]);
        return outputs[0].GetTensorDataAsSpan<byte>().ToArray();
    }

    static ValueInfoProto Value(string name, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Uint8, Shape = shape } },
        };
    }
}
