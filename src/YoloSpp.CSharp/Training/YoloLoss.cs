using TorchSharp;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>Hyperparameters of the YOLOv3 loss (already adjusted for the dataset, see <see cref="HyperParameters"/>).</summary>
public sealed record LossOptions
{
    /// <summary>Box (GIoU) loss gain; hyp <c>giou</c>.</summary>
    public double BoxGain { get; init; } = 3.54;
    /// <summary>Objectness loss gain; hyp <c>obj</c>.</summary>
    public double ObjGain { get; init; } = 64.3;
    /// <summary>Class loss gain; hyp <c>cls</c>.</summary>
    public double ClsGain { get; init; } = 37.4;
    /// <summary>Class BCE positive weight; hyp <c>cls_pw</c>.</summary>
    public double ClsPosWeight { get; init; } = 1.0;
    /// <summary>Objectness BCE positive weight; hyp <c>obj_pw</c>.</summary>
    public double ObjPosWeight { get; init; } = 1.0;
    /// <summary>Anchor-match IoU threshold; hyp <c>iou_t</c>.</summary>
    public double IouThreshold { get; init; } = 0.20;
    /// <summary>Focal loss gamma, 0 for plain BCE; hyp <c>fl_gamma</c>.</summary>
    public double FocalGamma { get; init; } = 0.0;

    internal Loss.LossHyp ToCore() =>
        new(BoxGain, ObjGain, ClsGain, ClsPosWeight, ObjPosWeight, IouThreshold, FocalGamma);

    /// <summary>The loss options of a hyperparameter set.</summary>
    public static LossOptions From(HyperParameters hyp) => new()
    {
        BoxGain = hyp.Core.Giou, ObjGain = hyp.Core.Obj, ClsGain = hyp.Core.Cls, ClsPosWeight = hyp.Core.ClsPw,
        ObjPosWeight = hyp.Core.ObjPw, IouThreshold = hyp.Core.IouT, FocalGamma = hyp.Core.FlGamma,
    };
}

/// <summary>The three loss terms (each multiplied by its gain) and their sum.</summary>
/// <param name="Box">GIoU box loss.</param>
/// <param name="Objectness">Objectness BCE loss.</param>
/// <param name="Class">Class BCE loss (exactly 0 when there is one class).</param>
/// <param name="Total">Box + objectness + class: the value to back-propagate.</param>
public sealed record LossResult(Tensor Box, Tensor Objectness, Tensor Class, Tensor Total)
{
    /// <summary>The four values as numbers (one device-to-host copy).</summary>
    public LossValues ToValues()
    {
        using var scope = NewDisposeScope();
        var v = stack(new[] { Box.detach(), Objectness.detach(), Class.detach(), Total.detach() }).to(float64).cpu().data<double>().ToArray();
        return new LossValues(v[0], v[1], v[2], v[3]);
    }
}

/// <summary>The loss terms as numbers: box (GIoU), objectness and class, each multiplied by its gain, and their sum.</summary>
/// <param name="Box">GIoU box loss.</param>
/// <param name="Objectness">Objectness BCE loss.</param>
/// <param name="Class">Class BCE loss.</param>
/// <param name="Total">Their sum.</param>
public readonly record struct LossValues(double Box, double Objectness, double Class, double Total)
{
    /// <summary>Whether the total is a finite number.</summary>
    public bool IsFinite => double.IsFinite(Total);

    /// <summary>The running mean after <paramref name="count"/> values: (this·count + next) / (count + 1), per term.</summary>
    public LossValues RunningMean(LossValues next, int count) => new(
        (Box * count + next.Box) / (count + 1), (Objectness * count + next.Objectness) / (count + 1),
        (Class * count + next.Class) / (count + 1), (Total * count + next.Total) / (count + 1));

    /// <summary>"box 1.234 obj 1.234 cls 1.234 total 3.702" with <paramref name="format"/> per number.</summary>
    public string ToString(string format) =>
        $"box {Box.ToString(format, System.Globalization.CultureInfo.InvariantCulture)} obj {Objectness.ToString(format, System.Globalization.CultureInfo.InvariantCulture)} " +
        $"cls {Class.ToString(format, System.Globalization.CultureInfo.InvariantCulture)} total {Total.ToString(format, System.Globalization.CultureInfo.InvariantCulture)}";
}

/// <summary>
/// The reference's <c>compute_loss</c>: GIoU box loss, objectness BCE whose target is the detached GIoU
/// (ratio <c>gr</c>), and class BCE, over the positives that <c>build_targets</c> assigns.
/// </summary>
public sealed class YoloLoss
{
    readonly Loss.LossHyp _hyp;
    readonly Loss.YoloSpec _spec;

    /// <summary>Creates the loss for a model's yolo layers.</summary>
    /// <param name="options">Loss hyperparameters.</param>
    /// <param name="anchorsInGridUnits">Per yolo layer (strides 32, 16, 8), its anchors [na, 2] divided by the stride.</param>
    /// <param name="numClasses">Number of classes.</param>
    public YoloLoss(LossOptions options, IReadOnlyList<Tensor> anchorsInGridUnits, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(anchorsInGridUnits);
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "need at least one class");
        _hyp = options.ToCore();
        _spec = new Loss.YoloSpec(anchorsInGridUnits.ToArray(), numClasses);
    }

    /// <summary>The loss of a network's yolo layers (their anchors moved to <paramref name="device"/>).</summary>
    public static YoloLoss For(DarkNet model, HyperParameters hyp, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(hyp);
        device ??= model.parameters().First().device;
        return new YoloLoss(LossOptions.From(hyp), model.AnchorVecs.Select(a => a.to(device).DetachFromDisposeScope()).ToArray(), model.NumClasses);
    }

    /// <summary>Computes the loss.</summary>
    /// <param name="predictions">Raw yolo outputs [bs, na, ny, nx, nc + 5], one per layer.</param>
    /// <param name="targets">[nt, 6] = (image index, class, cx, cy, w, h), coordinates normalised to 0..1.</param>
    /// <param name="gr">Objectness target ratio: (1 − gr) + gr·GIoU (the reference uses 1).</param>
    public LossResult Compute(IReadOnlyList<Tensor> predictions, Tensor targets, double gr = 1.0)
    {
        var parts = Loss.computeLoss(_hyp, gr, _spec, predictions.ToArray(), targets);
        return new LossResult(parts.Box, parts.Obj, parts.Cls, parts.Total);
    }
}
