using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

using YoloSpp.IO;

namespace YoloSpp.Training;

/// <summary>
/// The folder a run (training, detection, a dataset's charts) writes to, held for the run's lifetime. Runs never
/// replace runs: as yolov5's
/// increment_path, a requested folder that holds a previous run gives way to the next free numbered one
/// (<c>runs/train</c> → <c>runs/train2</c>, <c>runs/train3</c>, …), unless exist-ok reuses it. A lock file in the
/// folder (<see cref="LockName"/>, an exclusive advisory lock the system drops when the process dies, even by
/// kill -9) keeps two live runs out of one folder; the lock's owner is written beside it (<see cref="OwnerName"/>)
/// so that the second run can name the first. On taking a folder, the temp files that dead processes left there
/// (an <see cref="AtomicFile"/> write cut short) are removed.
/// </summary>
public sealed partial class RunFolder : IDisposable
{
    /// <summary>The lock file: held open exclusively while a run writes to the folder; never deleted (deleting it
    /// would let a process lock the old file while another creates a new one).</summary>
    public const string LockName = ".yolospp.lock";
    /// <summary>Who holds the lock: pid, host and start time, for the message of a run that finds it taken.</summary>
    public const string OwnerName = ".yolospp.owner";
    /// <summary>The highest numbered folder tried before giving up.</summary>
    const int MaxNumber = 9999;

    FileStream? _lock;

    /// <summary>The folder the run writes to.</summary>
    public string Path { get; }
    /// <summary>The suffix number taken (1: the requested folder itself).</summary>
    public int Number { get; }
    /// <summary>What the user should know about the choice (a numbered folder was taken), or null.</summary>
    public string? Notice { get; }

    RunFolder(string path, int number, FileStream held, string? notice) => (Path, Number, _lock, Notice) = (path, number, held, notice);

    /// <summary>The folder with suffix <paramref name="number"/> (1: the folder itself), as increment_path names them.</summary>
    public static string Numbered(string requested, int number) =>
        number <= 1 ? requested : requested.TrimEnd('/', '\\') + number.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Takes a training run's folder for <paramref name="requested"/>: the folder itself when it holds no previous run
    /// (or when <paramref name="reuse"/>: exist-ok, or resuming the run that is in it), else the next free numbered one.
    /// </summary>
    /// <exception cref="InvalidInputException">The path is a file, cannot be created or written, or (when reusing) another
    /// live run holds it; the message names the folder (and the other process).</exception>
    public static RunFolder Claim(string requested, bool reuse, string resultName) =>
        Claim(requested, reuse, dir => PreviousRun(dir, resultName), "training run", "--output");

    /// <summary>
    /// Takes the folder for <paramref name="requested"/> for a run of any kind: the folder itself when
    /// <paramref name="previousRun"/> finds nothing of an earlier run in it (or when <paramref name="reuse"/>), else
    /// the next free numbered one. <paramref name="previousRun"/> names the first earlier output it finds in a folder,
    /// or gives null (<see cref="AnyEntry"/>: anything at all); <paramref name="what"/> ("detect run") and
    /// <paramref name="option"/> ("--out") word the messages.
    /// </summary>
    /// <exception cref="InvalidInputException">As the training run's <see cref="Claim(string, bool, string)"/>.</exception>
    public static RunFolder Claim(string requested, bool reuse, Func<string, string?> previousRun, string what, string option)
    {
        ArgumentNullException.ThrowIfNull(previousRun);
        if (string.IsNullOrWhiteSpace(requested)) throw new InvalidInputException(option, "the output folder is empty");
        string? found = null; // what the requested folder held
        for (int n = 1; n <= (reuse ? 1 : MaxNumber); n++)
        {
            var dir = Numbered(requested, n);
            if (File.Exists(dir))
            {
                if (n == 1) throw new InvalidInputException(dir, $"is a file, not a folder: choose another {option}");
                continue;
            }
            CreateFolder(dir);
            var held = TryLock(dir);
            if (held is null)
            {
                if (reuse) throw new InvalidInputException(dir, $"is in use by another live {what} ({Owner(dir)}): two runs cannot share a folder; wait for it to end or choose another {option}");
                if (n == 1) found = $"a live {what}";
                continue;
            }
            RemoveDeadTemps(dir);
            var previous = reuse ? null : previousRun(dir);
            if (previous is null)
            {
                WriteOwner(dir, held);
                var notice = n == 1 ? null : $"{requested} holds a previous run ({found}): this run writes to {dir} (--exist-ok reuses {requested})";
                return new RunFolder(dir, n, held, notice);
            }
            if (n == 1) found = previous;
            held.Dispose();
        }
        throw new InvalidInputException(requested, $"{requested}2 to {requested}{MaxNumber} all hold runs: choose another {option}");
    }

