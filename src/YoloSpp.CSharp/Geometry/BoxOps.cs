using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Geometry;

/// <summary>Which member of the IoU family to compute.</summary>
public enum IouType
{
    /// <summary>Plain intersection over union.</summary>
    Iou,
    /// <summary>Generalized IoU (arXiv 1902.09630).</summary>
    GIoU,
    /// <summary>Distance IoU (arXiv 1911.08287).</summary>
    DIoU,
    /// <summary>Complete IoU (arXiv 1911.08287).</summary>
    CIoU,
}

/// <summary>How a box's four numbers are laid out.</summary>
public enum BoxLayout
{
    /// <summary>Centre x, centre y, width, height.</summary>
    Xywh,
    /// <summary>Top-left x, top-left y, bottom-right x, bottom-right y.</summary>
    Xyxy,
}

/// <summary>Box geometry of the reference implementation, for C# callers.</summary>
public static class BoxOps
{
    internal static Boxes.IouKind ToKind(IouType t) => t switch
    {
        IouType.Iou => Boxes.IouKind.Iou,
        IouType.GIoU => Boxes.IouKind.GIoU,
        IouType.DIoU => Boxes.IouKind.DIoU,
        IouType.CIoU => Boxes.IouKind.CIoU,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown IoU type"),
    };

    internal static Boxes.BoxFormat ToFormat(BoxLayout f) => f switch
    {
        BoxLayout.Xywh => Boxes.BoxFormat.Xywh,
        BoxLayout.Xyxy => Boxes.BoxFormat.Xyxy,
        _ => throw new ArgumentOutOfRangeException(nameof(f), f, "unknown box layout"),
    };

    /// <summary>
    /// IoU family of paired boxes (<paramref name="box1"/>[i] with <paramref name="box2"/>[i], shapes [n, 4] or
    /// broadcastable), exactly as the reference's <c>bbox_iou</c> including its 1e-16 epsilons. Differentiable.
    /// </summary>
    public static Tensor BboxIou(Tensor box1, Tensor box2, IouType type = IouType.Iou, BoxLayout layout = BoxLayout.Xywh)
        => Boxes.bboxIou(ToKind(type), ToFormat(layout), box1, box2);

    /// <summary>IoU family of two single boxes given as four numbers each, in float64.</summary>
    public static double BboxIou(double[] box1, double[] box2, IouType type = IouType.Iou, BoxLayout layout = BoxLayout.Xywh)
    {
        if (box1.Length != 4) throw new ArgumentException($"box1 has {box1.Length} numbers, expected 4", nameof(box1));
        if (box2.Length != 4) throw new ArgumentException($"box2 has {box2.Length} numbers, expected 4", nameof(box2));
        using var scope = NewDisposeScope();
        var r = BboxIou(tensor(box1).view(1, 4), tensor(box2).view(1, 4), type, layout);
        return r[0].item<double>();
    }

    /// <summary>Pairwise IoU of xyxy boxes: [N, 4] and [M, 4] give [N, M].</summary>
    public static Tensor BoxIou(Tensor box1, Tensor box2) => Boxes.boxIou(box1, box2);

    /// <summary>IoU of widths/heights of corner-aligned boxes: [N, 2] and [M, 2] give [N, M].</summary>
    public static Tensor WhIou(Tensor wh1, Tensor wh2) => Boxes.whIou(wh1, wh2);

    /// <summary>Converts [.., 4] boxes from centre/size to corners.</summary>
    public static Tensor XywhToXyxy(Tensor boxes) => Boxes.xywh2xyxy(boxes);

    /// <summary>Converts [.., 4] boxes from corners to centre/size.</summary>
    public static Tensor XyxyToXywh(Tensor boxes) => Boxes.xyxy2xywh(boxes);

    /// <summary>
    /// Maps xyxy boxes from the network input (height, width) back to the original image, as the reference's
    /// <c>scale_coords</c>: with no gain/pad given the gain is max(input)/max(original) and the padding centred.
    /// </summary>
    public static Tensor ScaleCoords(int inputHeight, int inputWidth, Tensor boxes, int originalHeight, int originalWidth)
        => Boxes.scaleCoords(inputHeight, inputWidth, boxes, originalHeight, originalWidth, null);

    /// <summary>As <see cref="ScaleCoords(int,int,Tensor,int,int)"/> with the letterbox's gain and padding.</summary>
    public static Tensor ScaleCoords(int inputHeight, int inputWidth, Tensor boxes, int originalHeight, int originalWidth,
        double gain, double padX, double padY)
        => Boxes.scaleCoords(inputHeight, inputWidth, boxes, originalHeight, originalWidth,
            Microsoft.FSharp.Core.FSharpOption<Boxes.RatioPad>.Some(new Boxes.RatioPad(gain, padX, padY)));
}
