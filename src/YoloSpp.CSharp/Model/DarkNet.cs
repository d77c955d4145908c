using Microsoft.FSharp.Collections;
using TorchSharp;
using TorchSharp.Modules;
using YoloSpp.Distributed;
using YoloSpp.Model;
using YoloSpp.Platform;
using static TorchSharp.torch;
using CfgM = YoloSpp.Model.Cfg;

namespace YoloSpp.Model;

/// <summary>What a forward pass returns.</summary>
/// <param name="Raw">One raw head [bs, na, ny, nx, nc + 5] per yolo layer (strides 32, 16, 8).</param>
/// <param name="Detections">Eval mode only: decoded boxes [bs, Σ na·ny·nx, nc + 5] in input pixels; null in train mode.</param>
public sealed record DarkNetOutput(Tensor[] Raw, Tensor? Detections);

/// <summary>
/// A YOLOv3(-SPP) network built from a Darknet cfg, module for module as the reference's DarkNet: the same
/// layer order, the same state-dict names (<c>module_list.N.Conv2d.weight</c>, <c>module_list.N.BatchNorm2d.*</c>),
/// train mode returning the raw heads and eval mode also the decoded boxes.
/// </summary>
public sealed class DarkNet : nn.Module<Tensor, DarkNetOutput>
{
    /// <summary>The coarsest yolo layer's stride: input sizes are multiples of it (the reference's gs = 32).</summary>
    public const int GridStride = CfgM.GridStride;

    /// <summary>Checks a network input size (positive, a multiple of <see cref="GridStride"/>); the message names <paramref name="what"/>.</summary>
    /// <exception cref="ArgumentException">The size does not fit.</exception>
    public static void CheckImageSize(int size, string what = "image size")
    {
        var r = CfgM.checkImageSize(what, size);
        if (r.IsError) throw new ArgumentException(r.ErrorValue);
    }

    // the field name is the state-dict prefix, as in the reference
    readonly ModuleList<nn.Module> module_list;
    readonly bool[] _keep;

    /// <summary>The parsed cfg the network was built from.</summary>
    public DarknetConfig Config { get; }

    internal CfgM.NetCfg Cfg => Config.Core;
    /// <summary>Number of classes (of the yolo layers).</summary>
    public int NumClasses { get; }
    /// <summary>Module indices of the yolo layers.</summary>
    public IReadOnlyList<int> YoloLayerIndices { get; }
    /// <summary>The yolo layers in order (strides 32, 16, 8).</summary>
    public IReadOnlyList<YoloLayer> YoloLayers { get; }
    /// <summary>Module indices whose outputs later routes and shortcuts read (the reference's routs).</summary>
    public IReadOnlyList<int> Routs { get; }
    /// <summary>The modules in cfg order.</summary>
    public IReadOnlyList<nn.Module> Modules => module_list.ToArray();
    /// <summary>Whether conv+BN pairs have been folded (see <see cref="Fuse"/>).</summary>
    public bool IsFused { get; }

    /// <summary>
    /// Mixed precision: when set (float16 on CUDA, bfloat16 anywhere), every convolution runs in this type on its
    /// float32 weights cast per call, as autocast does, and its output stays in this type: BatchNorm (with float32
    /// parameters and statistics), activations, routes, shortcuts, max-pool and upsample run on it, as autocast
    /// lets them run in their input's type; the yolo heads take float32. Gradients reach the float32 master weights
    /// through the casts. Null (default): plain float32. Setting bfloat16 on the CPU has the convolution guard check
    /// the network's bfloat16 kernels first (<see cref="ConvGuard.PrepareBf16"/>: once a process; wrong ones compute
    /// in float32).
    /// </summary>
    public ScalarType? ComputeType
    {
        get => _computeType;
        set
        {
            if (value is { } t && t != ScalarType.Float16 && t != ScalarType.BFloat16 && t != ScalarType.Float32)
                throw new ArgumentException($"compute type must be Float16, BFloat16 or Float32, got {t}", nameof(value));
            if (value == ScalarType.BFloat16 && OnCpu) ConvGuard.PrepareBf16(ConvConfigs, _channelsLast);
            _computeType = value == ScalarType.Float32 ? null : value;
        }
    }

    bool OnCpu => parameters().FirstOrDefault() is not { } p || p.device_type == DeviceType.CPU;
    ScalarType? _computeType;

