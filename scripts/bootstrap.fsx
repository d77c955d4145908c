// Builds the YoloSpp libraries when they are missing or older than their sources, then runs a script again
// with YOLOSPP_LIBRARY defined, so that its #r lines (inactive until then) find the built files.
// A script cannot do this itself: F# resolves every #r before running any line.
module Bootstrap

open System
open System.Diagnostics
open System.IO

let private root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))

let private built =
    Path.Combine(root, "src", "YoloSpp.Cli", "bin", "Release", "net10.0", "yolospp.dll")

let private newestSource () =
    [ "src"; "build" ]
    |> Seq.collect (fun d -> Directory.EnumerateFiles(Path.Combine(root, d), "*", SearchOption.AllDirectories))
    |> Seq.filter (fun f ->
        not (
            f.Contains $"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"
            || f.Contains $"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"
        ))
    |> Seq.append [ Path.Combine(root, "paket.lock") ]
    |> Seq.map File.GetLastWriteTimeUtc
    |> Seq.max

let private run (cwd: string) (args: string list) =
    use p =
        Process.Start(ProcessStartInfo("dotnet", args, WorkingDirectory = cwd, UseShellExecute = false))

    p.WaitForExit()
    p.ExitCode

let private objDir = Path.Combine(root, "src", "YoloSpp.Cli", "obj")

// written after each build this script runs: an incremental build need not rewrite yolospp.dll (MSBuild skips a
// project whose references' public surface did not change), so its time alone cannot say the build is current
let private stamp = Path.Combine(objDir, ".bootstrap.built")

let private stale () =
    let newest = newestSource ()

    not (File.Exists built)
    || (File.GetLastWriteTimeUtc built < newest
        && (not (File.Exists stamp) || File.GetLastWriteTimeUtc stamp < newest))

/// Holds an exclusive lock on a file in the runner's obj folder (not a source, ignored by git) while `f` runs:
/// several processes started at once (the ranks of `mpirun -np N dotnet fsi scripts/train.fsx`) build one at a
/// time, and the later ones find it built.
let private underBuildLock (f: unit -> unit) =
    Directory.CreateDirectory objDir |> ignore
    let path = Path.Combine(objDir, ".bootstrap.lock")
    let watch = Stopwatch.StartNew()

    let rec acquire () =
        try
            new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
        with :? IOException when watch.Elapsed < TimeSpan.FromMinutes 30.0 ->
            Threading.Thread.Sleep 250
            acquire ()

    use _ = acquire ()
    f ()

/// Builds if needed, then runs `script` with the library defined; returns its exit code.
let runWithLibrary (script: string) (args: string[]) : int =
    if stale () then
        underBuildLock (fun () ->
            // another process may have built it while this one waited
            if stale () then
                printfn "building YoloSpp (first run, or sources changed)..."
                let code = run root [ "fsi"; Path.Combine(root, "build.fsx"); "build" ]

                if code <> 0 then
                    exit code

                File.WriteAllText(stamp, DateTime.UtcNow.ToString "O"))

    // in the caller's folder: relative paths (--data, --output) and the demo's data/shapes are the caller's
    run Environment.CurrentDirectory ([ "fsi"; "--define:YOLOSPP_LIBRARY"; script ] @ List.ofArray args)
