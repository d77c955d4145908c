using YoloSpp.Training;

namespace YoloSpp;

/// <summary>Training hyperparameters (the reference's hyp.yaml), read with line-numbered errors.</summary>
public sealed class HyperParameters
{
    internal Hyp.Hyp Core { get; }

    HyperParameters(Hyp.Hyp core) => Core = core;

    /// <summary>The reference's defaults (cfg/hyp.yaml, gr = 1).</summary>
    public static HyperParameters Default { get; } = new(Hyp.defaults);

    /// <summary>Reads a hyp.yaml file. Throws <see cref="InvalidInputException"/> listing every problem as file:line: reason
    /// (a missing, binary or deeply nested file included).</summary>
    public static HyperParameters Load(string path)
    {
        var text = TextFile.Read(path, "hyp");
        var result = Hyp.parse(path, text);
        if (result.IsError)
            throw InvalidInputException.From(result.ErrorValue);
        return new HyperParameters(result.ResultValue);
    }

    /// <summary>The reference train.py's adjustments: cls × nc/80 and obj × imgSize/320.</summary>
    public HyperParameters AdjustedFor(int numClasses, int imageSize) =>
        new(Hyp.adjustForDataset(numClasses, imageSize, Core));

    /// <summary>train_multi_GPU.py's scaling for <paramref name="worldSize"/> processes of <paramref name="batchSize"/>
    /// images: lr0 × max(1, worldSize · batch / 64); unchanged for one process (train.py).</summary>
    public HyperParameters AdjustedForWorld(int worldSize, int batchSize) =>
        new(Hyp.adjustForWorld(worldSize, batchSize, Core));

    /// <summary>Initial learning rate.</summary>
    public double Lr0 => Core.Lr0;
    /// <summary>Final learning-rate fraction of the cosine schedule.</summary>
    public double Lrf => Core.Lrf;
    /// <summary>SGD momentum.</summary>
    public double Momentum => Core.Momentum;
    /// <summary>SGD weight decay.</summary>
    public double WeightDecay => Core.WeightDecay;
    /// <summary>Objectness-target GIoU ratio.</summary>
    public double Gr => Core.Gr;

    /// <summary>The loss's view of these hyperparameters (gains, positive weights, iou_t, fl_gamma).</summary>
    internal Loss.LossHyp LossHyperParameters => Hyp.toLossHyp(Core);

    /// <summary>Objectness-target GIoU ratio at a global iteration: <see cref="Gr"/>, or its linear ramp from 0 (hyp gr_ramp).</summary>
    public double GrAt(int iteration) => Hyp.grAt(Math.Max(iteration, 0), Core);

    /// <summary>The hyperparameters as yaml text.</summary>
    public override string ToString() => Hyp.toYaml(Core);
}
