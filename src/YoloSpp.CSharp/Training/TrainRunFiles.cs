using YoloSpp.Data;
using YoloSpp.Distributed;
using YoloSpp.Model;

namespace YoloSpp.Training;

/// <summary>The run's folder and files around <see cref="TrainSteps.Fit"/>: which folder, its number on every rank,
/// the first batches drawn, what exists at the end.</summary>
public static partial class TrainSteps
{
    /// <summary>How many of the first batches a run draws (yolov5's train_batch0..2.jpg).</summary>
    public const int PlottedBatches = 3;

    /// <summary>Draws the first <see cref="PlottedBatches"/> batches of a run, as the loader made them, with their labels
    /// (<see cref="Detection.BatchPlot"/>) into <c>train_batchN.jpg</c>: what the network is shown.</summary>
    static Action<int, DataBatch> PlotFirstBatches(string dir, IReadOnlyList<string> names) => (i, batch) =>
    {
        if (i < PlottedBatches)
            Detection.BatchPlot.Save(batch.Images, batch.Targets, batch.Paths, names, Path.Combine(dir, $"train_batch{i}.jpg"));
    };

    /// <summary>
    /// The folder a run asks for and whether it is reused as it is: <see cref="TrainOptions.OutputDir"/>, or when
    /// resuming a checkpoint without one, the checkpoint's own folder; reused with <see cref="TrainOptions.ExistOk"/>
    /// or when it is the resumed run's folder (a resume continues its run), else a numbered folder when it holds a run.
    /// </summary>
    internal static (string Folder, bool Reuse) RequestedOutput(TrainOptions o)
    {
        var ckptDir = o.Resumes ? Path.GetDirectoryName(Path.GetFullPath(o.Weights!)) : null;
        var folder = o.OutputDir ?? ckptDir ?? TrainOptions.DefaultOutputDir;
        bool own = ckptDir is not null && string.Equals(Path.GetFullPath(folder).TrimEnd('/', '\\'), ckptDir.TrimEnd('/', '\\'), StringComparison.Ordinal);
        return (folder, o.ExistOk || own);
    }

    /// <summary>The cfg with the anchors <c>--autoanchor</c> evolved, written into the run's folder (train with it
    /// again, or keep its anchors).</summary>
    public const string AutoAnchorCfg = "autoanchor.cfg";

    /// <summary>Rank 0's decision to stop (its evaluation decides), on every rank; also the barrier after its files.</summary>
    static bool AgreedStop(ICommunicator comm, bool stop)
    {
        if (comm.Size <= 1) return stop;
        var all = comm.AllGather([stop ? (byte)1 : (byte)0]);
        return all[0][0] == 1;
    }

    /// <summary>The suffix number rank 0 took, on every rank.</summary>
    static int ShareFolderNumber(ICommunicator comm, RunFolder? folder)
    {
        if (comm.Size <= 1) return folder?.Number ?? 1;
        var all = comm.AllGather(BitConverter.GetBytes(folder?.Number ?? 0));
        return BitConverter.ToInt32(all[0]);
    }

    static string? Written(string path) =>
        File.Exists(path) || (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any()) ? path : null;
}
