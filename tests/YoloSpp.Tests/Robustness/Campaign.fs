/// The robustness campaign's runner: bad inputs and faults (files, options, kills) run through the `yolospp` runner
/// as processes, each classified as the table of the issue does: clear (refused with the expected exit code and a
/// message naming what is wrong), handled (accepted and done right), vague (the right exit code, but the message
/// does not name the file, option or layer), wrong (another exit code, or a result that is not right), crash (a
/// stack trace, an unhandled exception, a signal), hang (past its time) and loss (a file of an earlier run changed
/// or gone). The cases are in CampaignData.fs, CampaignFiles.fs and CampaignRuns.fs; the test passes when every case is clear or
/// handled, and prints the table.
module YoloSpp.Tests.Robustness.Campaign

open System
open System.Diagnostics
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Tests

/// What a case did.
type Outcome =
    {
        Code: int
        Out: string
        Err: string
        TimedOut: bool
        /// a check of the result that failed (the case is then wrong)
        Problem: string option
        /// a file of an earlier run that changed or went (the case is then a loss)
        Lost: string option
    }

/// The columns of the table.
type Verdict =
    | Clear
    | Handled
    | Vague
    | Wrong
    | Crash
    | Hang
    | Loss

/// The files every case may start from (made once): a shapes set, the tiny network for its classes, random weights
/// for it, its names, and a one-epoch run of it.
type Fixture =
    {
        Root: string
        Dataset: string
        Cfg: string
        Weights: string
        Names: string
        Run: string
    }

/// One case's own folder and the fixture.
type Ctx = { Dir: string; Fixture: Fixture }

/// A case: its family, what it tries, the exit code it must give, what the output must name, whether acceptance
/// is the right answer (handled) or refusal (clear), and how it runs.
type Case =
    {
        Family: string
        Name: string
        Code: int
        Mentions: string list
        Accepts: bool
        Run: Ctx -> Outcome
    }

/// The time one case may take (the machine may be shared with trainings).
let caseTimeout = TimeSpan.FromMinutes 4.0

/// Starts the runner with `args` in `cwd` (stdout and stderr read as they come).
let start (cwd: string) (args: string list) =
    let psi =
        ProcessStartInfo("dotnet", BuildTests.cliDll :: args, WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true)

    let p = Process.Start psi
    p, p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()

/// Waits for a started runner; an outcome (killed and TimedOut past `caseTimeout`).
let finish (p: Process, out: Task<string>, err: Task<string>) =
    use p = p
    let done' = p.WaitForExit(int caseTimeout.TotalMilliseconds)

    if not done' then
        p.Kill true
        p.WaitForExit()

    {
        Code = p.ExitCode
        Out = out.Result
        Err = err.Result
        TimedOut = not done'
        Problem = None
        Lost = None
    }

/// Runs the runner with `args` in the case's folder.
let cli (ctx: Ctx) (args: string list) = finish (start ctx.Dir args)

/// The outcome with a failed check of its result.
let problem (why: string) (o: Outcome) = { o with Problem = Some why }

/// The outcome, failed when `ok` is false.
let check (ok: bool) (why: string) (o: Outcome) = if ok then o else problem why o

/// Copies a folder tree.
let rec copyTree (source: string) (target: string) =
    Directory.CreateDirectory target |> ignore

    for f in Directory.GetFiles source do
        File.Copy(f, Path.Combine(target, Path.GetFileName f))

    for d in Directory.GetDirectories source do
        copyTree d (Path.Combine(target, Path.GetFileName d))

/// A fresh copy of the shapes set in the case's folder; its .data file.
let dataset (ctx: Ctx) =
    let dir = Path.Combine(ctx.Dir, "ds")
    copyTree ctx.Fixture.Dataset dir
    Path.Combine(dir, "shapes.data")

/// A file of the case's folder with the given text; its path.
let text (ctx: Ctx) (name: string) (content: string) =
    let path = Path.Combine(ctx.Dir, name)
    File.WriteAllText(path, content)
    path

/// A file of the case's folder with the given bytes; its path.
let bytes (ctx: Ctx) (name: string) (content: byte[]) =
    let path = Path.Combine(ctx.Dir, name)
    File.WriteAllBytes(path, content)
    path

/// The runner's train command on `data` with the fixture's network, one epoch at 64 px.
let train (ctx: Ctx) (data: string) (extra: string list) =
    WhyFixtures.trainArgs data ctx.Fixture.Cfg extra

