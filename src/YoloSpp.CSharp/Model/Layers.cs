using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Model;

/// <summary>[route]: concatenates earlier outputs along channels (the reference's FeatureConcat).</summary>
internal sealed class FeatureConcat : nn.Module
{
    /// <summary>Absolute indices of the layers whose outputs are concatenated, in cfg order.</summary>
    public int[] Layers { get; }

    /// <summary>Creates the route over absolute layer indices.</summary>
    public FeatureConcat(int[] layers) : base(nameof(FeatureConcat)) => Layers = layers;

    /// <summary>The concatenation (or the single routed output itself).</summary>
    public Tensor Forward(IReadOnlyList<Tensor?> outputs) =>
        Layers.Length == 1 ? outputs[Layers[0]]! : cat(Layers.Select(i => outputs[i]!).ToArray(), 1);
}

/// <summary>[shortcut]: adds earlier outputs to the previous one (the reference's WeightedFeatureFusion, unweighted).</summary>
internal sealed class WeightedFeatureFusion : nn.Module
{
    /// <summary>Absolute indices of the layers added to the input.</summary>
    public int[] Layers { get; }

    /// <summary>Creates the shortcut over absolute layer indices.</summary>
    public WeightedFeatureFusion(int[] layers) : base(nameof(WeightedFeatureFusion)) => Layers = layers;

    /// <summary>
    /// x + outputs[l] for each layer l, in cfg order, over the channels they share, as the reference's fusion: a
    /// feature with fewer channels than x is added into x's first channels (x[:, :na] += a), one with more is sliced
    /// to x's (x + a[:, :nx]). The output keeps x's channel count. The reference adds in place, which also changes x
    /// where a later route reads it; here x is left as it was (no cfg of the reference's relies on that).
    /// </summary>
    public Tensor Forward(Tensor x, IReadOnlyList<Tensor?> outputs)
    {
        long nx = x.shape[1];
        foreach (var l in Layers)
        {
            var a = outputs[l]!;
            long na = a.shape[1];
            if (na == nx) x = x.add(a, Tensors.one);
            else if (nx > na)
                x = cat([x[TensorIndex.Colon, TensorIndex.Slice(0, na)].add(a, Tensors.one), x[TensorIndex.Colon, TensorIndex.Slice(na, null)]], 1);
            else x = x.add(a[TensorIndex.Colon, TensorIndex.Slice(0, nx)], Tensors.one);
        }
        return x;
    }
}

/// <summary>
/// [yolo]: reshapes a prediction conv's output to [bs, na, ny, nx, nc + 5]; in eval mode also decodes it to
/// boxes in input pixels with sigmoid objectness and class scores (the reference's YOLOLayer).
/// </summary>
public sealed class YoloLayer : nn.Module
{
    // the backing fields carry the buffers' names: TorchSharp's RegisterComponents would otherwise register them a
    // second time, as persistent "<AnchorsPx>k__BackingField" tensors that the reference's state dicts lack
    /// <summary>This layer's anchors in input pixels [na, 2].</summary>
    [field: TorchSharp.Utils.ComponentName(Name = "anchors_px")]
    public Tensor AnchorsPx { get; }
    /// <summary>Anchors in grid units (anchors / stride) [na, 2], as the loss uses them.</summary>
    [field: TorchSharp.Utils.ComponentName(Name = "anchor_vec")]
    public Tensor AnchorVec { get; }
    /// <summary>Stride in pixels: 32, 16, 8 by order of appearance, as the reference assigns them.</summary>
    public int Stride { get; }
    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }
    /// <summary>Number of anchors.</summary>
    public int NumAnchors { get; }

    (long ny, long nx, Device device, ScalarType dtype)? _gridKey;
    Tensor? _grid;

    /// <summary>Creates a yolo layer from its anchors (pixels), stride and class count.</summary>
    public YoloLayer(double[,] anchorsPx, int stride, int numClasses) : base("YOLOLayer")
    {
        NumAnchors = anchorsPx.GetLength(0);
        var flat = new float[NumAnchors * 2];
        for (int i = 0; i < NumAnchors; i++) { flat[2 * i] = (float)anchorsPx[i, 0]; flat[2 * i + 1] = (float)anchorsPx[i, 1]; }
        AnchorsPx = tensor(flat).view(NumAnchors, 2);
        using (var s = ((double)stride).ToScalar()) AnchorVec = AnchorsPx.div(s);
        register_buffer("anchors_px", AnchorsPx, persistent: false);
        register_buffer("anchor_vec", AnchorVec, persistent: false);
        Stride = stride;
        NumClasses = numClasses;
    }

    /// <summary>Raw head [bs, na, ny, nx, nc + 5] from the conv output [bs, na·(nc + 5), ny, nx].</summary>
    public Tensor Raw(Tensor p)
    {
        long bs = p.shape[0], ny = p.shape[2], nx = p.shape[3], no = NumClasses + 5;
        if (p.shape[1] != NumAnchors * no)
            throw new InvalidOperationException($"yolo layer: input has {p.shape[1]} channels, expected {NumAnchors}*({NumClasses}+5) = {NumAnchors * no}");
        // reshape, not view: a channels-last input is not contiguous in NCHW order
        return p.reshape(bs, NumAnchors, no, ny, nx).permute(0, 1, 3, 4, 2).contiguous();
    }

    Tensor Grid(long ny, long nx, Device device, ScalarType dtype)
    {
        var key = (ny, nx, device, dtype);
        if (_grid is null || _gridKey != key)
        {
            _grid?.Dispose();
            var ys = Tensors.arangeN(ny, dtype, device);
            var xs = Tensors.arangeN(nx, dtype, device);
            var mesh = meshgrid(new[] { ys, xs }, indexing: "ij");
            // cell (x, y) = (column along W, row along H)
            _grid = stack(new[] { mesh[1], mesh[0] }, 2).view(1, 1, ny, nx, 2).DetachFromDisposeScope();
            _gridKey = key;
        }
        return _grid;
    }

    /// <summary>
    /// Decodes a raw head: xy = (sigmoid(t_xy) + grid)·stride, wh = exp(t_wh)·anchor, objectness and classes
    /// sigmoid (classes are not multiplied by objectness here; NMS does that). Returns [bs, na·ny·nx, nc + 5].
    /// </summary>
    public Tensor Decode(Tensor raw)
    {
        long bs = raw.shape[0], ny = raw.shape[2], nx = raw.shape[3];
        var grid = Grid(ny, nx, raw.device, raw.dtype);
        var anchorWh = AnchorVec.to(raw.dtype, raw.device).view(1, NumAnchors, 1, 1, 2);
        using var stride = ((double)Stride).ToScalar();
        var xy = raw[TensorIndex.Ellipsis, TensorIndex.Slice(0, 2)].sigmoid().add(grid, Tensors.one).mul(stride);
        var wh = (raw[TensorIndex.Ellipsis, TensorIndex.Slice(2, 4)].exp() * anchorWh).mul(stride);
        var rest = raw[TensorIndex.Ellipsis, TensorIndex.Slice(4, null)].sigmoid();
        return cat(new[] { xy, wh, rest }, -1).view(bs, -1, NumClasses + 5);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _grid?.Dispose();
        base.Dispose(disposing);
    }
}
