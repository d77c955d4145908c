using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Platform;

/// <summary>One 2-D convolution as the guard sees it (groups 1, dilation 1, as Darknet cfgs build them).</summary>
/// <param name="InChannels">Input channels.</param>
/// <param name="OutChannels">Output channels (filters).</param>
/// <param name="Kernel">Square kernel size.</param>
/// <param name="Stride">Stride.</param>
/// <param name="Padding">Zero padding on each side.</param>
public readonly record struct ConvConfig(int InChannels, int OutChannels, int Kernel, int Stride, int Padding)
{
    /// <summary>"3x3/s1 20->16" style.</summary>
    public override string ToString() => $"{Kernel}x{Kernel}/s{Stride} {InChannels}->{OutChannels}";
}

/// <summary>How one configuration fared: relative L2 errors of the forward output, the input gradient and the
/// weight gradient against an unfold + matmul convolution in float64 (infinity for NaN or inf).</summary>
/// <param name="Config">The configuration.</param>
/// <param name="InputShape">The probe input [N, C, H, W].</param>
/// <param name="Forward">‖y − y_ref‖ / ‖y_ref‖.</param>
/// <param name="InputGrad">Same for dL/dx.</param>
/// <param name="WeightGrad">Same for dL/dw.</param>
/// <param name="Kernels">The kernels checked: "oneDNN" (libtorch's default) or "native" (oneDNN off).</param>
public sealed record ConvCheckResult(ConvConfig Config, long[] InputShape, double Forward, double InputGrad, double WeightGrad, string Kernels)
{
    /// <summary>Relative error above which a result is wrong: float32 kernels land near 1e-6, the wrong ones seen at 0.1–0.5.</summary>
    public const double Tolerance = 1e-3;

    /// <summary>Whether all three results are right.</summary>
    public bool Ok => Forward <= Tolerance && InputGrad <= Tolerance && WeightGrad <= Tolerance;

    /// <summary>What was wrong, e.g. "3x3/s1 20->16 on [2, 20, 40, 40]: forward off by 31 %".</summary>
    public string Describe()
    {
        string Pct(double e) => double.IsFinite(e) ? $"{100 * e:0.#} %" : "NaN/inf";
        var parts = new List<string>();
        if (!(Forward <= Tolerance)) parts.Add($"forward off by {Pct(Forward)}");
        if (!(InputGrad <= Tolerance)) parts.Add($"input gradient off by {Pct(InputGrad)}");
        if (!(WeightGrad <= Tolerance)) parts.Add($"weight gradient off by {Pct(WeightGrad)}");
        return $"{Config} on [{string.Join(", ", InputShape)}] ({Kernels}): " + (parts.Count == 0 ? "right" : string.Join(", ", parts));
    }
}

/// <summary>
/// Convolutions computed independently of libtorch's convolution kernels: the input unfolded into columns
/// (im2col) and multiplied by the weights. Autograd differentiates it through unfold (col2im) and matmul, so it
/// serves both as the guard's reference and as a correct path for configurations whose kernels are wrong.
/// </summary>
internal static class UnfoldConv
{
    /// <summary>conv2d(x, w, b) with stride and padding, groups 1, dilation 1.</summary>
    public static Tensor Conv2d(Tensor x, Tensor w, Tensor? b, int stride, int padding)
    {
        long n = x.shape[0], h = x.shape[2], wd = x.shape[3];
        long o = w.shape[0], k = w.shape[2];
        long oh = (h + 2 * padding - k) / stride + 1, ow = (wd + 2 * padding - k) / stride + 1;
        var cols = nn.functional.unfold(x, k, 1, padding, stride); // [n, c·k·k, oh·ow]
        var y = w.reshape(o, -1).matmul(cols).view(n, o, oh, ow);
        return b is null ? y : y.add(b.view(1, -1, 1, 1), Tensors.one);
    }
}

