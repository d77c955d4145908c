using System.Text.Json;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using YoloSpp.Data;
using YoloSpp.IO;
using YoloSpp.Model;
using YoloSpp.Platform;
using static TorchSharp.torch;
using CfgM = YoloSpp.Model.Cfg;
using YoloSpp.Detection;

namespace YoloSpp.Export;

/// <summary>Settings of <see cref="OnnxExport.Export(DarkNet, string, OnnxExportOptions?)"/>; the defaults are the reference's export_onnx.py (opset 12, a
/// dynamic batch, BatchNorm folded) with a dynamic input size.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Input height and width fixed in the graph (multiples of <see cref="DarkNet.GridStride"/>); null (default):
    /// symbolic height and width, any multiple of 32 runs (the grids are computed in the graph).</summary>
    public (int Height, int Width)? ImageSize { get; init; }
    /// <summary>ONNX opset, <see cref="OnnxExport.MinOpset"/> to <see cref="OnnxExport.MaxOpset"/>. Default 12, as the reference.</summary>
    public int Opset { get; init; } = 12;
    /// <summary>A symbolic batch dimension (default, as the reference's dynamic_axes); false fixes it to <see cref="BatchSize"/>.</summary>
    public bool DynamicBatch { get; init; } = true;
    /// <summary>The batch size when <see cref="DynamicBatch"/> is false. Default 1.</summary>
    public int BatchSize { get; init; } = 1;
    /// <summary>Fold every BatchNorm into the conv before it (default, as <see cref="DarkNet.Fuse"/>); false writes
    /// BatchNormalization nodes with the running statistics.</summary>
    public bool Fuse { get; init; } = true;
    /// <summary>Also output the raw heads as <c>raw</c> [batch, rows, 5 + nc], in the rows' order of <c>prediction</c>.</summary>
    public bool RawOutput { get; init; }
    /// <summary>Class names stored in the model's metadata (default: class0, class1, …).</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }
    /// <summary>The image size the network was trained at, stored in the metadata (<c>train_img_size</c>) so that
    /// <c>detect</c> and <c>eval</c> run the model at that size by default; null: not recorded.
    /// <see cref="OnnxExport.Export(string, string, OnnxExportOptions?, Action{string}?, string?)"/> takes it from the checkpoint.</summary>
    public int? TrainedImageSize { get; init; }
    /// <summary>The confidence of the best mean F1 at the run's best epoch, stored in the metadata
    /// (<c>best_conf</c>) for <c>detect --conf best</c>; null: not recorded. Taken from the checkpoint.</summary>
    public double? BestConfidence { get; init; }
    /// <summary>Write an int8 model (QDQ form), calibrated on these images; needs <see cref="Fuse"/> and an opset of
    /// at least <see cref="OnnxExport.MinInt8Opset"/>. Null (default): float32.</summary>
    public OnnxInt8Options? Int8 { get; init; }
    /// <summary>End the graph with non-maximum suppression: a second output <c>detections</c> [N, 7] (batch index, x1,
    /// y1, x2, y2 in input pixels, score, class) beside <c>prediction</c>, so that any ONNX runtime gives final boxes;
    /// the settings and the letterbox rule go into the metadata. Null (default): no NMS in the graph.</summary>
    public OnnxNmsOptions? Nms { get; init; }
}

/// <summary>
/// Writes a DarkNet as an ONNX model built from the network itself: Conv (+ BatchNormalization unless folded),
/// LeakyRelu(0.1), Add for shortcuts, Concat for routes, MaxPool (for the 2×2 stride-1 case, which this port zero-pads
/// at the bottom and right as ultralytics does: Pad, then the maximum of four shifted slices), Resize (nearest) for upsample, and the yolo heads decoded in the graph. The output
/// <c>prediction</c> [batch, rows, 5 + nc] equals <see cref="DarkNetOutput.Detections"/> in eval mode: x, y, w, h in
/// input pixels, sigmoid objectness and class scores, rows by head (strides 32, 16, 8), anchor, grid row, grid column.
/// </summary>
public static partial class OnnxExport
{
    /// <summary>The raw heads' output name (with <see cref="OnnxExportOptions.RawOutput"/>).</summary>
    public const string RawOutputName = "raw";
    /// <summary>The lowest opset written (Resize and Pad take their sizes as inputs from 11 on).</summary>
    public const int MinOpset = 11;
    /// <summary>The highest opset written.</summary>
    public const int MaxOpset = 17;

