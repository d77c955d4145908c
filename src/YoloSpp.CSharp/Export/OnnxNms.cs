using System.Globalization;
using Onnx;

namespace YoloSpp.Export;

/// <summary>Non-maximum suppression inside an exported model (<see cref="OnnxExportOptions.Nms"/>): the rules of the
/// detector's NMS (<c>Detector</c>, the reference's non_max_suppression) with ONNX's <c>NonMaxSuppression</c> operator,
/// so that any ONNX runtime gives final boxes.</summary>
/// <param name="ConfThreshold">A box of a class is a candidate when objectness × class score is above this.</param>
/// <param name="IouThreshold">A candidate is suppressed when its IoU with a kept box of its class is above this.</param>
/// <param name="MaxDetections">Boxes kept per image (the highest scores).</param>
public sealed record OnnxNmsOptions(double ConfThreshold = 0.25, double IouThreshold = 0.45, int MaxDetections = 100)
{
    /// <summary>One NMS over all classes, each box with its best class (yolov5's <c>--agnostic-nms</c>).</summary>
    public bool Agnostic { get; init; }
    /// <summary>Every class above the threshold is a candidate box (the reference's default), not only a box's best
    /// class. Ignored when <see cref="Agnostic"/>.</summary>
    public bool MultiLabel { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the option when a threshold is outside [0, 1] or no
    /// detection is kept.</summary>
    public void Validate() => YoloSpp.Detection.Thresholds.Check(ConfThreshold, IouThreshold, MaxDetections);
}

public static partial class OnnxExport
{
    /// <summary>The output of a model exported with <see cref="OnnxExportOptions.Nms"/>: [N, 7] rows of batch index,
    /// x1, y1, x2, y2 (input pixels), score, class, by batch index and then by descending score.</summary>
    public const string DetectionsOutputName = "detections";
    /// <summary>Metadata key of the NMS settings of a model exported with NMS (JSON).</summary>
    public const string NmsMetadataKey = "nms";
    /// <summary>Metadata key of the letterbox rule that maps <see cref="DetectionsOutputName"/> back to an image.</summary>
    public const string LetterboxMetadataKey = "letterbox";

    /// <summary>The detector's box-size limits (boxes need MinWh &lt; w, h &lt; MaxWh pixels).</summary>
    const float MinWh = 2, MaxWh = 4096;

