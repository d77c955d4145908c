using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// Adam (Kingma and Ba, arXiv 1412.6980) as <c>torch.optim.Adam</c> computes it, or with <see cref="Decoupled"/> AdamW
/// (Loshchilov and Hutter, arXiv 1711.05101) as <c>torch.optim.AdamW</c>, over yolov5's parameter groups: weight decay
/// only where <see cref="Decays"/> says (the trainer's rule: convolution weights, not BatchNorm weights or biases).
/// Per parameter with a gradient, in torch's order: <c>p = p·(1 − lr·wd)</c> (AdamW) or <c>g = g + wd·p</c> (Adam);
/// <c>t += 1</c>; <c>m = β1·m + (1 − β1)·g</c>; <c>v = β2·v + (1 − β2)·g²</c>;
/// <c>p = p − lr / (1 − β1^t) · m / (√v / √(1 − β2^t) + ε)</c>. A parameter without a gradient is skipped (its step
/// count too), as torch does. Every factor is a Scalar owned for the whole step (see <see cref="Sgd"/> for why).
/// </summary>
public sealed class Adam : IOptimizer
{
    readonly Parameter[] _params;
    readonly bool[] _decays;
    readonly Tensor?[] _expAvg, _expAvgSq;
    readonly long[] _steps;

    /// <summary>Creates the optimizer. <paramref name="decays"/>: per parameter, whether weight decay applies to it
    /// (null: every parameter, as one torch param group).</summary>
    public Adam(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weightDecay = 0, bool decoupled = false, IEnumerable<bool>? decays = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (lr < 0) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be >= 0");
        if (beta1 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1)");
        if (beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1)");
        if (eps < 0) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be >= 0");
        if (weightDecay < 0) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be >= 0");
        _params = parameters.ToArray();
        _decays = decays?.ToArray() ?? Enumerable.Repeat(true, _params.Length).ToArray();
        if (_decays.Length != _params.Length)
            throw new ArgumentException($"{_decays.Length} weight-decay flags for {_params.Length} parameters", nameof(decays));
        _expAvg = new Tensor?[_params.Length];
        _expAvgSq = new Tensor?[_params.Length];
        _steps = new long[_params.Length];
        (LearningRate, Beta1, Beta2, Eps, WeightDecay, Decoupled) = (lr, beta1, beta2, eps, weightDecay, decoupled);
    }

    /// <summary>The rule of yolov5's parameter groups: weight decay on parameters of more than one dimension
    /// (convolution weights), none on BatchNorm weights and biases.</summary>
    public static bool DecaysByDefault(Parameter p) => p.dim() > 1;

    /// <inheritdoc/>
    public OptimizerKind Kind => Decoupled ? OptimizerKind.AdamW : OptimizerKind.Adam;
    /// <inheritdoc/>
    public IReadOnlyList<Parameter> Parameters => _params;
    /// <summary>Per parameter, whether weight decay applies to it.</summary>
    public IReadOnlyList<bool> Decays => _decays;
    /// <inheritdoc/>
    public double LearningRate { get; set; }
    /// <summary>Decay of the first moment (the hyperparameters' momentum).</summary>
    public double Beta1 { get; }
    /// <summary>Decay of the second moment.</summary>
    public double Beta2 { get; }
    /// <summary>Added to the second moment's root.</summary>
    public double Eps { get; }
    /// <summary>Weight decay of the parameters that decay.</summary>
    public double WeightDecay { get; }
    /// <summary>AdamW's decoupled weight decay instead of Adam's L2 term in the gradient.</summary>
    public bool Decoupled { get; }
    /// <inheritdoc/>
    public long Steps { get; private set; }
    /// <summary>Per parameter, the steps it took (torch's per-parameter <c>step</c>).</summary>
    public IReadOnlyList<long> ParameterSteps => _steps;
    /// <summary>Per parameter, the first moment (null before its first step).</summary>
    public IReadOnlyList<Tensor?> ExpAvg => _expAvg;
    /// <summary>Per parameter, the second moment (null before its first step).</summary>
    public IReadOnlyList<Tensor?> ExpAvgSq => _expAvgSq;

