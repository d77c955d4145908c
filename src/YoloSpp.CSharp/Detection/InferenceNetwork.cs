using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Detection;

/// <summary>What runs the network in <see cref="Detector"/> and <see cref="Evaluator"/>.</summary>
public enum InferenceBackend
{
    /// <summary>TorchSharp (libtorch): a cfg and its weights, on the CPU or CUDA.</summary>
    TorchSharp,
    /// <summary>ONNX Runtime on the CPU: a model written by <see cref="OnnxExport"/> (no libtorch needed to run it).</summary>
    OnnxRuntime,
}

/// <summary>A network of either backend, seen as a map from a batch to its decoded detections [bs, rows, 5 + nc].</summary>
internal sealed class InferenceNetwork : IDisposable
{
    readonly DarkNet? _torch;
    readonly OnnxRuntimeNetwork? _onnx;

    public int NumClasses { get; }
    /// <summary>Where the batches must be: the CPU for ONNX Runtime.</summary>
    public Device Device { get; }
    /// <summary>The input size an ONNX model fixes, else null.</summary>
    public (int Height, int Width)? FixedImageSize => _onnx?.FixedImageSize;
    /// <summary>The class names an ONNX model carries, else null.</summary>
    public IReadOnlyList<string>? EmbeddedNames => _onnx?.ClassNames;

    InferenceNetwork(DarkNet? torch, OnnxRuntimeNetwork? onnx, Device device)
    {
        (_torch, _onnx, Device) = (torch, onnx, device);
        NumClasses = torch?.NumClasses ?? onnx!.NumClasses;
    }

    /// <summary>Loads the network: for TorchSharp the cfg with every tensor of <paramref name="weightsPath"/> (fused for
    /// inference when <paramref name="fuse"/>), in eval mode on <paramref name="device"/>; for ONNX Runtime the .onnx
    /// file, checked against the cfg's class count when a cfg is given.</summary>
    public static InferenceNetwork Load(InferenceBackend backend, string? cfgPath, string weightsPath, Device device,
        Action<string>? notice, bool fuse = false)
    {
        if (backend == InferenceBackend.OnnxRuntime)
        {
            if (device.type != DeviceType.CPU)
                notice?.Invoke($"ONNX Runtime runs on the CPU here; {device} is not used");
            var onnx = OnnxRuntimeNetwork.Load(weightsPath);
            try
            {
                if (cfgPath is not null)
                {
                    var cfg = ModelCfg.Load(cfgPath);
                    if (cfg.NumClasses != onnx.NumClasses)
                        throw new InvalidInputException(weightsPath, $"the model has {onnx.NumClasses} classes but {cfgPath} has {cfg.NumClasses}");
                }
                return new InferenceNetwork(null, onnx, CPU);
            }
            catch { onnx.Dispose(); throw; }
        }
        if (cfgPath is null) throw new ArgumentNullException(nameof(cfgPath), "the TorchSharp backend needs the network's cfg");
        var model = DarkNet.FromCfgFile(cfgPath);
        try
        {
            model.RequireRgb();
            ModelWeights.LoadExact(model, weightsPath);
            var net = model;
            if (fuse)
            {
                net = model.Fuse();
                model.Dispose();
            }
            net.to(device);
            net.eval();
            return new InferenceNetwork(net, null, device);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The decoded detections of a batch on <see cref="Device"/>.</summary>
    public Tensor Predict(Tensor images) => _torch is { } t ? t.forward(images).Detections! : _onnx!.Predict(images);

    public void Dispose()
    {
        _torch?.Dispose();
        _onnx?.Dispose();
    }
}
