using TorchSharp;

using YoloSpp.Model;
using static TorchSharp.torch;

namespace YoloSpp.Detection;

/// <summary>What runs the network in <see cref="Detector"/> and <see cref="YoloSpp.Evaluation.Evaluator"/>.</summary>
public enum InferenceBackend
{
    /// <summary>TorchSharp (libtorch): a cfg and its weights, on the CPU or CUDA.</summary>
    TorchSharp,
    /// <summary>ONNX Runtime on the CPU: a model written by <see cref="YoloSpp.Export.OnnxExport"/> (no libtorch needed to run it).</summary>
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
    /// <summary>An ONNX model's fixed batch size, or null.</summary>
    public int? FixedBatchSize => _onnx?.FixedBatchSize;
    /// <summary>The class names an ONNX model carries, else null.</summary>
    public IReadOnlyList<string>? EmbeddedNames => _onnx?.ClassNames;
    /// <summary>The training image size an ONNX model records, else null.</summary>
    public int? TrainedImageSize => _onnx?.TrainedImageSize;
    /// <summary>The best mean F1's confidence an ONNX model recorded (null for other networks, or none recorded).</summary>
    public double? BestConfidence => _onnx?.BestConfidence;

    InferenceNetwork(DarkNet? torch, OnnxRuntimeNetwork? onnx, Device device)
    {
        (_torch, _onnx, Device) = (torch, onnx, device);
        NumClasses = torch?.NumClasses ?? onnx!.NumClasses;
    }

    /// <summary>Loads a model <see cref="YoloSpp.Export.OnnxExport"/> wrote into ONNX Runtime (on the CPU), checked against the cfg's
    /// class count when a cfg is given.</summary>
    public static InferenceNetwork LoadOnnx(string? cfgPath, string weightsPath, Device device, Action<string>? notice) =>
        LoadOnnx(cfgPath, weightsPath, device.type == DeviceType.CUDA ? Math.Max(0, (int)device.index) : null, notice);

    /// <summary>An exported model in ONNX Runtime, on GPU <paramref name="cudaDevice"/> with the CUDA execution
    /// provider where there is one (else on the CPU, with a notice); null: the CPU.</summary>
    public static InferenceNetwork LoadOnnx(string? cfgPath, string weightsPath, int? cudaDevice, Action<string>? notice)
    {
        var onnx = OnnxRuntimeNetwork.Load(weightsPath, 0, cudaDevice, notice);
        try
        {
            if (cfgPath is not null)
            {
                var cfg = ModelCfg.LoadOrTopology(cfgPath, onnx.NumClasses);
                if (cfg.NumClasses != onnx.NumClasses)
                    throw new InvalidInputException(weightsPath, $"the model has {onnx.NumClasses} classes but {cfgPath} has {cfg.NumClasses}");
            }
            return new InferenceNetwork(null, onnx, CPU);
        }
        catch { onnx.Dispose(); throw; }
    }

    /// <summary>The TorchSharp network of a trained model with every tensor loaded (fused for inference when
    /// <paramref name="fuse"/>), in eval mode on <paramref name="device"/>.</summary>
    public static InferenceNetwork FromTrained(TrainedModel trained, Device device, bool fuse = false)
    {
        var model = trained.CreateNetwork();
        try
        {
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