    /// <inheritdoc/>
    public void Step()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var beta1 = Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - Beta1).ToScalar();
        using var beta2 = Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - Beta2).ToScalar();
        using var eps = Eps.ToScalar();
        using var wd = WeightDecay.ToScalar();
        using var shrink = (1 - LearningRate * WeightDecay).ToScalar();
        for (int i = 0; i < _params.Length; i++)
        {
            using var parameterScope = NewDisposeScope();
            var p = _params[i];
            var g = p.grad;
            if (g is null) continue;
            bool decay = _decays[i] && WeightDecay != 0;
            if (decay && Decoupled) p.mul_(shrink);
            var d = decay && !Decoupled ? g.add(p, wd) : g;
            if (_expAvg[i] is null)
            {
                _expAvg[i] = zeros_like(p).detach().DetachFromDisposeScope();
                _expAvgSq[i] = zeros_like(p).detach().DetachFromDisposeScope();
            }
            long t = ++_steps[i];
            var m = _expAvg[i]!;
            var v = _expAvgSq[i]!;
            m.mul_(beta1).add_(d, oneMinusBeta1);
            v.mul_(beta2).addcmul_(d, d, oneMinusBeta2);
            using var rootCorrection = Math.Sqrt(1 - Math.Pow(Beta2, t)).ToScalar();
            using var stepSize = (-LearningRate / (1 - Math.Pow(Beta1, t))).ToScalar();
            // an owned alpha: add_(Scalar) alone passes a temporary 1 that a GC on another thread can free mid-call
            var denom = v.sqrt().div_(rootCorrection).add_(eps, Tensors.one);
            p.addcdiv_(m, denom, stepSize);
        }
        Steps++;
    }

    /// <inheritdoc/>
    public void ZeroGrad() => Sgd.ZeroGradients(_params);

    /// <summary>Replaces the moments and step counts (e.g. from a checkpoint); each moment must match its
    /// parameter's shape, and a parameter has both moments or neither.</summary>
    public void LoadState(IReadOnlyList<Tensor?> expAvg, IReadOnlyList<Tensor?> expAvgSq, IReadOnlyList<long> parameterSteps, long steps)
    {
        if (expAvg.Count != _params.Length || expAvgSq.Count != _params.Length || parameterSteps.Count != _params.Length)
            throw new ArgumentException($"optimizer state has {expAvg.Count}/{expAvgSq.Count} moments and {parameterSteps.Count} step counts, the model {_params.Length} trainable parameters");
        for (int i = 0; i < _params.Length; i++)
        {
            if ((expAvg[i] is null) != (expAvgSq[i] is null))
                throw new ArgumentException($"parameter {i} has one moment without the other");
            foreach (var (b, name) in new[] { (expAvg[i], "first"), (expAvgSq[i], "second") })
                if (b is not null && !b.shape.SequenceEqual(_params[i].shape))
                    throw new ArgumentException($"{name} moment {i} is [{string.Join(", ", b.shape)}], its parameter [{string.Join(", ", _params[i].shape)}]");
        }
        for (int i = 0; i < _params.Length; i++)
        {
            _expAvg[i]?.Dispose();
            _expAvgSq[i]?.Dispose();
            _expAvg[i] = expAvg[i]?.to(_params[i].dtype, _params[i].device, copy: true).detach().DetachFromDisposeScope();
            _expAvgSq[i] = expAvgSq[i]?.to(_params[i].dtype, _params[i].device, copy: true).detach().DetachFromDisposeScope();
            _steps[i] = parameterSteps[i];
        }
        Steps = steps;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        for (int i = 0; i < _params.Length; i++)
        {
            _expAvg[i]?.Dispose();
            _expAvgSq[i]?.Dispose();
            _expAvg[i] = _expAvgSq[i] = null;
        }
    }
}
