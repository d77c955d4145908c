using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace YoloSpp.Model;

/// <summary>Conv + BatchNorm folding for inference.</summary>
public static class Fusion
{
    /// <summary>A conv with bias equal to conv followed by bn in eval mode: w·γ/√(var+ε), β + (b − mean)·γ/√(var+ε).</summary>
    public static Conv2d FuseConvBn(Conv2d conv, BatchNorm2d bn)
    {
        using var _ = no_grad();
        var w = conv.weight!;
        var fused = nn.Conv2d(w.shape[1] * conv.groups, w.shape[0], conv.kernel_size[0], stride: conv.stride[0],
            padding: conv.padding?[0] ?? 0, bias: true, groups: conv.groups, device: w.device, dtype: w.dtype);
        using var eps = bn.eps.ToScalar();
        var scale = bn.weight! / (bn.running_var! + eps).sqrt();
        fused.weight!.copy_(w * scale.view(-1, 1, 1, 1));
        var b = conv.bias is null ? zeros_like(bn.running_mean!) : conv.bias;
        fused.bias!.copy_(bn.bias! + (b - bn.running_mean!) * scale);
        return fused;
    }
}