    /// <summary>
    /// SyncBatchNorm (torch.nn.SyncBatchNorm.convert_sync_batchnorm): when set to a communicator of several ranks,
    /// every BatchNorm normalises in train mode with the statistics of all ranks' batches together, and its backward
    /// flows across the ranks, so that N ranks of batch B train as one process of batch N·B. Eval mode is unchanged.
    /// Null (default) or a single process: each process's own batch statistics.
    /// </summary>
    public Distributed.ICommunicator? SyncBatchNorm
    {
        get => _sync;
        set
        {
            _sync = value;
            foreach (var bn in modules().OfType<Model.BatchNorm2d>()) bn.Sync = value;
        }
    }
    Distributed.ICommunicator? _sync;
    // per module: the conv of a conv block, its configuration and the modules after it (BatchNorm, activation):
    // convolutions run through the ConvGuard, and in the mixed-precision type when one is set
    readonly (Conv2d Conv, ConvConfig Config, nn.Module<Tensor, Tensor>[] After)?[] _convBlocks;

    /// <summary>Builds the network for a parsed cfg. Strides are assigned 32, 16, 8 by yolo order, as the reference does.
    /// <paramref name="layout"/> chooses the CPU layout (<see cref="ChannelsLast"/>); null: the process default,
    /// <see cref="ConvLayout.Default"/>.</summary>
    public DarkNet(DarknetConfig cfg, LayoutChoice? layout = null) : this(cfg, fused: false, layout ?? ConvLayout.Default) { }

    /// <summary>Builds the network; <paramref name="fused"/> builds convs with a bias and no BatchNorm (see <see cref="Fuse"/>).</summary>
    DarkNet(DarknetConfig config, bool fused, LayoutChoice layout) : base(nameof(DarkNet))
    {
        IsFused = fused;
        Backend.Initialize();
        Config = config ?? throw new ArgumentNullException(nameof(config));
        var cfg = config.Core;
        var defs = cfg.Modules.ToArray();
        var channels = CfgGraph.outputChannels(cfg).ToArray();
        var yoloStrides = new[] { 32, 16, 8 };
        var modules = new List<nn.Module>();
        var yolos = new List<YoloLayer>();
        int inChannels = cfg.Net.Channels;
        for (int i = 0; i < defs.Length; i++)
        {
            var def = defs[i];
            nn.Module m;
            switch (def.Layer)
            {
                case CfgM.Layer.Convolutional c:
                    m = ConvBlock(c.Item, inChannels, fused);
                    break;
                case CfgM.Layer.Shortcut:
                    m = new WeightedFeatureFusion(CfgGraph.references(def).ToArray());
                    break;
                case CfgM.Layer.Route:
                    m = new FeatureConcat(CfgGraph.references(def).ToArray());
                    break;
                case CfgM.Layer.MaxPool p:
                    m = MaxPool(p.Item);
                    break;
                case CfgM.Layer.Upsample u:
                    m = nn.Upsample(scale_factor: new double[] { u.Item.Stride, u.Item.Stride }, mode: UpsampleMode.Nearest);
                    break;
                case CfgM.Layer.Yolo y:
                    if (yolos.Count >= yoloStrides.Length)
                        throw new InvalidInputException(config.Source, def.Line, $"layer {i}: more than {yoloStrides.Length} [yolo] layers (the reference assigns strides 32, 16, 8 only)");
                    var anchors = CfgGraph.maskedAnchors(y.Item).ToArray();
                    var a = new double[anchors.Length, 2];
                    for (int k = 0; k < anchors.Length; k++) { a[k, 0] = anchors[k].Item1; a[k, 1] = anchors[k].Item2; }
                    var yolo = new YoloLayer(a, yoloStrides[yolos.Count], y.Item.Classes);
                    yolos.Add(yolo);
                    m = yolo;
                    break;
                default:
                    throw new InvalidInputException("cfg", def.Line, $"layer {i}: unsupported layer {def.Layer}");
            }
            modules.Add(m);
            inChannels = channels[i];
        }
        module_list = new ModuleList<nn.Module>(modules.ToArray());
        YoloLayers = yolos;
        YoloLayerIndices = CfgGraph.yoloLayers(cfg).ToArray();
        NumClasses = yolos.Count > 0 ? yolos[0].NumClasses : 0;
        Routs = CfgGraph.routs(cfg).ToArray();
        _convBlocks = new (Conv2d, ConvConfig, nn.Module<Tensor, Tensor>[])?[defs.Length];
        var configs = ConvConfigsByModule(cfg);
        for (int i = 0; i < defs.Length; i++)
        {
            if (configs[i] is not { } convConfig || modules[i] is not Sequential seq) continue;
            var children = seq.named_children().Select(ch => ch.module).ToArray();
            _convBlocks[i] = ((Conv2d)children[0], convConfig, children.Skip(1).Cast<nn.Module<Tensor, Tensor>>().ToArray());
        }
        _keep = new bool[defs.Length];
        foreach (var r in Routs) _keep[r] = true;
        RegisterComponents();
        InitializeYoloBiases();
        // libtorch's kernels are checked on this CPU before the network computes (see ConvGuard)
        ConvGuard.Prepare(ConvConfigs);
        LayoutChoice = layout;
        _channelsLast = ConvLayout.UsesChannelsLast(layout, ConvConfigs);
    }

