using YoloSpp.Data;
using YoloSpp.Evaluation;
using YoloSpp.Model;
using YoloSpp.Platform;

namespace YoloSpp.Training;

/// <summary>
/// Options of a training run: the reference train.py's arguments, plus what a from-scratch run needs. The defaults
/// are the reference's (warmup on, multi-scale, mosaic, float32, accumulation to 64 images); <see cref="ShapesDemo"/>
/// is the demo's preset, which <c>yolospp train</c> and <c>scripts/train.fsx</c> start from.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>The network: a Darknet cfg file (its class count must match the data), or a built-in topology by
    /// name, <c>shapes-spp</c> or <c>yolov3-spp</c> (see <see cref="ModelCfg.Topology"/>), built with the data's class count.</summary>
    public required string Cfg { get; init; }
    /// <summary>The .data file (classes, train, valid, names).</summary>
    public required string Data { get; init; }
    /// <summary>A hyp.yaml file, or a built-in recipe by name, <c>shapes</c> or <c>reference</c> (see
    /// <see cref="HyperParameters.Named"/>); null for the reference's defaults.</summary>
    public string? Hyp { get; init; }
    /// <summary>The optimizer; null for the one the hyperparameters name (<c>optimizer:</c>, SGD when absent): the
    /// <c>shapes</c> recipe trains with Adam, the <c>reference</c> one with SGD.</summary>
    public OptimizerKind? Optimizer { get; init; }
    /// <summary>Which parameters weight decay applies to; null for the optimizer's own: every parameter with SGD (the
    /// reference's), convolution weights only with Adam and AdamW (yolov5's groups).</summary>
    public DecayGroups? DecayGroups { get; init; }
    /// <summary>Starting weights: a checkpoint (.ckpt) to resume, or .weights/.pt/.safetensors to start from; null for random init.</summary>
    public string? Weights { get; init; }
    /// <summary>Epochs to train (when resuming from a checkpoint that already has more, this many more).</summary>
    public int Epochs { get; init; } = 30;
    /// <summary>Images per batch.</summary>
    public int BatchSize { get; init; } = 4;
    /// <summary>Training and test image size (a multiple of <see cref="DarkNet.GridStride"/>).</summary>
    public int ImageSize { get; init; } = 512;
    /// <summary>Keep only the best checkpoint (by mAP@0.5:0.95) besides last.ckpt; false keeps one per epoch.</summary>
    public bool SaveBest { get; init; } = true;
    /// <summary>Evaluate only after the last epoch.</summary>
    public bool NoTest { get; init; }
    /// <summary>Train only the three prediction convs (the reference's --freeze-layers).</summary>
    public bool FreezeLayers { get; init; }
    /// <summary>When starting from pretrained weights on a network with yolov3-spp's Darknet-53 backbone, freeze that
    /// backbone (modules 0..74) as the reference does (see <see cref="TrainSteps.Model"/>).</summary>
    public bool FreezeBackbone { get; init; } = true;
    /// <summary>Freeze modules 0..N − 1 of the network whatever it starts from (yolov5's <c>--freeze N</c>; 0 freezes
    /// nothing, overriding <see cref="FreezeBackbone"/>), or <see cref="Backbone"/> for the network's backbone
    /// (<see cref="DarknetConfig.BackboneModules"/>). Null: the rules of <see cref="FreezeBackbone"/> and
    /// <see cref="FreezeLayers"/>.</summary>
    public int? Freeze { get; init; }
    /// <summary>The value of <see cref="Freeze"/> that freezes the network's backbone, whatever its length.</summary>
    public const int Backbone = -1;
    /// <summary>With a checkpoint (.ckpt) as <see cref="Weights"/>: start a new run from its weights (the model it
    /// evaluates with, the weight average where it has one) instead of resuming it: epoch 0, a new optimizer, other
    /// data and classes allowed (the tensors whose sizes differ, such as the predictors of another class count,
    /// start from their initial values, as with any pretrained weights).</summary>
    public bool FineTune { get; init; }

    /// <summary>Whether this run resumes <see cref="Weights"/> (a checkpoint, without <see cref="FineTune"/>).</summary>
    internal bool Resumes => !string.IsNullOrEmpty(Weights) && CheckpointFile.IsCheckpoint(Weights) && !FineTune;
    /// <summary>Device: "auto" (default: CUDA when available, else the CPU), "cpu", "cuda", "cuda:1"… An explicit
    /// CUDA device falls back to the CPU with a notice when absent.</summary>
    public string Device { get; init; } = YoloSpp.Platform.Backend.AutoDevice;
    /// <summary>Draw each batch's size in [img/1.5, img/0.667], rounded to 32, every <c>accumulate</c> batches.</summary>
    public bool MultiScale { get; init; } = true;
    /// <summary>Epoch-0 warmup: LR factor from 1/1000 to 1 over min(1000, batches − 1) iterations, accumulate 1 (always on in the reference).</summary>
    public bool Warmup { get; init; } = true;
    /// <summary>Augment training images (HSV, flip, affine, mosaic).</summary>
    public bool Augment { get; init; } = true;
    /// <summary>Rectangular training batches (no shuffle, no mosaic).</summary>
    public bool Rect { get; init; }
    /// <summary>Train as one class (the reference's --single-cls): every label becomes class 0, the class gain is
    /// scaled for one class, and the cfg must have one class (<c>yolospp cfg --topology NAME --classes 1</c> writes one).</summary>
    public bool SingleClass { get; init; }
    /// <summary>Keep the decoded, resized images in memory after their first load (the reference's --cache-images):
    /// later epochs skip decoding. Costs about width × height × 3 bytes per image at the training size.</summary>
    public bool CacheImages { get; init; }
    /// <summary>Mosaic of four images (with <see cref="Augment"/>).</summary>
    public bool Mosaic { get; init; } = true;
    /// <summary>Mixed precision with dynamic loss scaling on CUDA (off by default, as the reference's --amp); the CPU ignores it.</summary>
    public bool Amp { get; init; }
    /// <summary>Opt-in bfloat16 convolutions with float32 master weights on any device (see <see cref="MixedPrecision"/>); off by default.</summary>
    public bool Bf16 { get; init; }
    /// <summary>bfloat16 where it pays and computes right (<c>--bf16 auto</c>): on when the CPU (or, for a CUDA run,
    /// the GPU: compute capability 8.0 or newer) has native bfloat16 and the network's bfloat16 convolutions pass the
    /// check against float64 (<see cref="Bf16Support"/>), else float32; the run says which and why. <see cref="Bf16"/>
    /// forces it on (with a warning where bfloat16 is emulated).</summary>
    public bool Bf16Auto { get; init; }
    /// <summary>The output folder when none is given: runs/train.</summary>
    public static string DefaultOutputDir { get; } = Path.Combine("runs", "train");
    /// <summary>
    /// Folder for checkpoints, results, plot and TensorBoard events; null: <see cref="DefaultOutputDir"/>, or when
    /// resuming a checkpoint (<see cref="Weights"/> a .ckpt), the checkpoint's folder. Runs never replace runs: when
    /// the folder holds a previous run, the run writes to the next free numbered folder (runs/train2, runs/train3, …,
    /// as yolov5), unless <see cref="ExistOk"/>; the folder used is <see cref="TrainResult.OutputDir"/>.
    /// </summary>
    public string? OutputDir { get; init; }
    /// <summary>Reuse <see cref="OutputDir"/> even when it holds a previous run (yolov5's --exist-ok): its files are
    /// replaced. Still never two live runs in one folder: a run finding the folder in use stops with an error.</summary>
    public bool ExistOk { get; init; }
    /// <summary>Resume a checkpoint (<see cref="Weights"/>) with a cfg that differs from the one it was trained with;
    /// without it such a resume is refused, naming the first difference.</summary>
    public bool AllowCfgChange { get; init; }
    /// <summary>Results file name inside <see cref="OutputDir"/>.</summary>
    public string ResultName { get; init; } = "results.txt";
    /// <summary>Seed of initialisation, shuffling, augmentation and multi-scale draws.</summary>
    public int Seed { get; init; }
    /// <summary>Batches per optimizer step; null for the reference's max(round(64 / batch), 1).</summary>
    public int? Accumulate { get; init; }
    /// <summary>Stop after this much training time (the current epoch ends early, is evaluated and checkpointed); null for no limit.</summary>
    public TimeSpan? TimeLimit { get; init; }
    /// <summary>Evaluation batch size; null for <see cref="BatchSize"/>.</summary>
    public int? EvalBatchSize { get; init; }
    /// <summary>With several ranks (mpirun), SyncBatchNorm: batch statistics over every rank's batch (see
    /// <see cref="DarkNet.SyncBatchNorm"/>). Null: train_multi_GPU.py's rule, on unless <see cref="FreezeLayers"/>.
    /// One process ignores it.</summary>
    public bool? SyncBatchNorm { get; init; }
    /// <summary>Keep yolov5's exponential moving average of the weights (<see cref="ModelEma"/>) and evaluate and save
    /// it: best.ckpt and last.ckpt hold the average (and, for resuming, the trained weights). False: the reference's
    /// run, which evaluates and saves the trained weights.</summary>
    public bool Ema { get; init; }
    /// <summary>Stop after this many evaluated epochs without a better mAP@0.5:0.95 (yolov5's <c>--patience</c>);
    /// null: never. Every rank stops together; the checkpoint records why.</summary>
    public int? Patience { get; init; }
    /// <summary>yolov5's <c>--autoanchor</c> remedy: when the anchor check at the start finds a best possible recall of
    /// 0.98 or less, anchors evolved from the training labels replace the cfg's for this run (they recall more), in
    /// its checkpoints' cfg and in <c>autoanchor.cfg</c> in its folder. False: the check only reports.</summary>
    public bool AutoAnchor { get; init; }

    /// <summary>
    /// The training demo: the generated shapes dataset (<c>data/shapes/shapes.data</c>, relative to the working
    /// folder), the built-in <c>shapes-spp</c> network and <c>shapes</c> hyperparameters at 160 px, batch 8, 30 epochs,
    /// one batch per optimizer step, no mosaic and no multi-scale, with yolov5's weight average (<see cref="Ema"/>).
    /// Every other option as the reference.
    /// </summary>
    public static TrainOptions ShapesDemo { get; } = new()
    {
        Cfg = "shapes-spp",
        Data = Path.Combine("data", "shapes", "shapes.data"),
        Hyp = "shapes",
        Epochs = 30,
        BatchSize = 8,
        ImageSize = 160,
        MultiScale = false,
        Mosaic = false,
        Accumulate = 1,
        // measured: 3 seeds with and without, docs/demo.md "The weight average"
        Ema = true,
    };

    /// <summary>Checks the numbers; throws <see cref="ArgumentException"/> naming the option.</summary>
    public void Validate()
    {
        DarkNet.CheckImageSize(ImageSize, "--img-size");
        if (BatchSize < 1) throw new ArgumentException($"--batch-size {BatchSize} must be >= 1");
        if (Epochs < 1) throw new ArgumentException($"--epochs {Epochs} must be >= 1");
        if (Accumulate is < 1) throw new ArgumentException($"--accumulate {Accumulate} must be >= 1");
        if (EvalBatchSize is < 1) throw new ArgumentException($"eval batch size {EvalBatchSize} must be >= 1");
        if (Freeze is < Backbone) throw new ArgumentException($"--freeze {Freeze} must be a module count >= 0, or backbone");
        if (FineTune && string.IsNullOrEmpty(Weights))
            throw new ArgumentException("--fine-tune starts from a checkpoint's weights: give it with --weights");
        if (Patience is < 1) throw new ArgumentException($"--patience {Patience} must be >= 1 (epochs without a better mAP)");
        if (TimeLimit is { } t && !(t > TimeSpan.Zero))
            throw new ArgumentException($"--time-limit {t.TotalMinutes:G6} must be > 0 minutes (a run with no time trains nothing)");
        // the results file lives in the run's folder: a path would write it somewhere else
        if (string.IsNullOrWhiteSpace(ResultName) || ResultName != Path.GetFileName(ResultName) || ResultName is "." or ".." || ResultName.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new ArgumentException($"--result-name '{ResultName}' must be a file name (no folder): the results file is written in the output folder");
        if (OutputDir is { } dir)
        {
            if (string.IsNullOrWhiteSpace(dir)) throw new ArgumentException("--output is empty: give a folder (default runs/train)");
            if (dir.IndexOfAny(Path.GetInvalidPathChars()) >= 0) throw new ArgumentException($"--output '{dir}' has characters no path may hold");
            if (File.Exists(dir)) throw new ArgumentException($"--output {dir} is a file, not a folder");
        }
    }
}

