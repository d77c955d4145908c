/// Launching the runner under `mpirun` in tests: the launcher found on PATH, a run with a time limit, and a skip
/// with a message when OpenMPI is not installed.
module YoloSpp.Tests.Distributed.MpiRun

open System
open System.Diagnostics
open System.IO
open Expecto
open YoloSpp.Tests

/// mpirun on PATH, if any.
let mpirun =
    lazy
        (Environment.GetEnvironmentVariable("PATH").Split(Path.PathSeparator)
         |> Array.map (fun d -> Path.Combine(d, "mpirun"))
         |> Array.tryFind File.Exists)

/// Starts `mpirun -np n dotnet yolospp.dll args` in `cwd`; the process and its stdout and stderr as they come.
let start (cwd: string) (n: int) (args: string list) =
    let psi =
        ProcessStartInfo(mpirun.Value.Value, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = cwd)

    for a in
        [
            "--allow-run-as-root"
            "--oversubscribe"
            "-np"
            string n
            "dotnet"
            BuildTests.cliDll
        ]
        @ args do
        psi.ArgumentList.Add a

    let p = Process.Start psi
    p, p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()

/// Waits for a started launch up to `limit` (killing it and failing the test past it); (exit code, stdout + stderr).
let finish (p: Process, out: Threading.Tasks.Task<string>, err: Threading.Tasks.Task<string>) (what: string) (limit: TimeSpan) =
    if not (p.WaitForExit limit) then
        p.Kill true
        failtestf "%s did not end within %O" what limit

    p.WaitForExit()
    p.ExitCode, out.Result + err.Result

/// Runs `mpirun -np n dotnet yolospp.dll args` in `cwd` with a time limit; (exit code, stdout + stderr, seconds).
let underMpiIn (cwd: string) (n: int) (args: string list) (limit: TimeSpan) =
    let watch = Stopwatch.StartNew()

    let code, out =
        finish (start cwd n args) (sprintf "mpirun -np %d %s" n (String.Join(" ", args))) limit

    code, out, watch.Elapsed.TotalSeconds

/// `underMpiIn` from the repository root.
let underMpi = underMpiIn TestUtil.repoRoot

/// Runs f when mpirun is installed, else skips the test saying what to install.
let withMpirun (f: unit -> unit) =
    match mpirun.Force() with
    | None -> skiptest "mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    | Some _ -> f ()
