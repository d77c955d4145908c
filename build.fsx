// Build script: `dotnet fsi build.fsx <target> [-- extra args]`.
// Targets: restore, build, test, golden, properties, bench, pack, clean. A plain F# script (FAKE's CLI does not run on .NET 10).
open System
open System.Diagnostics
open System.IO

let root = __SOURCE_DIRECTORY__
let config = "Release"

let run (exe: string) (args: string list) =
    let psi =
        ProcessStartInfo(exe, args, WorkingDirectory = root, UseShellExecute = false)

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

    step
        "dotnet"
        [
            "build"
            "YoloSpp.sln"
            "-c"
            config
            "--nologo"
            "-v"
            "quiet"
            "-clp:NoSummary"
        ]

/// Runs the Expecto test exe; its last line is "N passed, N failed, N skipped".
let test (extra: string list) =
    build ()

    exit (
        run
            "dotnet"
            ([
                "run"
                "--project"
                "tests/YoloSpp.Tests"
                "-c"
                config
                "--no-build"
                "--"
                "--colours"
                "0"
             ]
             @ extra)
    )

/// The NuGet packages YoloSpp.FSharp and YoloSpp (and the yolospp tool with `pack -- --tool`) in artifacts/packages;
/// extra arguments go to each `dotnet pack` (e.g. -p:Version=0.2.0, -p:TorchBackend=cuda).
let pack (extra: string list) =
    restore ()
    let tool = List.contains "--tool" extra
    let extra = extra |> List.filter ((<>) "--tool")
    let out = Path.Combine(root, "artifacts", "packages")

    let projects =
        [ "src/YoloSpp.Fs"; "src/YoloSpp.CSharp" ]
        @ (if tool then [ "src/YoloSpp.Cli" ] else [])

    for p in projects do
        // Paket's pack step takes every *.<version>.nuspec of obj/<config>: drop those of earlier packs (other ids)
        let objDir = Path.Combine(root, p, "obj", config)

        if Directory.Exists objDir then
            for f in Directory.GetFiles(objDir, "*.nuspec") do
                File.Delete f
        // YoloSppPackaging: the packages depend on libtorch-cpu (every OS), the repository's builds on the host's natives
        step
            "dotnet"
            ([
                "pack"
                p
                "-c"
                config
                "--nologo"
                "-v"
                "quiet"
                "-p:YoloSppPackaging=true"
                "-o"
                out
             ]
             @ extra)

    printfn "packages in %s" out

/// Builds, then runs the benchmarks (bench/YoloSpp.Bench, `yolospp-bench`); extra arguments go to it.
let bench (extra: string list) =
    build ()

    exit (
        run
            "dotnet"
            ([ "run"; "--project"; "bench/YoloSpp.Bench"; "-c"; config; "--no-build"; "--" ]
             @ extra)
    )

let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.toList

let target, extra =
    match args with
    | [] -> "build", []
    | t :: rest ->
        t,
        (match rest with
         | "--" :: r -> r
         | r -> r)

match target with
| "restore" -> restore ()
| "build" -> build ()
| "test" -> test extra
| "golden" -> test ([ "--filter"; "golden" ] @ extra)
| "bench" -> bench extra
| "pack" -> pack extra
| "properties" -> test ([ "--filter"; "properties" ] @ extra)
| "clean" ->
    for d in Directory.GetDirectories(root, "*", SearchOption.AllDirectories) do
        let name = Path.GetFileName d

        if
            (name = "bin" || name = "obj")
            && Directory.Exists d
            && not (d.Contains "/.git/")
        then
            Directory.Delete(d, true)
| t ->
    eprintfn "build.fsx: unknown target '%s' (known: restore, build, test, golden, properties, bench, pack, clean)" t
    exit 2