    /// <summary>The layout policy the network was built with (<see cref="ConvLayout"/>).</summary>
    public LayoutChoice LayoutChoice { get; }

    /// <summary>
    /// Whether <see cref="forward"/> computes in the channels-last layout (NHWC strides, same shapes and values) on
    /// the CPU, as <see cref="LayoutChoice"/> decided at construction (<see cref="ConvLayout.UsesChannelsLast"/>). Setting it
    /// to true throws when the convolution guard's check of the channels-last kernels fails. CUDA inputs are left in
    /// their layout.
    /// </summary>
    public bool ChannelsLast
    {
        get => _channelsLast;
        set
        {
            if (value && !ConvGuard.CheckChannelsLast(ConvConfigs))
                throw new InvalidOperationException("channels-last convolutions computed wrong results on this CPU (see the conv guard's notice); the network stays contiguous");
            if (_computeType == ScalarType.BFloat16 && OnCpu) ConvGuard.PrepareBf16(ConvConfigs, value);
            _channelsLast = value;
        }
    }
    bool _channelsLast;

    /// <summary>The configuration of every convolution, in module order.</summary>
    public IReadOnlyList<ConvConfig> ConvConfigs => _convBlocks.Where(b => b is not null).Select(b => b!.Value.Config).ToArray();

    /// <summary>The convolutions of the built-in networks (<see cref="ModelCfg.TopologyNames"/>), and those their
    /// inference computes channels-last under <paramref name="layout"/> (null: <see cref="ConvLayout.Default"/>):
    /// what <c>yolospp doctor</c> checks.</summary>
    public static ConvWorkload BuiltInWorkload(LayoutChoice? layout = null)
    {
        var networks = ModelCfg.TopologyNames
            .Select(name => ConvConfigsOf(ModelCfg.Topology(name, ModelCfg.TopologyClasses(name)))).ToArray();
        var channelsLast = (layout ?? ConvLayout.Default) switch
        {
            LayoutChoice.Contiguous => [],
            LayoutChoice.ChannelsLast => networks.SelectMany(c => c).Distinct().ToArray(),
            _ => networks.Where(ConvLayout.PrefersChannelsLast).SelectMany(c => c).Distinct().ToArray(),
        };
        return new ConvWorkload(networks.SelectMany(c => c).Distinct().ToArray(), channelsLast);
    }

    /// <summary>The configuration of every convolution a cfg builds, in module order, without building it.</summary>
    public static IReadOnlyList<ConvConfig> ConvConfigsOf(DarknetConfig cfg) => ConvConfigsByModule(cfg.Core).OfType<ConvConfig>().ToArray();

    static ConvConfig?[] ConvConfigsByModule(CfgM.NetCfg cfg)
    {
        var defs = cfg.Modules.ToArray();
        var channels = CfgGraph.outputChannels(cfg).ToArray();
        var result = new ConvConfig?[defs.Length];
        int input = cfg.Net.Channels;
        for (int i = 0; i < defs.Length; i++)
        {
            if (defs[i].Layer is CfgM.Layer.Convolutional c)
                result[i] = new ConvConfig(input, c.Item.Filters, c.Item.Size, c.Item.Stride, c.Item.Pad ? c.Item.Size / 2 : 0);
            input = channels[i];
        }
        return result;
    }

    /// <summary>Builds the network described by a cfg file.</summary>
    public static DarkNet FromCfgFile(string path) => new(ModelCfg.Load(path));

