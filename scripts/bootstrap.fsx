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

let private run (args: string list) =
    use p =
        Process.Start(ProcessStartInfo("dotnet", args, WorkingDirectory = root, UseShellExecute = false))

    p.WaitForExit()
    p.ExitCode

/// Builds if needed, then runs `script` with the library defined; returns its exit code.
let runWithLibrary (script: string) (args: string[]) : int =
    if not (File.Exists built) || File.GetLastWriteTimeUtc built < newestSource () then
        printfn "building YoloSpp (first run, or sources changed)..."
        let code = run [ "fsi"; Path.Combine(root, "build.fsx"); "build" ]

        if code <> 0 then
            exit code

    run ([ "fsi"; "--define:YOLOSPP_LIBRARY"; script ] @ List.ofArray args)
