using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// How a training run computes: plain float32 (the CPU default, as the reference), float16 convolutions with
/// dynamic loss scaling on CUDA when amp is on (what autocast + GradScaler do in the reference), or opt-in bfloat16
/// on any device (float32's range: no loss scaling needed). In both low-precision modes the convolutions' outputs
/// stay in that type through BatchNorm and the activations, as autocast lets them; master weights, BatchNorm's
/// parameters and statistics, the heads and the loss stay float32 (see <see cref="YoloSpp.Model.DarkNet.ComputeType"/>).
/// </summary>
/// <param name="ComputeType">The convolutions' type, or null for float32.</param>
/// <param name="ScaleLoss">Whether the loss is scaled dynamically (float16 only).</param>
internal readonly record struct MixedPrecision(ScalarType? ComputeType, bool ScaleLoss)
{
    /// <summary>The mode for the options: bf16 wins; amp means float16 on CUDA and nothing on the CPU.</summary>
    public static MixedPrecision For(bool amp, bool bf16, Device device) =>
        bf16 ? new(ScalarType.BFloat16, false)
        : amp && device.type == DeviceType.CUDA ? new(ScalarType.Float16, true)
        : new(null, false);

    /// <summary>A loss scaler for this mode (disabled unless float16).</summary>
    public LossScaler CreateScaler() => new(ScaleLoss);

    /// <summary>"float32", or the low-precision mode in one line (its convolutions, weights and loss scaling).</summary>
    public override string ToString() => ComputeType switch
    {
        null => "float32",
        ScalarType.Float16 => "mixed precision: float16 convolutions, float32 master weights, dynamic loss scaling (activations in float16 as autocast, heads and loss in float32)",
        _ => "mixed precision: bfloat16 convolutions, float32 master weights (activations in bfloat16 as autocast, heads and loss in float32)",
    };
}