/// <summary>Memory layouts of 4-D tensors (TorchSharp has no <c>memory_format</c> argument).</summary>
internal static class Layout
{
    /// <summary>The same [N, C, H, W] values stored channels-last (NHWC strides), as
    /// <c>x.contiguous(memory_format=torch.channels_last)</c>.</summary>
    public static Tensor ChannelsLast(Tensor x) => x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>Whether a 4-D tensor is stored channels-last (channel stride 1, more than one channel).</summary>
    public static bool IsChannelsLast(Tensor x) => x.dim() == 4 && x.shape[1] > 1 && x.stride(1) == 1;
}

/// <summary>The check of one configuration (see <see cref="ConvCheckResult"/>).</summary>
internal static class ConvCheck
{
    /// <summary>
    /// Runs <paramref name="conv"/> (the path under test) forward and backward on a random [batch, C, h, w] input
    /// and compares it with <see cref="UnfoldConv"/> in float64 on the same numbers.
    /// </summary>
    public static ConvCheckResult Run(ConvConfig c, int batch, int h, int w, Func<Tensor, Tensor, ConvConfig, Tensor> conv, ulong seed, string kernels,
        bool channelsLast = false)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(seed);
        var x = randn(new long[] { batch, c.InChannels, h, w }, generator: g);
        using var fanIn = (1.0 / Math.Sqrt(c.InChannels * c.Kernel * c.Kernel)).ToScalar();
        var wt = randn(new long[] { c.OutChannels, c.InChannels, c.Kernel, c.Kernel }, generator: g).mul_(fanIn);
        // the layout under test: channels-last input and output gradient take other kernels than contiguous ones
        var xa = (channelsLast ? Layout.ChannelsLast(x) : x.clone()).requires_grad_(true);
        var wa = wt.clone().requires_grad_(true);
        var y = conv(xa, wa, c);
        var gy = randn(y.shape, generator: g);
        if (channelsLast) gy = Layout.ChannelsLast(gy);
        var ga = autograd.grad(new[] { y }, new[] { xa, wa }, new[] { gy });
        var x64 = x.to(float64).requires_grad_(true);
        var w64 = wt.to(float64).requires_grad_(true);
        var yr = UnfoldConv.Conv2d(x64, w64, null, c.Stride, c.Padding);
        var gr = autograd.grad(new[] { yr }, new[] { x64, w64 }, new[] { gy.to(float64) });
        return new ConvCheckResult(c, new long[] { batch, c.InChannels, h, w },
            RelativeError(y, yr), RelativeError(ga[0], gr[0]), RelativeError(ga[1], gr[1]), kernels);
    }

    /// <summary>‖a − r‖₂ / ‖r‖₂ in float64; infinity when a holds NaN/inf or the shapes differ.</summary>
    public static double RelativeError(Tensor a, Tensor r)
    {
        if (!a.shape.SequenceEqual(r.shape)) return double.PositiveInfinity;
        using var scope = NewDisposeScope();
        var a64 = a.detach().to(float64);
        var r64 = r.detach().to(float64);
        if (!a64.isfinite().all().item<bool>()) return double.PositiveInfinity;
        double num = (a64 - r64).norm().item<double>(), den = r64.norm().item<double>();
        return den == 0 ? (num == 0 ? 0 : double.PositiveInfinity) : num / den;
    }

    /// <summary>
    /// A probe input size for a configuration: 40×40 where that is cheap (the size at which wrong kernels were
    /// found), smaller for wide layers so that one check stays well under a second.
    /// </summary>
    public static (int H, int W) ProbeSize(ConvConfig c, int batch)
    {
        double budget = 3e6 / (batch * (double)c.InChannels * c.Kernel * c.Kernel);
        int side = (int)Math.Clamp(Math.Floor(Math.Sqrt(budget)), 8, 40);
        // odd and non-square: widths that are not multiples of the kernels' blocking take the tail paths too
        int h = side | 1;
        return (h, h + 6);
    }
}