    /// <summary>Writes <paramref name="model"/> (its current weights, eval-mode semantics) to <paramref name="path"/>
    /// atomically (temp file, then rename).</summary>
    /// <exception cref="ArgumentException">An option is out of range (opset, image size, batch size, class names).</exception>
    public static void Export(DarkNet model, string path, OnnxExportOptions? options = null)
    {
        var proto = Build(model, options ?? new OnnxExportOptions());
        AtomicFile.WriteAllBytes(path, proto.ToByteArray());
    }

    /// <summary>Writes the network of a weights file as an ONNX model: a .ckpt written by training carries its cfg,
    /// class names and training size (stored in the model's metadata); other weights need <paramref name="cfg"/>.
    /// Class names and image size in <paramref name="options"/> win over the checkpoint's.</summary>
    /// <param name="weightsPath">A .ckpt, or .weights, .pt/.pth, .safetensors with <paramref name="cfg"/>.</param>
    /// <param name="path">The .onnx file to write (atomically).</param>
    /// <param name="options">Export settings; default <see cref="OnnxExportOptions"/> with the checkpoint's names.</param>
    /// <param name="notice">Receives one-line notices (an older checkpoint without names or size).</param>
    /// <param name="cfg">The network's cfg file or built-in name, for weights that are not a .ckpt (overrides a checkpoint's).</param>
    /// <exception cref="InvalidInputException">The weights file is missing or does not fit, or weights other than a .ckpt come without a cfg.</exception>
    public static void Export(string weightsPath, string path, OnnxExportOptions? options = null, Action<string>? notice = null, string? cfg = null)
    {
        Backend.Initialize();
        var trained = TrainedModel.Open(weightsPath, cfg, null, null, notice);
        options ??= new OnnxExportOptions();
        using var model = trained.CreateNetwork();
        Export(model, path, options with
        {
            ClassNames = options.ClassNames ?? trained.ClassNames,
            TrainedImageSize = options.TrainedImageSize ?? trained.Checkpoint?.ImageSize,
            BestConfidence = options.BestConfidence ?? trained.Checkpoint?.BestConfidence,
        });
    }

