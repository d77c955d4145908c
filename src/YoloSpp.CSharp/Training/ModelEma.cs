using TorchSharp;
using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Training;

/// <summary>
/// yolov5's ModelEMA (utils/torch_utils.py, after rwightman's timm): an exponential moving average of everything in
/// the network's state dict. After each optimizer step every floating-point entry (weights, biases and BatchNorm's
/// running mean and variance) becomes <c>d·ema + (1 − d)·model</c> with <c>d = decay·(1 − exp(−updates / tau))</c>
/// (decay 0.9999, tau 2000: the ramp keeps the first epochs' average close to the model); integer buffers are
/// copied. The average is a network of its own, in eval mode, without gradients: it is what a run evaluates and saves.
/// </summary>
public sealed class ModelEma : IDisposable
{
    /// <summary>yolov5's decay.</summary>
    public const double DefaultDecay = 0.9999;
    /// <summary>yolov5's ramp, in updates.</summary>
    public const double DefaultTau = 2000;

    readonly (Tensor Ema, Tensor Model, bool Floating)[] _entries;
    bool _disposed;

    /// <summary>The averaged network.</summary>
    public DarkNet Model { get; }
    /// <summary>Updates so far (optimizer steps since the average began, a resumed run's included).</summary>
    public long Updates { get; private set; }
    /// <summary>The decay's limit.</summary>
    public double Decay { get; }
    /// <summary>The ramp's time constant, in updates.</summary>
    public double Tau { get; }

    /// <summary>Starts the average as a copy of <paramref name="model"/> (same cfg, layout and device).</summary>
    /// <param name="model">The network being trained; its state tensors are read at every <see cref="Update"/>.</param>
    /// <param name="updates">Updates already made (a resumed run's count).</param>
    /// <param name="decay">The decay's limit (default 0.9999).</param>
    /// <param name="tau">The ramp's time constant (default 2000).</param>
    public ModelEma(DarkNet model, long updates = 0, double decay = DefaultDecay, double tau = DefaultTau)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(decay is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "the EMA decay must be in [0, 1)");
        if (!(tau > 0)) throw new ArgumentOutOfRangeException(nameof(tau), tau, "the EMA ramp must be positive");
        (Updates, Decay, Tau) = (updates, decay, tau);
        Model = new DarkNet(model.Config, model.LayoutChoice);
        if (Model.ChannelsLast != model.ChannelsLast) Model.ChannelsLast = model.ChannelsLast;
        Model.to(model.parameters().First().device);
        var source = model.state_dict();
        var target = Model.state_dict();
        _entries = target.Select(kv => (kv.Value, source[kv.Key], kv.Value.is_floating_point())).ToArray();
        using (no_grad())
            foreach (var (ema, m, _) in _entries) ema.copy_(m);
        foreach (var p in Model.parameters()) p.requires_grad = false;
        Model.eval();
    }

    /// <summary>The decay at update <paramref name="updates"/>: decay·(1 − exp(−updates / tau)).</summary>
    public double DecayAt(long updates) => Decay * (1 - Math.Exp(-updates / Tau));

    /// <summary>One update from the trained network's current state (after an optimizer step).</summary>
    public void Update()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Updates++;
        double d = DecayAt(Updates);
        using var keep = d.ToScalar();
        using var take = (1 - d).ToScalar();
        using var _ = no_grad();
        foreach (var (ema, m, floating) in _entries)
        {
            if (floating) ema.mul_(keep).add_(m, take);
            else ema.copy_(m);
        }
    }

    /// <summary>Frees the averaged network.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Model.Dispose();
    }
}
