using Shapes = YoloSpp.Data.Shapes;
using YoloSpp.IO;
using Hyp = YoloSpp.Training.Hyp;
using Loss = YoloSpp.Training.Loss;

namespace YoloSpp;

/// <summary>Training hyperparameters (the reference's hyp.yaml), read with line-numbered errors.</summary>
public sealed class HyperParameters
{
    internal Hyp.Hyp Core { get; }

    HyperParameters(Hyp.Hyp core) => Core = core;

    /// <summary>The reference's defaults (cfg/hyp.yaml, gr = 1).</summary>
    public static HyperParameters Default { get; } = new(Hyp.defaults);

    static readonly Lazy<HyperParameters> ShapesRecipe = new(() => Parse(Recipes.SourceName("hyp.shapes.yaml"), Recipes.Read("hyp.shapes.yaml")));
    static readonly Lazy<HyperParameters> ReferenceRecipe = new(() => Parse(Recipes.SourceName("hyp.yaml"), Recipes.Read("hyp.yaml")));

    /// <summary>The built-in <c>shapes</c> recipe: the demo's hyperparameters for training from scratch on a CPU
    /// (the repository's cfg/hyp.shapes.yaml, embedded in the library).</summary>
    public static HyperParameters Shapes => ShapesRecipe.Value;

    /// <summary>The built-in <c>reference</c> recipe: the reference trainer's cfg/hyp.yaml (tuned for fine-tuning
    /// pretrained weights), embedded in the library; the same values as <see cref="Default"/>.</summary>
    public static HyperParameters Reference => ReferenceRecipe.Value;

    /// <summary>The names of the built-in recipes: <c>shapes</c>, <c>reference</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["shapes", "reference"];

    /// <summary>A built-in recipe by name (<see cref="Names"/>, case-insensitive).</summary>
    /// <exception cref="ArgumentException">Not a built-in name.</exception>
    public static HyperParameters Named(string name) => (name ?? "").ToLowerInvariant() switch
    {
        "shapes" => Shapes,
        "reference" => Reference,
        _ => throw new ArgumentException($"'{name}' is not a built-in hyperparameter recipe (known: {string.Join(", ", Names)})", nameof(name)),
    };

    /// <summary>A hyp.yaml file, or, when <paramref name="pathOrName"/> is one of <see cref="Names"/> and no such file
    /// exists, that built-in recipe.</summary>
    /// <exception cref="InvalidInputException">Neither a file nor a built-in name, or a malformed file (every problem as file:line: reason).</exception>
    public static HyperParameters LoadOrNamed(string pathOrName)
    {
        ArgumentNullException.ThrowIfNull(pathOrName);
        if (!File.Exists(pathOrName) && Names.Contains(pathOrName.ToLowerInvariant())) return Named(pathOrName);
        if (!File.Exists(pathOrName))
            throw new InvalidInputException(pathOrName, $"no such hyp file (nor a built-in recipe: {string.Join(", ", Names)})");
        return Load(pathOrName);
    }

    /// <summary>Reads a hyp.yaml file. Throws <see cref="InvalidInputException"/> listing every problem as file:line: reason
    /// (a missing, binary or deeply nested file included).</summary>
    /// <exception cref="InvalidInputException">The file is missing or malformed.</exception>
    public static HyperParameters Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Parse(path, TextFile.Read(path, "hyp"));
    }

    static HyperParameters Parse(string source, string text)
    {
        var result = Hyp.parse(source, text);
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
    /// <summary>IoU threshold of the target assignment (<c>iou_t</c>), also the anchor search's fitness threshold.</summary>
    public double IouThreshold => Core.IouT;
    /// <summary>Final learning-rate fraction of the cosine schedule.</summary>
    public double Lrf => Core.Lrf;
    /// <summary>SGD momentum (Adam's beta1).</summary>
    public double Momentum => Core.Momentum;
    /// <summary>Weight decay (SGD: every parameter; Adam and AdamW: convolution weights).</summary>
    public double WeightDecay => Core.WeightDecay;
    /// <summary>Objectness-target GIoU ratio.</summary>
    public double Gr => Core.Gr;
    /// <summary>The optimizer the recipe names (key <c>optimizer</c>; SGD, the reference's, when absent).</summary>
    public OptimizerKind Optimizer => (OptimizerKind)(int)Core.Optimizer;

    /// <summary>The loss's view of these hyperparameters (gains, positive weights, iou_t, fl_gamma).</summary>
    internal Loss.LossHyp LossHyperParameters => Hyp.toLossHyp(Core);

    /// <summary>Objectness-target GIoU ratio at a global iteration: <see cref="Gr"/>, or its linear ramp from 0 (hyp gr_ramp).</summary>
    public double GrAt(int iteration) => Hyp.grAt(Math.Max(iteration, 0), Core);

    /// <summary>The hyperparameters as yaml text.</summary>
    public override string ToString() => Hyp.toYaml(Core);
}
