using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// Dynamic loss scaling for mixed precision, as PyTorch's GradScaler: the loss is multiplied by a scale before
/// backward; before the step the gradients are unscaled and checked; a step with an inf/NaN gradient is skipped
/// and the scale backs off, and after <see cref="GrowthInterval"/> good steps it grows. Disabled, it is the plain
/// path: the loss is not scaled and every step is taken (TorchSharp has no GradScaler of its own).
/// </summary>
internal sealed class LossScaler
{
    /// <summary>Whether scaling is on.</summary>
    public bool Enabled { get; }
    /// <summary>Current scale.</summary>
    public double Scale { get; private set; }
    /// <summary>Good steps since the last change of scale.</summary>
    public int GrowthTracker { get; private set; }
    /// <summary>Factor applied after <see cref="GrowthInterval"/> good steps.</summary>
    public double GrowthFactor { get; } = 2.0;
    /// <summary>Factor applied after a step with inf/NaN gradients.</summary>
    public double BackoffFactor { get; } = 0.5;
    /// <summary>Good steps between growths.</summary>
    public int GrowthInterval { get; } = 2000;
    /// <summary>Whether the last <see cref="Step"/> was skipped.</summary>
    public bool LastStepSkipped { get; private set; }

    /// <summary>Creates a scaler (initial scale 2^16, as PyTorch).</summary>
    public LossScaler(bool enabled, double initialScale = 65536.0, int growthTracker = 0)
    {
        Enabled = enabled;
        Scale = initialScale;
        GrowthTracker = growthTracker;
    }

    /// <summary>The loss to back-propagate.</summary>
    public Tensor ScaleLoss(Tensor loss)
    {
        if (!Enabled) return loss;
        using var s = Scale.ToScalar();
        return loss.mul(s);
    }

    /// <summary>Unscales the gradients, and steps the optimizer unless one of them is inf/NaN.</summary>
    public void Step(IOptimizer optimizer)
    {
        LastStepSkipped = false;
        if (!Enabled) { optimizer.Step(); return; }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var inv = (1.0 / Scale).ToScalar();
        bool finite = true;
        foreach (var p in optimizer.Parameters)
        {
            if (p.grad is null) continue;
            p.grad.mul_(inv);
            if (!p.grad.isfinite().all().item<bool>()) finite = false;
        }
        if (finite) optimizer.Step();
        LastStepSkipped = !finite;
    }

    /// <summary>Adjusts the scale after a step.</summary>
    public void Update()
    {
        if (!Enabled) return;
        if (LastStepSkipped) { Scale *= BackoffFactor; GrowthTracker = 0; return; }
        if (++GrowthTracker >= GrowthInterval) { Scale *= GrowthFactor; GrowthTracker = 0; }
    }
}