    /// <summary>The ONNX model of <paramref name="model"/>, as <see cref="Export(DarkNet, string, OnnxExportOptions?)"/> writes it.</summary>
    public static ModelProto Build(DarkNet model, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Opset is < MinOpset or > MaxOpset)
            throw new ArgumentException($"opset {options.Opset} is not supported: use {MinOpset} to {MaxOpset}", nameof(options));
        if (options.ImageSize is { } size)
        {
            DarkNet.CheckImageSize(size.Height, "export height");
            DarkNet.CheckImageSize(size.Width, "export width");
        }
        if (!options.DynamicBatch && options.BatchSize <= 0)
            throw new ArgumentException($"batch size {options.BatchSize} must be positive", nameof(options));
        var names = options.ClassNames?.ToArray() ?? Enumerable.Range(0, model.NumClasses).Select(i => $"class{i}").ToArray();
        if (names.Length != model.NumClasses)
            throw new ArgumentException($"{names.Length} class names for a network of {model.NumClasses} classes", nameof(options));
        if (options.Int8 is not null && !options.Fuse)
            throw new ArgumentException("an int8 export folds the BatchNorms: it cannot keep BatchNormalization nodes (Fuse = false)", nameof(options));
        options.Nms?.Validate();
        if (options.Int8 is not null && options.Opset < MinInt8Opset)
            throw new ArgumentException($"an int8 export needs opset {MinInt8Opset} or higher (per-channel DequantizeLinear), not {options.Opset}", nameof(options));

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var net = options.Fuse ? model.Fuse() : model;
        try
        {
            var quantizer = options.Int8 is { } int8
                ? Quantizer.Quantizing(Calibrate(net, options, int8), int8.ReduceRange)
                : null;
            var g = new GraphWriter(options, model.Config.Channels, quantizer);
            WriteNetwork(g, net, options, HeadGrids(net, options));
            return g.ToModel(Metadata(model, names, options));
        }
        finally
        {
            if (!ReferenceEquals(net, model)) net.Dispose();
        }
    }

    /// <summary>For a fixed input size, each head's grid (ny, nx) from a forward pass (the strides the reference assigns,
    /// 32, 16, 8 by order, need not be the real downsampling of a custom cfg); null for a dynamic size.</summary>
    static (long Ny, long Nx)[]? HeadGrids(DarkNet net, OnnxExportOptions options)
    {
        if (options.ImageSize is not { } s) return null;
        var wasTraining = net.training;
        net.eval();
        try
        {
            var device = net.parameters().First().device;
            using var x = zeros([1, net.Config.Channels, s.Height, s.Width], device: device);
            var raw = net.forward(x).Raw;
            return raw.Select(r => (r.shape[2], r.shape[3])).ToArray();
        }
        finally { if (wasTraining) net.train(); }
    }

    /// <summary>A feature a shortcut adds, brought to the input's channel count as the reference's fusion does:
    /// zero-padded when narrower (so it adds into the first channels), sliced when wider.</summary>
    static string FitChannels(GraphWriter g, string p, string a, long na, long nx) =>
        na == nx ? a
        : na < nx ? g.Node("Pad", [a, g.Int64s($"{p}.pads", [0, 0, 0, 0, 0, nx - na, 0, 0], [8])], $"{p}.pad")
        : g.Node("Slice", [a, g.Int64s($"{p}.starts", [0], [1]), g.Int64s($"{p}.ends", [nx], [1]), g.Int64s($"{p}.axes", [1], [1])], $"{p}.slice");

    static void WriteNetwork(GraphWriter g, DarkNet net, OnnxExportOptions options, (long Ny, long Nx)[]? grids)
    {
        var defs = net.Cfg.Modules.ToArray();
        var channels = CfgGraph.outputChannels(net.Cfg).ToArray();
        var modules = net.Modules;
        var outputs = new string[defs.Length];
        var decoded = new List<string>();
        var raw = new List<string>();
        var q = g.Quantizer;
        string x = q is null ? OnnxRuntimeNetwork.InputName : q.Input(g, OnnxRuntimeNetwork.InputName);
        int head = 0;
        for (int i = 0; i < defs.Length; i++)
        {
            var def = defs[i];
            var p = $"module_list.{i}";
            switch (def.Layer)
            {
                case CfgM.Layer.Convolutional c:
                    x = ConvBlock(g, p, (Sequential)modules[i], c.Item, x);
                    break;
                case CfgM.Layer.Shortcut:
                    foreach (var l in CfgGraph.references(def))
                    {
                        var a = FitChannels(g, $"{p}.from{l}", outputs[l], channels[l], i == 0 ? net.Config.Channels : channels[i - 1]);
                        x = q is null ? g.Node("Add", [x, a], $"{p}.add{l}")
                            : q.Activation(g, g.Node("Add", [q.Ensure(g, x), q.Ensure(g, a)], $"{p}.add{l}"));
                    }
                    break;
                case CfgM.Layer.Route:
                    var from = CfgGraph.references(def).Select(l => outputs[l]).ToArray();
                    if (from.Length == 1) x = from[0];
                    else if (q is null) x = g.Node("Concat", from, $"{p}.concat", Attr.Int("axis", 1));
                    else x = q.Activation(g, g.Node("Concat", from.Select(f => q.Ensure(g, f)).ToArray(), $"{p}.concat", Attr.Int("axis", 1)));
                    break;
                case CfgM.Layer.MaxPool mp:
                    x = MaxPool(g, p, mp.Item, x);
                    break;
                case CfgM.Layer.Upsample u:
                    if (q is not null) x = q.Ensure(g, x);
                    var upsampled = x;
                    float s = u.Item.Stride;
                    var roi = g.Floats($"{p}.roi", [], [0]);
                    var scales = g.Floats($"{p}.scales", [1, 1, s, s], [4]);
                    x = g.Node("Resize", [x, roi, scales], $"{p}.resize", Attr.Str("mode", "nearest"),
                        Attr.Str("coordinate_transformation_mode", "asymmetric"), Attr.Str("nearest_mode", "floor"));
                    if (q is not null) x = q.Activation(g, x, sameAs: upsampled);
                    break;
                case CfgM.Layer.Yolo:
                    var (d, r) = YoloHead(g, p, net.YoloLayers[head], x, grids?[head]);
                    head++;
                    decoded.Add(d);
                    raw.Add(r);
                    break;
                default:
                    throw new InvalidOperationException($"layer {i}: {def.Layer} cannot be exported");
            }
            outputs[i] = x;
        }
        int no = net.NumClasses + 5;
        // the number of rows for a fixed input size (Σ na·ny·nx), else symbolic
        long? rows = grids?.Select((gr, k) => net.YoloLayers[k].NumAnchors * gr.Ny * gr.Nx).Sum();
        g.Output(decoded.Count == 1 ? g.Node("Identity", [decoded[0]], OnnxRuntimeNetwork.OutputName, output: OnnxRuntimeNetwork.OutputName)
            : g.Node("Concat", decoded.ToArray(), OnnxRuntimeNetwork.OutputName, output: OnnxRuntimeNetwork.OutputName, Attr.Int("axis", 1)), rows, no);
        if (options.Nms is { } nms) g.DetectionsOutput(NmsTail(g, OnnxRuntimeNetwork.OutputName, net.NumClasses, nms));
        if (options.RawOutput)
            g.Output(raw.Count == 1 ? g.Node("Identity", [raw[0]], RawOutputName, output: RawOutputName)
                : g.Node("Concat", raw.ToArray(), RawOutputName, output: RawOutputName, Attr.Int("axis", 1)), rows, no);
    }

    static string ConvBlock(GraphWriter g, string p, Sequential block, CfgM.ConvolutionalCfg c, string x)
    {
        var children = block.named_children().ToDictionary(ch => ch.name, ch => ch.module);
        var conv = (Conv2d)children["Conv2d"];
        int pad = c.Pad ? c.Size / 2 : 0;
        // int8: the leaky convs (all but the heads' linear ones), which a fused network gives a bias
        var q = c.Activation.IsLeaky && conv.bias is not null ? g.Quantizer : null;
        var inputs = q is not null ? [.. q.ConvInputs(g, p, q.Ensure(g, x), conv.weight!, conv.bias!)]
            : new List<string> { x, g.Weight($"{p}.Conv2d.weight", conv.weight!) };
        if (q is null && conv.bias is { } b) inputs.Add(g.Weight($"{p}.Conv2d.bias", b));
        var y = g.Node("Conv", inputs.ToArray(), $"{p}.Conv2d", Attr.Ints("kernel_shape", c.Size, c.Size),
            Attr.Ints("strides", c.Stride, c.Stride), Attr.Ints("pads", pad, pad, pad, pad), Attr.Ints("dilations", 1, 1),
            Attr.Int("group", 1));
        if (children.TryGetValue("BatchNorm2d", out var m) && m is Model.BatchNorm2d bn)
            y = g.Node("BatchNormalization",
                [y, g.Weight($"{p}.BatchNorm2d.weight", bn.weight!), g.Weight($"{p}.BatchNorm2d.bias", bn.bias!),
                 g.Weight($"{p}.BatchNorm2d.running_mean", bn.running_mean!), g.Weight($"{p}.BatchNorm2d.running_var", bn.running_var!)],
                $"{p}.BatchNorm2d", Attr.Float("epsilon", (float)bn.eps));
        if (q is not null) y = q.Activation(g, y);
        if (c.Activation.IsLeaky) y = g.Node("LeakyRelu", [y], $"{p}.activation", Attr.Float("alpha", 0.1f));
        if (q is not null) y = q.Activation(g, y);
        return y;
    }

    static string MaxPool(GraphWriter g, string p, CfgM.MaxPoolCfg mp, string x)
    {
        if (mp.Size == 2 && mp.Stride == 1)
        {
            // nn.ZeroPad2d((0, 1, 0, 1)): zeros (not MaxPool's -inf padding) at the bottom and right. The 2x2 maximum
            // is taken over four shifted slices, not by a MaxPool: ONNX Runtime's PadFusion folds a zero Pad into a
            // following MaxPool's pads, which pad with -inf (wrong wherever a window's values are all negative)
            var pads = g.Int64s($"{p}.pads", [0, 0, 0, 0, 0, 0, 1, 1], [8]);
            var y = g.Node("Pad", [x, pads], $"{p}.ZeroPad2d", Attr.Str("mode", "constant"));
            var axes = g.Int64s($"{p}.hw_axes", [2, 3], [2]);
            string Shift(int dy, int dx) =>
                g.Node("Slice", [y, g.Int64s($"{p}.start{dy}{dx}", [dy, dx], [2]),
                    g.Int64s($"{p}.end{dy}{dx}", [dy == 0 ? -1 : long.MaxValue, dx == 0 ? -1 : long.MaxValue], [2]), axes],
                    $"{p}.window{dy}{dx}");
            return g.Node("Max", [Shift(0, 0), Shift(0, 1), Shift(1, 0), Shift(1, 1)], $"{p}.MaxPool2d");
        }
        int pad = (mp.Size - 1) / 2;
        if (g.Quantizer is { } q)
        {
            var input = q.Ensure(g, x);
            var pooled = g.Node("MaxPool", [input], $"{p}.MaxPool2d", Attr.Ints("kernel_shape", mp.Size, mp.Size),
                Attr.Ints("strides", mp.Stride, mp.Stride), Attr.Ints("pads", pad, pad, pad, pad));
            return q.Activation(g, pooled, sameAs: input);
        }
        return g.Node("MaxPool", [x], $"{p}.MaxPool2d", Attr.Ints("kernel_shape", mp.Size, mp.Size),
            Attr.Ints("strides", mp.Stride, mp.Stride), Attr.Ints("pads", pad, pad, pad, pad));
    }

    /// <summary>
    /// One yolo head: [bs, na·no, ny, nx] → [bs, na, ny·nx, no], then xy = (sigmoid + grid)·stride,
    /// wh = exp·anchor_vec·stride, the rest sigmoid (the op order of <see cref="YoloLayer.Decode"/>), → [bs, na·ny·nx, no].
    /// </summary>
    static (string Decoded, string Raw) YoloHead(GraphWriter g, string p, YoloLayer yolo, string x, (long Ny, long Nx)? grid)
    {
        int na = yolo.NumAnchors, no = yolo.NumClasses + 5;
        var r = g.Node("Reshape", [x, g.Int64s($"{p}.head_shape", [0, na, no, -1], [4])], $"{p}.reshape");
        var t = g.Node("Transpose", [r], $"{p}.transpose", Attr.Ints("perm", 0, 1, 3, 2));
        var rowsShape = g.Int64s($"{p}.rows_shape", [0, -1, no], [3]);
        var raw = g.Node("Reshape", [t, rowsShape], $"{p}.raw");
        var axis = g.Int64s($"{p}.last_axis", [3], [1]);
        string Slice(string name, long start, long end) =>
            g.Node("Slice", [t, g.Int64s($"{p}.{name}_start", [start], [1]), g.Int64s($"{p}.{name}_end", [end], [1]), axis], $"{p}.{name}");
        var cells = grid is { } gr ? StaticGrid(g, p, gr.Ny, gr.Nx) : DynamicGrid(g, p, x);
        var stride = g.Floats($"{p}.stride", [yolo.Stride], []);
        var xy = g.Node("Mul", [g.Node("Add", [g.Node("Sigmoid", [Slice("xy", 0, 2)], $"{p}.xy_sigmoid"), cells], $"{p}.xy_grid"), stride], $"{p}.xy_px");
        using var anchorVec = yolo.AnchorVec.cpu().contiguous();
        var anchors = g.Floats($"{p}.anchor_vec", anchorVec.data<float>().ToArray(), [1, na, 1, 2]);
        var wh = g.Node("Mul", [g.Node("Mul", [g.Node("Exp", [Slice("wh", 2, 4)], $"{p}.wh_exp"), anchors], $"{p}.wh_anchor"), stride], $"{p}.wh_px");
        var rest = g.Node("Sigmoid", [Slice("scores", 4, long.MaxValue)], $"{p}.scores_sigmoid");
        var cat = g.Node("Concat", [xy, wh, rest], $"{p}.decoded_cells", Attr.Int("axis", 3));
        return (g.Node("Reshape", [cat, rowsShape], $"{p}.decoded"), raw);
    }

    /// <summary>The cell offsets [ny·nx, 2] = (column, row), row-major, as a constant.</summary>
    static string StaticGrid(GraphWriter g, string p, long ny, long nx)
    {
        var data = new float[ny * nx * 2];
        for (int k = 0; k < ny * nx; k++) { data[2 * k] = k % nx; data[2 * k + 1] = k / nx; }
        return g.Floats($"{p}.grid", data, [ny * nx, 2]);
    }

    /// <summary>The cell offsets [ny·nx, 2] computed from the head's runtime shape (dynamic input sizes).</summary>
    static string DynamicGrid(GraphWriter g, string p, string x)
    {
        var shape = g.Node("Shape", [x], $"{p}.grid_shape");
        var ny = g.Node("Gather", [shape, g.Int64s($"{p}.grid_h_index", [2], [])], $"{p}.grid_ny", Attr.Int("axis", 0));
        var nx = g.Node("Gather", [shape, g.Int64s($"{p}.grid_w_index", [3], [])], $"{p}.grid_nx", Attr.Int("axis", 0));
        var n = g.Node("Mul", [ny, nx], $"{p}.grid_cells");
        var k = g.Node("Range", [g.Int64s($"{p}.grid_zero", [0], []), n, g.Int64s($"{p}.grid_one", [1], [])], $"{p}.grid_k");
        var column = g.Int64s($"{p}.grid_column", [-1, 1], [2]);
        var cx = g.Node("Reshape", [g.Node("Mod", [k, nx], $"{p}.grid_x"), column], $"{p}.grid_x_col");
        var cy = g.Node("Reshape", [g.Node("Div", [k, nx], $"{p}.grid_y"), column], $"{p}.grid_y_col");
        var xy = g.Node("Concat", [cx, cy], $"{p}.grid_xy", Attr.Int("axis", 1));
        return g.Node("Cast", [xy], $"{p}.grid", Attr.Int("to", (long)TensorProto.Types.DataType.Float));
    }

    static Dictionary<string, string> Metadata(DarkNet model, string[] names, OnnxExportOptions options)
    {
        var anchors = model.YoloLayers.Select(y =>
        {
            using var a = y.AnchorsPx.cpu().contiguous();
            var v = a.data<float>().ToArray();
            return Enumerable.Range(0, y.NumAnchors).Select(k => new[] { (double)v[2 * k], v[2 * k + 1] }).ToArray();
        }).ToArray();
        var meta = new Dictionary<string, string>
        {
            [OnnxRuntimeNetwork.MetadataKeys.Names] = JsonSerializer.Serialize(names),
            [OnnxRuntimeNetwork.MetadataKeys.ImageSize] = options.ImageSize is { } s ? JsonSerializer.Serialize(new[] { s.Height, s.Width }) : "null",
            [OnnxRuntimeNetwork.MetadataKeys.Strides] = JsonSerializer.Serialize(model.YoloLayers.Select(y => y.Stride).ToArray()),
            [OnnxRuntimeNetwork.MetadataKeys.Anchors] = JsonSerializer.Serialize(anchors),
            [OnnxRuntimeNetwork.MetadataKeys.Cfg] = model.Config.ToCfgText(),
            [OnnxRuntimeNetwork.MetadataKeys.TrainImageSize] = options.TrainedImageSize is { } t ? JsonSerializer.Serialize(t) : "null",
            [OnnxRuntimeNetwork.MetadataKeys.BestConfidence] = options.BestConfidence is { } c ? JsonSerializer.Serialize(c) : "null",
            [OnnxRuntimeNetwork.MetadataKeys.Layout] = $"{OnnxRuntimeNetwork.OutputName}: [batch, rows, 5 + nc] = x, y, w, h (input pixels, box centre and size), " +
                "objectness, class scores (sigmoid; confidence = objectness x class score); rows by head (strides " +
                string.Join(", ", model.YoloLayers.Select(y => y.Stride)) + "), anchor, grid row, grid column" +
                (options.Nms is null ? "" : $"; {DetectionsOutputName}: [N, 7] = batch index, x1, y1, x2, y2 (input pixels), score, class, by batch index and descending score"),
        };
        if (options.Nms is { } nms)
        {
            meta[NmsMetadataKey] = JsonSerializer.Serialize(new
            {
                conf_thres = nms.ConfThreshold,
                iou_thres = nms.IouThreshold,
                max_det = nms.MaxDetections,
                agnostic = nms.Agnostic,
                multi_label = nms.MultiLabel && !nms.Agnostic,
            });
            meta[LetterboxMetadataKey] = "the input is the image resized by r = min(input height / image height, input width / image width) " +
                "(for a dynamic input: the long side to the chosen size, the short side padded to a multiple of 32), at pad_left, pad_top " +
                "(any padding; yolospp pads both sides evenly, a plain right/bottom padding works as well); " +
                "a box of detections maps back to the image as x = (x_input - pad_left) / r, y = (y_input - pad_top) / r";
        }
        return meta;
    }

    /// <summary>Attribute builders.</summary>
    static class Attr
    {
        public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
        public static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };
        public static AttributeProto Str(string name, string v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };
        public static AttributeProto Ints(string name, params long[] v)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.Add(v);
            return a;
        }
    }

    /// <summary>Accumulates nodes and initializers; names are unique (the state-dict names for weights).</summary>
    sealed class GraphWriter(OnnxExportOptions options, int channels, Quantizer? quantizer = null)
    {
        /// <summary>Where int8 quantization goes (also while calibrating), or null for a float32 graph.</summary>
        public Quantizer? Quantizer => quantizer;

        readonly GraphProto _graph = new() { Name = "YoloSpp DarkNet" };
        readonly HashSet<string> _names = [];

        string Unique(string name) => _names.Add(name) ? name : throw new InvalidOperationException($"duplicate ONNX name {name}");

        public string Node(string op, string[] inputs, string name, params AttributeProto[] attributes) =>
            Node(op, inputs, name, null, attributes);

        /// <summary>A node of several outputs (name:0, name:1, …).</summary>
        public string[] Nodes(string op, string[] inputs, string name, int outputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = Unique(name) };
            node.Input.Add(inputs);
            var names = Enumerable.Range(0, outputs).Select(k => $"{name}:{k}").ToArray();
            node.Output.Add(names);
            node.Attribute.Add(attributes);
            _graph.Node.Add(node);
            return names;
        }

        /// <summary>The opset written.</summary>
        public int Opset => options.Opset;

        public string Node(string op, string[] inputs, string name, string? output, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = Unique(name) };
            node.Input.Add(inputs);
            var o = output ?? name + ":0";
            node.Output.Add(o);
            node.Attribute.Add(attributes);
            _graph.Node.Add(node);
            return o;
        }

        string Initializer(string name, TensorProto.Types.DataType type, long[] dims, ByteString bytes)
        {
            var t = new TensorProto { Name = Unique(name), DataType = (int)type, RawData = bytes };
            t.Dims.Add(dims);
            _graph.Initializer.Add(t);
            return name;
        }

        public string Bytes(string name, TensorProto.Types.DataType type, ReadOnlySpan<byte> data, long[] dims) =>
            Initializer(name, type, dims, ByteString.CopyFrom(data));

        public string Floats(string name, float[] data, long[] dims) =>
            Initializer(name, TensorProto.Types.DataType.Float, dims, ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan())));

        public string Int64s(string name, long[] data, long[] dims) =>
            Initializer(name, TensorProto.Types.DataType.Int64, dims, ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan())));

        public string Weight(string name, Tensor t)
        {
            using var c = t.detach().cpu().to(ScalarType.Float32).contiguous();
            return Floats(name, c.data<float>().ToArray(), c.shape);
        }

        static TensorShapeProto.Types.Dimension Dim(long? value, string symbol) =>
            value is { } v ? new() { DimValue = v } : new() { DimParam = symbol };

        static ValueInfoProto Value(string name, params TensorShapeProto.Types.Dimension[] dims)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(dims);
            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
            };
        }

        long? Batch => options.DynamicBatch ? null : options.BatchSize;

        /// <summary>An intermediate tensor as an extra output, shape left to the runtime (calibration).</summary>
        public void ValueOutput(string name) =>
            _graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });

        public void Output(string name, long? rows, int no) =>
            _graph.Output.Add(Value(name, Dim(Batch, "batch"), Dim(rows, "rows"), Dim(no, "")));

        /// <summary>The NMS output: [detections, 7].</summary>
        public void DetectionsOutput(string name) =>
            _graph.Output.Add(Value(name, Dim(null, "detections"), Dim(7, "")));

        public ModelProto ToModel(IReadOnlyDictionary<string, string> metadata)
        {
            var (h, w) = options.ImageSize is { } s ? ((long?)s.Height, (long?)s.Width) : (null, null);
            _graph.Input.Add(Value(OnnxRuntimeNetwork.InputName, Dim(Batch, "batch"), Dim(channels, ""), Dim(h, "height"), Dim(w, "width")));
            var model = new ModelProto
            {
                // IR 7 goes with opsets up to 14, IR 8 with 15 to 17
                IrVersion = options.Opset <= 14 ? 7 : 8,
                ProducerName = "YoloSpp",
                ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
                DocString = "YOLOv3-SPP (Darknet cfg) exported by YoloSpp",
                Graph = _graph,
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
            foreach (var (k, v) in metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
            return model;
        }
    }
}