/// <summary>Progress of a training run, reported every few batches and at the end of each epoch.</summary>
/// <param name="Epoch">Current epoch, counted from 0 as everywhere (the console, results.txt, epochs.csv, checkpoints): 0 to <paramref name="Epochs"/> − 1.</param>
/// <param name="Epochs">Epochs of the run.</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="MeanLosses">Mean box, objectness, class and total loss over the epoch so far.</param>
/// <param name="LearningRate">Current learning rate.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch so far (of every rank together).</param>
/// <param name="Eta">Estimated time to the end of the epoch.</param>
/// <param name="Evaluation">Set once the epoch's evaluation is done (null otherwise).</param>
public sealed record TrainProgress(int Epoch, int Epochs, int Batch, int Batches, LossValues MeanLosses,
    double LearningRate, double ImagesPerSecond, TimeSpan Eta, EvaluationResult? Evaluation);

/// <summary>Where a finished (or stopped) run left its outputs, and its final numbers. A file the run did not write
/// (a run stopped before its first epoch ended writes only last.ckpt) is null, so every path given exists.</summary>
/// <param name="LastCheckpoint">last.ckpt: resumable with <see cref="TrainOptions.Weights"/> (written by rank 0).</param>
/// <param name="BestCheckpoint">The best checkpoint by mAP@0.5:0.95 (null if no evaluation ran).</param>
/// <param name="ResultsFile">The reference's results file: a line per evaluated epoch, the 12 COCO stats, the mean total loss and the LR.</param>
/// <param name="PlotFile">PNG of losses, mAP and LR over epochs.</param>
/// <param name="TensorBoardDir">TensorBoard event files.</param>
/// <param name="EpochsDone">Epochs completed by this run.</param>
/// <param name="Final">Last evaluation (null if none ran).</param>
/// <param name="Cancelled">Whether the run was stopped by cancellation.</param>
/// <param name="EpochsFile">epochs.csv: every epoch's four mean losses, LR and (when evaluated) the 12 stats, at full precision.</param>
/// <param name="OutputDir">The folder the run wrote to (a numbered one when the requested folder held a previous run).</param>
public sealed record TrainResult(string LastCheckpoint, string? BestCheckpoint, string? ResultsFile, string? PlotFile,
    string? TensorBoardDir, int EpochsDone, EvaluationResult? Final, bool Cancelled, string? EpochsFile, string OutputDir)
{
    /// <summary>The other pictures and tables the run wrote: the first training batches (train_batchN.jpg) and the
    /// best epoch's PR, F1, P and R curves, confusion matrix (PNG, CSV) and classes.csv.</summary>
    public IReadOnlyList<string> Plots { get; init; } = [];
    /// <summary>Why the run stopped before its last epoch (<see cref="TrainOptions.Patience"/>); null when it did not.</summary>
    public string? StopReason { get; init; }
}

/// <summary>Training stopped on a non-finite loss: the loss parts and the images of the batch.</summary>
public sealed class NonFiniteLossException(string message) : Exception(message);
