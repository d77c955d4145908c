using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// Stochastic gradient descent as <c>torch.optim.SGD</c> computes it (momentum, dampening, weight decay, Nesterov),
/// the optimizer of the reference's train.py: weight decay on every parameter there, or, as yolov5's parameter groups,
/// only where <see cref="Decays"/> says. Per parameter, in this order:
/// <c>d = g + wd·p</c>; <c>buf = d</c> on the first step, else <c>buf = momentum·buf + (1 − dampening)·d</c>;
/// <c>d = d + momentum·buf</c> (Nesterov) or <c>d = buf</c>; <c>p = p − lr·d</c>.
/// Written here rather than taken from TorchSharp because TorchSharp's SGD passes every factor as a temporary
/// Scalar left to the finalizer, which a GC on another thread (the data loader's) can free mid-call; this one owns
/// its Scalars for the whole step.
/// </summary>
public sealed class Sgd : IOptimizer
{
    readonly Parameter[] _params;
    readonly bool[] _decays;
    readonly Tensor?[] _buffers;

    /// <summary>The parameters, in the order of their momentum buffers.</summary>
    public IReadOnlyList<Parameter> Parameters => _params;
    /// <inheritdoc/>
    public OptimizerKind Kind => OptimizerKind.Sgd;
    /// <summary>Learning rate of the next step (the schedules set it per epoch or per batch).</summary>
    public double LearningRate { get; set; }
    /// <summary>Momentum factor.</summary>
    public double Momentum { get; }
    /// <summary>L2 penalty added to the gradient of the parameters that decay.</summary>
    public double WeightDecay { get; }
    /// <summary>Per parameter, whether weight decay applies to it (all true: the reference's one group).</summary>
    public IReadOnlyList<bool> Decays => _decays;
    /// <summary>Dampening of the momentum.</summary>
    public double Dampening { get; }
    /// <summary>Whether the Nesterov form is used.</summary>
    public bool Nesterov { get; }
    /// <summary>Steps taken.</summary>
    public long Steps { get; private set; }

    /// <summary>Creates the optimizer; as torch.optim.SGD, Nesterov needs momentum and no dampening.
    /// <paramref name="decays"/>: per parameter, whether weight decay applies to it (null: every parameter, as one
    /// torch param group; <see cref="Adam.DecaysByDefault"/> gives yolov5's groups).</summary>
    public Sgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double weightDecay = 0, bool nesterov = false, double dampening = 0,
        IEnumerable<bool>? decays = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (lr < 0) throw new ArgumentOutOfRangeException(nameof(lr), lr, "learning rate must be >= 0");
        if (momentum < 0) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be >= 0");
        if (weightDecay < 0) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be >= 0");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException("Nesterov momentum requires a momentum and zero dampening");
        _params = parameters.ToArray();
        _decays = decays?.ToArray() ?? Enumerable.Repeat(true, _params.Length).ToArray();
        if (_decays.Length != _params.Length)
            throw new ArgumentException($"{_decays.Length} weight-decay flags for {_params.Length} parameters", nameof(decays));
        _buffers = new Tensor?[_params.Length];
        LearningRate = lr;
        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
        Dampening = dampening;
    }

    /// <summary>The momentum buffer of each parameter (null before its first step).</summary>
    public IReadOnlyList<Tensor?> MomentumBuffers => _buffers;

    /// <summary>One step over every parameter that has a gradient.</summary>
    public void Step()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var wd = WeightDecay.ToScalar();
        using var keep = (1 - Dampening).ToScalar();
        using var momentum = Momentum.ToScalar();
        using var negLr = (-LearningRate).ToScalar();
        for (int i = 0; i < _params.Length; i++)
        {
            // each parameter's temporaries are freed before the next one's are made: the memory is reused while it
            // is in cache, and a large network's step does not hold two extra copies of every gradient to its end
            using var parameterScope = NewDisposeScope();
            var p = _params[i];
            var g = p.grad;
            if (g is null) continue;
            // d is a temporary of this step once weight decay made it; the gradient itself is never changed
            bool ownsD = _decays[i] && WeightDecay != 0;
            var d = ownsD ? g.add(p, wd) : g;
            if (Momentum != 0)
            {
                var buf = _buffers[i];
                if (buf is null)
                {
                    buf = d.clone().detach().DetachFromDisposeScope();
                    _buffers[i] = buf;
                }
                else buf.mul_(momentum).add_(d, keep);
                d = !Nesterov ? buf : ownsD ? d.add_(buf, momentum) : d.add(buf, momentum);
            }
            p.add_(d, negLr);
        }
        Steps++;
    }

    /// <summary>Sets every gradient to zero (as torch's zero_grad(set_to_none=False)).</summary>
    public void ZeroGrad() => ZeroGradients(_params);

    /// <summary>Sets the gradients of <paramref name="parameters"/> to zero, detached (torch's zero_grad(set_to_none=False)).</summary>
    internal static void ZeroGradients(IEnumerable<Parameter> parameters)
    {
        using var scope = NewDisposeScope();
        foreach (var p in parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            g.detach_();
            g.zero_();
        }
    }

    /// <summary>Replaces the momentum buffers (e.g. from a checkpoint); each must match its parameter's shape.</summary>
    public void LoadMomentumBuffers(IReadOnlyList<Tensor?> buffers, long steps)
    {
        if (buffers.Count != _params.Length)
            throw new ArgumentException($"optimizer state has {buffers.Count} momentum buffers, the model {_params.Length} trainable parameters");
        for (int i = 0; i < _params.Length; i++)
        {
            var b = buffers[i];
            if (b is not null && !b.shape.SequenceEqual(_params[i].shape))
                throw new ArgumentException($"momentum buffer {i} is [{string.Join(", ", b.shape)}], its parameter [{string.Join(", ", _params[i].shape)}]");
        }
        for (int i = 0; i < _params.Length; i++)
        {
            _buffers[i]?.Dispose();
            _buffers[i] = buffers[i]?.to(_params[i].dtype, _params[i].device, copy: true).detach().DetachFromDisposeScope();
        }
        Steps = steps;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        for (int i = 0; i < _buffers.Length; i++)
        {
            _buffers[i]?.Dispose();
            _buffers[i] = null;
        }
    }
}