    /// <summary>The first entry of <paramref name="dir"/> other than a run folder's own lock, owner and temp files,
    /// or null: for outputs whose every file counts (a detect run's pictures, a dataset's charts).</summary>
    public static string? AnyEntry(string dir) =>
        Directory.EnumerateFileSystemEntries(dir)
            .Select(System.IO.Path.GetFileName)
            .Where(n => n is not (LockName or OwnerName) && !TempName().IsMatch(n!))
            .Order(StringComparer.Ordinal)
            .FirstOrDefault();

    static void CreateFolder(string dir)
    {
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new InvalidInputException(dir, $"cannot create the output folder ({e.Message})", e);
        }
    }

    /// <summary>The folder's lock, or null when a live process holds it.</summary>
    static FileStream? TryLock(string dir)
    {
        var path = System.IO.Path.Combine(dir, LockName);
        try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (UnauthorizedAccessException e) { throw new InvalidInputException(dir, $"cannot write to the output folder ({e.Message})", e); }
        catch (IOException) when (File.Exists(path)) { return null; }
        catch (IOException e) { throw new InvalidInputException(dir, $"cannot write to the output folder ({e.Message})", e); }
    }

    static void WriteOwner(string dir, FileStream held)
    {
        var started = Process.GetCurrentProcess().StartTime.ToUniversalTime();
        var text = $"pid {Environment.ProcessId} on {Environment.MachineName}, started {started:yyyy-MM-dd HH:mm:ss} UTC";
        try { AtomicFile.WriteAllText(System.IO.Path.Combine(dir, OwnerName), text + "\n"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            held.Dispose();
            throw new InvalidInputException(dir, $"cannot write to the output folder ({e.Message})", e);
        }
    }

    static string Owner(string dir)
    {
        try { return File.ReadAllText(System.IO.Path.Combine(dir, OwnerName)).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "its owner file is unreadable"; }
    }

    /// <summary>The first output of an earlier run found in the folder, or null.</summary>
    static string? PreviousRun(string dir, string resultName)
    {
        string[] files = ["last.ckpt", "best.ckpt", resultName, "epochs.csv", "results.png"];
        foreach (var f in files)
            if (File.Exists(System.IO.Path.Combine(dir, f))) return f;
        if (Directory.Exists(System.IO.Path.Combine(dir, "tensorboard"))) return "tensorboard";
        return Directory.EnumerateFiles(dir, "epoch-*.ckpt").Select(System.IO.Path.GetFileName).FirstOrDefault();
    }

    // AtomicFile's temp names: .<name>.<pid>.<32 hex>.tmp
    [GeneratedRegex(@"^\..+\.(\d+)\.[0-9a-f]{32}\.tmp$")]
    private static partial Regex TempName();

    /// <summary>Removes the temp files of processes that are gone (a write cut short by a kill); a live writer's stay.</summary>
    static void RemoveDeadTemps(string dir)
    {
        foreach (var f in Directory.EnumerateFiles(dir, ".*.tmp"))
        {
            var m = TempName().Match(System.IO.Path.GetFileName(f));
            if (!m.Success || !int.TryParse(m.Groups[1].Value, CultureInfo.InvariantCulture, out var pid) || IsAlive(pid)) continue;
            try { File.Delete(f); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Releases the folder: the owner file goes, the lock is dropped (its file stays; see <see cref="LockName"/>).</summary>
    public void Dispose()
    {
        if (_lock is null) return;
        try { File.Delete(System.IO.Path.Combine(Path, OwnerName)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        _lock.Dispose();
        _lock = null;
    }
}