let private crashed (o: Outcome) =
    o.Err.Contains "   at "
    || o.Err.Contains "Unhandled exception"
    || o.Err.Contains "Stack overflow"
    || not (List.contains o.Code [ 0; 1; 2; 130 ])

/// The column of a case's outcome.
let classify (c: Case) (o: Outcome) =
    if o.TimedOut then
        Hang
    elif crashed o then
        Crash
    elif o.Lost.IsSome then
        Loss
    elif o.Code <> c.Code || o.Problem.IsSome then
        Wrong
    elif
        c.Mentions
        |> List.exists (fun m -> not ((if c.Accepts then o.Out + o.Err else o.Err).Contains m))
    then
        Vague
    elif c.Accepts then
        Handled
    else
        Clear

/// Makes the fixture in a folder of its own (deleted when the tests end).
let fixture =
    lazy
        (let root = TestUtil.fixtureDir "yolospp-campaign-"
         let data = WhyFixtures.shapes (Path.Combine(root, "ds"))
         let cfg = WhyFixtures.tinyCfg root
         let weights = Path.Combine(root, "w.safetensors")
         WhyFixtures.randomWeights cfg weights
         let run = Path.Combine(root, "run")

         let code, out, err =
             WhyFixtures.run root (WhyFixtures.trainArgs data cfg [ "--output"; run; "--notest" ])

         if code <> 0 then
             failtestf "the campaign's fixture run failed: %s %s" out err

         {
             Root = root
             Dataset = Path.GetDirectoryName data
             Cfg = cfg
             Weights = weights
             Names = Path.Combine(Path.GetDirectoryName data, "shapes.names")
             Run = run
         })

/// Runs every case, `atOnce` at a time, each in a fresh folder; the case, its verdict and outcome.
let runAll (atOnce: int) (cases: Case list) =
    let f = fixture.Force()
    use gate = new SemaphoreSlim(atOnce)

    cases
    |> List.mapi (fun i c ->
        task {
            do! gate.WaitAsync()

            try
                let dir =
                    Directory.CreateDirectory(Path.Combine(f.Root, sprintf "case%03d" i)).FullName

                let o =
                    try
                        c.Run { Dir = dir; Fixture = f }
                    with e ->
                        {
                            Code = -1
                            Out = ""
                            Err = ""
                            TimedOut = false
                            Problem = Some(sprintf "the case itself failed: %s" e.Message)
                            Lost = None
                        }

                return c, classify c o, o
            finally
                gate.Release() |> ignore
        })
    |> Task.WhenAll
    |> fun t -> t.Result |> List.ofArray

let private columns = [ Clear; Handled; Vague; Wrong; Crash; Hang; Loss ]

/// The table: a row per family (cases per column) and the total, as markdown.
let table (results: (Case * Verdict * Outcome) list) =
    let row (name: string) (rs: (Case * Verdict * Outcome) list) =
        let counts =
            columns
            |> List.map (fun v -> rs |> List.filter (fun (_, w, _) -> w = v) |> List.length |> string)

        sprintf "| %s | %d | %s |" name rs.Length (String.Join(" | ", counts))

    [
        yield "| family | cases | clear | handled | vague | wrong | crash | hang | loss |"
        yield "|---|---|---|---|---|---|---|---|---|"
        for family, rs in results |> List.groupBy (fun (c, _, _) -> c.Family) -> row family rs
        yield row "**total**" results
    ]

/// One line per case: family, name, verdict, exit code.
let listing (results: (Case * Verdict * Outcome) list) =
    [
        for c, v, o in results -> sprintf "%-10s %-8A exit %3d  %s" c.Family v o.Code c.Name
    ]

/// What went wrong with a case that is neither clear nor handled.
let explain (c: Case, v: Verdict, o: Outcome) =
    let tail (s: string) =
        if s.Length > 1500 then
            "…" + s.Substring(s.Length - 1500)
        else
            s

    sprintf
        "%s / %s: %A (exit %d, expected %d%s%s)\nmentions expected: %A\nstdout: %s\nstderr: %s"
        c.Family
        c.Name
        v
        o.Code
        c.Code
        (o.Problem |> Option.map (sprintf "; %s") |> Option.defaultValue "")
        (o.Lost |> Option.map (sprintf "; lost %s") |> Option.defaultValue "")
        c.Mentions
        (tail o.Out)
        (tail o.Err)
