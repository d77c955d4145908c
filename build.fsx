// Build script: `dotnet fsi build.fsx <target> [-- extra args]`.
// Targets: restore, build, test, golden, properties, bench, clean. A plain F# script (FAKE's CLI does not run on .NET 10).
open System
open System.Diagnostics
open System.IO

let root = __SOURCE_DIRECTORY__
let config = "Release"

let run (exe: string) (args: string list) =
    let psi = ProcessStartInfo(exe, args, WorkingDirectory = root, UseShellExecute = false)
    use p = Process.Start psi
    p.WaitForExit()
    p.ExitCode

let step (exe: string) (args: string list) =
    let code = run exe args
    if code <> 0 then
        eprintfn "build.fsx: '%s %s' failed with exit code %d" exe (String.Join(" ", args)) code
        exit code

/// Local tools (Paket) and packages; on a cold NuGet cache this downloads everything from paket.lock.
let restore () =
    step "dotnet" [ "tool"; "restore" ]
    step "dotnet" [ "paket"; "restore" ]

let build () =
    restore ()
    step "dotnet" [ "build"; "YoloSpp.sln"; "-c"; config; "--nologo"; "-v"; "quiet"; "-clp:NoSummary" ]

/// Runs the Expecto test exe; its last line is "N passed, N failed, N skipped".
let test (extra: string list) =
    build ()
    exit (run "dotnet" ([ "run"; "--project"; "tests/YoloSpp.Tests"; "-c"; config; "--no-build"; "--"; "--colours"; "0" ] @ extra))

/// Builds, then runs the runner's benchmarks (`yolospp bench`); extra arguments go to it.
let bench (extra: string list) =
    build ()
    exit (run "dotnet" ([ "run"; "--project"; "src/YoloSpp.Cli"; "-c"; config; "--no-build"; "--"; "bench" ] @ extra))

let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.toList
let target, extra =
    match args with
    | [] -> "build", []
    | t :: rest -> t, (match rest with "--" :: r -> r | r -> r)

match target with
| "restore" -> restore ()
| "build" -> build ()
| "test" -> test extra
| "golden" -> test ([ "--filter"; "golden" ] @ extra)
| "bench" -> bench extra
| "properties" -> test ([ "--filter"; "properties" ] @ extra)
| "clean" ->
    for d in Directory.GetDirectories(root, "*", SearchOption.AllDirectories) do
        let name = Path.GetFileName d
        if (name = "bin" || name = "obj") && Directory.Exists d && not (d.Contains "/.git/") then Directory.Delete(d, true)
| t ->
    eprintfn "build.fsx: unknown target '%s' (known: restore, build, test, golden, properties, bench, clean)" t
    exit 2