    static nn.Module ConvBlock(CfgM.ConvolutionalCfg c, int inChannels, bool fused)
    {
        var withBn = c.BatchNormalize && !fused;
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>
        {
            ("Conv2d", nn.Conv2d(inChannels, c.Filters, c.Size, stride: c.Stride, padding: c.Pad ? c.Size / 2 : 0, bias: !withBn)),
        };
        if (withBn) layers.Add(("BatchNorm2d", new Model.BatchNorm2d(c.Filters)));
        if (c.Activation.IsLeaky) layers.Add(("activation", new Model.LeakyReLU(0.1)));
        return nn.Sequential(layers.ToArray());
    }

    static nn.Module MaxPool(CfgM.MaxPoolCfg p)
    {
        var pool = nn.MaxPool2d(p.Size, p.Stride, (p.Size - 1) / 2);
        // the reference pads bottom/right for a 2x2 stride-1 pool (yolov3-tiny) instead of symmetric padding
        if (p.Size == 2 && p.Stride == 1)
            return nn.Sequential(("ZeroPad2d", nn.ZeroPad2d((0, 1, 0, 1))), ("MaxPool2d", nn.MaxPool2d(2, 1, 0)));
        return pool;
    }

    /// <summary>
    /// The reference's smart bias init of each prediction conv: objectness −4.5, classes log(0.6 / (nc − 0.99)),
    /// so every score starts near 0.01 and the objectness loss does not swamp the start of training.
    /// </summary>
    void InitializeYoloBiases()
    {
        using var _ = no_grad();
        foreach (var idx in YoloLayerIndices)
        {
            if (module_list[idx - 1] is not Sequential seq) continue;
            var conv = (Conv2d)seq.named_children().First().module;
            if (conv.bias is null) continue;
            var yolo = (YoloLayer)module_list[idx];
            var b = conv.bias.view(yolo.NumAnchors, -1);
            using (var s = (-4.5).ToScalar()) b[TensorIndex.Colon, 4].add_(s, Tensors.one);
            if (yolo.NumClasses > 0)
                using (var s = Math.Log(0.6 / (yolo.NumClasses - 0.99)).ToScalar())
                    b[TensorIndex.Colon, TensorIndex.Slice(5, null)].add_(s, Tensors.one);
        }
    }

