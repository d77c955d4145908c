using YoloSpp.Model;

namespace YoloSpp.Model;

/// <summary>One row of a model summary.</summary>
/// <param name="Index">Module index.</param>
/// <param name="Type">cfg section name.</param>
/// <param name="Output">Output shape without the batch: [C, H, W], or [anchors, H, W, classes + 5] for yolo layers.</param>
/// <param name="Parameters">Parameter count of the module.</param>
public sealed record LayerSummary(int Index, string Type, long[] Output, long Parameters);

/// <summary>A model summary like the reference's model_info.</summary>
/// <param name="Layers">Per-module rows.</param>
/// <param name="ParameterTensors">Number of parameter tensors (the reference's "layers" count).</param>
/// <param name="Parameters">Total parameters.</param>
/// <param name="Gradients">Parameters that require gradients.</param>
/// <param name="Gflops">GFLOPs of one forward pass at the summary size (2 × conv multiply-accumulates).</param>
/// <param name="Height">Input height the shapes are for.</param>
/// <param name="Width">Input width the shapes are for.</param>
/// <param name="FusedParameterTensors">Parameter tensors once conv+BN pairs are folded for inference.</param>
public sealed record ModelSummary(IReadOnlyList<LayerSummary> Layers, int ParameterTensors, long Parameters, long Gradients,
    double Gflops, int Height, int Width, int FusedParameterTensors);

/// <summary>Builds model summaries.</summary>
public static class ModelInfo
{
    /// <summary>Summarises a network at an input size (shapes come from the cfg; no forward pass is run).</summary>
    public static ModelSummary Describe(DarkNet model, int height, int width)
    {
        DarkNet.CheckImageSize(height, "image height");
        DarkNet.CheckImageSize(width, "image width");
        model.CheckFits(height, width);
        var shapes = Summary.layerShapes(model.Cfg, height, width).ToArray();
        var rows = shapes.Select(s => new LayerSummary(s.Index, s.Type, s.Shape,
            model.Modules[s.Index].parameters().Sum(p => p.numel()))).ToArray();
        var pars = model.parameters().ToArray();
        // folding removes each BN's weight and bias and gives a bias to its conv: one tensor fewer per pair
        int bnPairs = model.Cfg.Modules.Count(m => m.Layer is Cfg.Layer.Convolutional c && c.Item.BatchNormalize);
        int fused = model.IsFused ? pars.Length : pars.Length - bnPairs;
        return new ModelSummary(rows, pars.Length, pars.Sum(p => p.numel()), pars.Where(p => p.requires_grad).Sum(p => p.numel()),
            Summary.gflops(model.Cfg, height, width), height, width, fused);
    }
}
