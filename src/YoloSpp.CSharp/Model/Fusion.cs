using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace YoloSpp.Model;

/// <summary>Conv + BatchNorm folding for inference.</summary>
internal static class Fusion
{
    /// <summary>
    /// Weight and bias of one conv equal to <paramref name="conv"/> followed by <paramref name="bn"/> in eval mode:
    /// w·γ/√(var+ε) and β + (b − mean)·γ/√(var+ε).
    /// </summary>
    public static (Tensor Weight, Tensor Bias) FuseConvBn(Conv2d conv, BatchNorm bn)
    {
        using var _ = no_grad();
        using var eps = bn.eps.ToScalar();
        var scale = bn.weight! / bn.running_var!.add(eps, Tensors.one).sqrt();
        var weight = conv.weight! * scale.view(-1, 1, 1, 1);
        var b = conv.bias is null ? zeros_like(bn.running_mean!) : conv.bias;
        return (weight, bn.bias!.add((b - bn.running_mean!) * scale, Tensors.one));
    }
}