    /// <summary>
    /// Runs the network. Train mode returns the raw heads; eval mode also the decoded detections. The input is
    /// [bs, channels, H, W] with H and W multiples of 32 (non-square allowed).
    /// </summary>
    public override DarkNetOutput forward(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != Config.Channels)
            throw new ArgumentException($"input must be [bs, {Config.Channels}, H, W], got [{string.Join(", ", x.shape)}]", nameof(x));
        CheckFits(x.shape[2], x.shape[3]);
        var outputs = new Tensor?[module_list.Count];
        var raw = new List<Tensor>(YoloLayers.Count);
        var lowPrecision = _computeType;
        // channels-last on the CPU: inference, and bfloat16 training (float32 training stays contiguous: libtorch's
        // channels-last BatchNorm backward is less accurate and slower there; in bfloat16 the layout saves oneDNN's
        // reorders: yolov3-spp's step 3.3-3.7 s against 4.1 s contiguous, docs/performance.md)
        bool channelsLast = _channelsLast && x.device_type == DeviceType.CPU && (!training || lowPrecision == ScalarType.BFloat16);
        if (channelsLast && !Layout.IsChannelsLast(x)) x = Layout.ChannelsLast(x);
        for (int i = 0; i < module_list.Count; i++)
        {
            if (_convBlocks[i] is { } block)
            {
                x = ConvBlockForward(block, x, lowPrecision, channelsLast);
                if (_keep[i]) outputs[i] = x;
                continue;
            }
            switch (module_list[i])
            {
                case FeatureConcat route: x = route.Forward(outputs); break;
                case WeightedFeatureFusion shortcut: x = shortcut.Forward(x, outputs); break;
                // the heads and the loss in float32 (a low-precision prediction conv's output, cast exactly)
                case YoloLayer yolo: raw.Add(yolo.Raw(x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32))); break;
                case nn.Module<Tensor, Tensor> m: x = m.call(x); break;
                default: throw new InvalidOperationException($"module {i} ({module_list[i].GetName()}) cannot run");
            }
            // the reference keeps only the outputs that later layers read
            if (_keep[i]) outputs[i] = x;
        }
        if (training) return new DarkNetOutput(raw.ToArray(), null);
        var decoded = raw.Select((p, k) => YoloLayers[k].Decode(p)).ToArray();
        return new DarkNetOutput(raw.ToArray(), cat(decoded, 1));
    }

    /// <summary>The loaders decode every image to RGB: a network of another [net] channels count cannot take them.</summary>
    /// <exception cref="InvalidInputException">The cfg's channels are not 3; the message names the cfg.</exception>
    internal void RequireRgb()
    {
        if (Config.Channels != 3)
            throw new InvalidInputException(Config.Source, $"[net] channels={Config.Channels}, but images are read as RGB (3 channels)");
    }

    // input sizes (h, w) whose feature maps are known to fit together
    readonly HashSet<(long, long)> _fits = new();

    /// <summary>
    /// The cfg was checked at a few sizes when read (<c>CfgCheck</c>); a size it has not seen is checked the first time
    /// the network gets it, so that a route over maps of different sizes at this size is an error naming the layer,
    /// not a failure inside libtorch.
    /// </summary>
    /// <exception cref="InvalidInputException">The network does not fit together at this input size.</exception>
    internal void CheckFits(long h, long w)
    {
        lock (_fits)
        {
            if (_fits.Contains((h, w))) return;
            if (h > int.MaxValue || w > int.MaxValue) throw new ArgumentException($"input {w}x{h} is too large");
            var problems = CfgCheck.shapesAt(Cfg, (int)h, (int)w);
            if (!problems.IsEmpty)
                throw new InvalidInputException(problems.Select(p => new InputError(Config.Source, p.Item1.Line,
                    $"{CfgCheck.problemText(p.Item1, p.Item2)} (at a {w}x{h} input; choose another image size)")));
            _fits.Add((h, w));
        }
    }

    /// <summary>
    /// A conv block: the convolution through the <see cref="ConvGuard"/>, then BatchNorm and the activation. With
    /// <paramref name="dt"/> set, as autocast runs it: the convolution in that type (its input cast once where it is
    /// not already, the float32 weights cast per call), and its output stays in that type through BatchNorm (float32
    /// parameters and statistics), the activation and whatever reads it next (routes, shortcuts, max-pool, upsample),
    /// up to the next convolution or a yolo head (which takes float32).
    /// </summary>
    static Tensor ConvBlockForward((Conv2d Conv, ConvConfig Config, nn.Module<Tensor, Tensor>[] After) block, Tensor x, ScalarType? dt,
        bool channelsLast)
    {
        var conv = block.Conv;
        var y = dt is { } t
            ? ConvGuard.Conv2d(x.dtype == t ? x : x.to(t), channelsLast ? Layout.ChannelsLast(conv.weight!.to(t)) : conv.weight!.to(t), conv.bias?.to(t), block.Config)
            : ConvGuard.Conv2d(x, conv.weight!, conv.bias, block.Config);
        foreach (var m in block.After) y = m.call(y);
        return y;
    }

    /// <summary>The PyTorch class name of a module as the reference builds it (Sequential, FeatureConcat, YOLOLayer, …).</summary>
    public static string TorchClassOf(nn.Module module) => module switch
    {
        Sequential => "Sequential",
        MaxPool2d => "MaxPool2d",
        Upsample => "Upsample",
        _ => module.GetName(),
    };

    /// <summary>The anchors of each yolo layer in grid units, as the loss needs them.</summary>
    public Tensor[] AnchorVecs => YoloLayers.Select(y => y.AnchorVec).ToArray();

    /// <summary>
    /// A copy of this network for inference with every BatchNorm folded into the conv before it
    /// (w·γ/√(var+ε), β + (b − mean)·γ/√(var+ε)), in eval mode. This network is left unchanged.
    /// </summary>
    public DarkNet Fuse()
    {
        if (IsFused) return this;
        var fused = new DarkNet(Config, fused: true, LayoutChoice);
        using var _ = no_grad();
        for (int i = 0; i < module_list.Count; i++)
        {
            if (module_list[i] is not Sequential seq) continue;
            var children = seq.named_children().ToDictionary(c => c.name, c => c.module);
            if (!children.TryGetValue("Conv2d", out var c0) || c0 is not Conv2d conv) continue;
            var target = (Conv2d)((Sequential)fused.module_list[i]).named_children().First(c => c.name == "Conv2d").module;
            using var scope = NewDisposeScope();
            var (weight, bias) = children.TryGetValue("BatchNorm2d", out var b) && b is Model.BatchNorm2d bn
                ? Fusion.FuseConvBn(conv, bn)
                : (conv.weight!, conv.bias!);
            target.weight!.copy_(weight);
            target.bias!.copy_(bias);
        }
        fused._channelsLast = _channelsLast;
        fused.to(parameters().First().device);
        fused.eval();
        return fused;
    }
}
