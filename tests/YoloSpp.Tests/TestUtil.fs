/// Helpers shared by the tests: locating the repository and the shared folder.
module YoloSpp.Tests.TestUtil

open System
open System.IO

/// The repository root (the folder holding YoloSpp.sln), found upwards from the test binary.
let repoRoot =
    let rec up (d: DirectoryInfo) =
        if isNull d then
            failwith "cannot find YoloSpp.sln above the test binary"
        elif File.Exists(Path.Combine(d.FullName, "YoloSpp.sln")) then
            d.FullName
        else
            up d.Parent

    up (DirectoryInfo AppContext.BaseDirectory)

/// The repository's copy of the golden vectors (tests/golden).
let repoGoldenDir = Path.Combine(repoRoot, "tests", "golden")

/// The golden folder the runner reads: env YOLOSPP_GOLDEN_DIR, else the repository's copy.
let goldenDir =
    match Environment.GetEnvironmentVariable "YOLOSPP_GOLDEN_DIR" with
    | null
    | "" -> repoGoldenDir
    | d -> Path.GetFullPath d

/// The data files the tests use (cfgs, weights) from the repository's copy, wherever the runner's cases come from.
let goldenFile (name: string) = Path.Combine(repoGoldenDir, name)

/// Runs f, expects exception 'E, returns its message.
let throwsMessage<'E when 'E :> exn> (f: unit -> unit) =
    try
        f ()
        Expecto.Tests.failtestf "expected %s" typeof<'E>.Name
    with :? 'E as e ->
        e.Message

/// A new temporary folder for a fixture that lives as long as the test process: deleted when it exits.
let fixtureDir (prefix: string) =
    let dir = (Directory.CreateTempSubdirectory prefix).FullName

    AppDomain.CurrentDomain.ProcessExit.Add(fun _ ->
        try
            Directory.Delete(dir, true)
        with _ ->
            ())

    dir