    /// <summary>
    /// Appends NMS to the decoded <paramref name="prediction"/> [B, R, 5 + nc]: scores = objectness × class scores
    /// (zero for boxes outside the size limits and, single-label, for all but a box's best class; agnostic: the best
    /// class's), <c>NonMaxSuppression</c> per image and class (centre-size boxes, IoU above the threshold suppresses,
    /// scores above the threshold kept, at most MaxDetections per class), then the kept boxes sorted by image and
    /// descending score (a float64 key, exact) and cut to MaxDetections per image; returns the [N, 7] output's name.
    /// </summary>
    static string NmsTail(GraphWriter g, string prediction, int nc, OnnxNmsOptions o)
    {
        const string p = "nms";
        var axis2 = g.Int64s($"{p}.axis2", [2], [1]);
        string Slice(string name, string x, long start, long end, string axes) =>
            g.Node("Slice", [x, g.Int64s($"{p}.{name}_start", [start], [1]), g.Int64s($"{p}.{name}_end", [end], [1]), axes], $"{p}.{name}");
        var boxes = Slice("cxcywh", prediction, 0, 4, axis2);
        var wh = Slice("wh", prediction, 2, 4, axis2);
        var obj = Slice("obj", prediction, 4, 5, axis2);
        var cls = Slice("cls", prediction, 5, long.MaxValue, axis2);
        // the reference's candidates: cls · obj > conf (which implies obj > conf), 2 < w, h < 4096
        var scores = g.Node("Mul", [cls, obj], $"{p}.scores");
        var sizeOk = g.Node("And", [
            g.Node("Greater", [wh, g.Floats($"{p}.min_wh", [MinWh], [])], $"{p}.wh_min"),
            g.Node("Less", [wh, g.Floats($"{p}.max_wh", [MaxWh], [])], $"{p}.wh_max")], $"{p}.wh_ok");
        var sizeMask = g.Node("ReduceMin", [g.Node("Cast", [sizeOk], $"{p}.wh_float", Attr.Int("to", (int)TensorProto.Types.DataType.Float))],
            $"{p}.size_ok", Attr.Ints("axes", 2), Attr.Int("keepdims", 1));
        scores = g.Node("Mul", [scores, sizeMask], $"{p}.sized_scores");
        string? bestClass = null;
        if (o.Agnostic || !o.MultiLabel)
        {
            // the first best class of each box, as the reference's max(1)
            bestClass = g.Node("ArgMax", [scores], $"{p}.best_class", Attr.Int("axis", 2), Attr.Int("keepdims", 0));
            if (o.Agnostic) scores = g.Node("ReduceMax", [scores], $"{p}.best_score", Attr.Ints("axes", 2), Attr.Int("keepdims", 1));
            else
            {
                var oneHot = g.Node("OneHot", [bestClass, g.Int64s($"{p}.depth", [nc], []), g.Floats($"{p}.onehot_values", [0, 1], [2])],
                    $"{p}.best_mask", Attr.Int("axis", -1));
                scores = g.Node("Mul", [scores, oneHot], $"{p}.single_label");
            }
        }
        var perClass = g.Node("Transpose", [scores], $"{p}.per_class", Attr.Ints("perm", 0, 2, 1));
        var selected = g.Node("NonMaxSuppression", [boxes, perClass, g.Int64s($"{p}.max_per_class", [o.MaxDetections], [1]),
            g.Floats($"{p}.iou", [(float)o.IouThreshold], [1]), g.Floats($"{p}.conf", [(float)o.ConfThreshold], [1])],
            $"{p}.select", Attr.Int("center_point_box", 1));
        // selected [K, 3] = (image, class, box)
        var axis1 = g.Int64s($"{p}.axis1", [1], [1]);
        var image = Slice("image", selected, 0, 1, axis1);
        var imageBox = g.Node("Concat", [image, Slice("box", selected, 2, 3, axis1)], $"{p}.image_box", Attr.Int("axis", 1));
        var score = g.Node("GatherND", [perClass, selected], $"{p}.score");
        // corners as the detector computes them: x1 = cx − w / 2, …
        var cxcy = Slice("cxcy", boxes, 0, 2, axis2);
        var half = g.Node("Div", [wh, g.Floats($"{p}.two", [2], [])], $"{p}.half");
        var corners = g.Node("Concat", [g.Node("Sub", [cxcy, half], $"{p}.x1y1"), g.Node("Add", [cxcy, half], $"{p}.x2y2")],
            $"{p}.xyxy", Attr.Int("axis", 2));
        var box = g.Node("GatherND", [corners, imageBox], $"{p}.kept_boxes");
        var classIndex = bestClass is not null && o.Agnostic
            ? g.Node("GatherND", [bestClass, imageBox], $"{p}.kept_class")
            : Squeeze(g, Slice("class", selected, 1, 2, axis1), 1, $"{p}.kept_class");
        var imageIndex = Squeeze(g, image, 1, $"{p}.kept_image");
        // order: by image, then by descending score; key = score − 4 · image in float64 holds both exactly
        var key = g.Node("Sub", [
            g.Node("Cast", [score], $"{p}.score64", Attr.Int("to", (int)TensorProto.Types.DataType.Double)),
            g.Node("Mul", [g.Node("Cast", [imageIndex], $"{p}.image64", Attr.Int("to", (int)TensorProto.Types.DataType.Double)),
                g.Bytes($"{p}.four", TensorProto.Types.DataType.Double, BitConverter.GetBytes(4.0), [])], $"{p}.image_offset")], $"{p}.key");
        var count = g.Node("Shape", [key], $"{p}.count");
        var order = g.Nodes("TopK", [key, count], $"{p}.order", 2, Attr.Int("largest", 1), Attr.Int("sorted", 1))[1];
        var sortedImage = g.Node("Gather", [imageIndex, order], $"{p}.sorted_image", Attr.Int("axis", 0));
        // rank within its image: position − the number of boxes of earlier images
        var batch = g.Node("Gather", [g.Node("Shape", [prediction], $"{p}.pred_shape"), g.Int64s($"{p}.zero_index", [0], [])], $"{p}.batch",
            Attr.Int("axis", 0));
        var zero = g.Int64s($"{p}.zero", [0], []);
        var one = g.Int64s($"{p}.one", [1], []);
        var images = g.Node("Range", [zero, batch, one], $"{p}.images");
        var isImage = g.Node("Cast", [g.Node("Equal", [Unsqueeze(g, sortedImage, 1, $"{p}.image_column"), images], $"{p}.is_image")],
            $"{p}.is_image64", Attr.Int("to", (int)TensorProto.Types.DataType.Int64));
        var perImage = g.Opset >= 13
            ? g.Node("ReduceSum", [isImage, g.Int64s($"{p}.sum_axes", [0], [1])], $"{p}.per_image", Attr.Int("keepdims", 0))
            : g.Node("ReduceSum", [isImage], $"{p}.per_image", Attr.Ints("axes", 0), Attr.Int("keepdims", 0));
        var before = g.Node("CumSum", [perImage, zero], $"{p}.before", Attr.Int("exclusive", 1));
        var position = g.Node("Range", [zero, Squeeze(g, count, 0, $"{p}.k"), one], $"{p}.position");
        var rank = g.Node("Sub", [position, g.Node("Gather", [before, sortedImage], $"{p}.first", Attr.Int("axis", 0))], $"{p}.rank");
        var inCap = g.Node("Less", [rank, g.Int64s($"{p}.max_det", [o.MaxDetections], [])], $"{p}.in_cap");
        var keep = Squeeze(g, g.Node("NonZero", [inCap], $"{p}.kept_positions"), 0, $"{p}.keep");
        var final = g.Node("Gather", [order, keep], $"{p}.final", Attr.Int("axis", 0));
        string Take(string name, string x, bool column)
        {
            var t = g.Node("Gather", [x, final], $"{p}.final_{name}", Attr.Int("axis", 0));
            var f = g.Node("Cast", [t], $"{p}.final_{name}_float", Attr.Int("to", (int)TensorProto.Types.DataType.Float));
            return column ? Unsqueeze(g, f, 1, $"{p}.final_{name}_column") : f;
        }
        return g.Node("Concat", [Take("image", imageIndex, true), Take("box", box, false), Take("score", score, true), Take("class", classIndex, true)],
            $"{p}.detections", DetectionsOutputName, Attr.Int("axis", 1));
    }

    /// <summary>Squeeze of one axis (axes an input from opset 13, an attribute before).</summary>
    static string Squeeze(GraphWriter g, string x, long axis, string name) => g.Opset >= 13
        ? g.Node("Squeeze", [x, g.Int64s($"{name}.axes", [axis], [1])], name)
        : g.Node("Squeeze", [x], name, Attr.Ints("axes", axis));

    /// <summary>Unsqueeze of one axis (axes an input from opset 13, an attribute before).</summary>
    static string Unsqueeze(GraphWriter g, string x, long axis, string name) => g.Opset >= 13
        ? g.Node("Unsqueeze", [x, g.Int64s($"{name}.axes", [axis], [1])], name)
        : g.Node("Unsqueeze", [x], name, Attr.Ints("axes", axis));
}
