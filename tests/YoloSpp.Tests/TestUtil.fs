/// Helpers shared by the tests: locating the repository and the shared folder.
module YoloSpp.Tests.TestUtil

open System
open System.IO

/// The repository root (the folder holding YoloSpp.sln), found upwards from the test binary.
let repoRoot =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "cannot find YoloSpp.sln above the test binary"
        elif File.Exists(Path.Combine(d.FullName, "YoloSpp.sln")) then d.FullName
        else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// The golden folder: env YOLOSPP_GOLDEN_DIR, else ../shared/golden beside the repository.
let goldenDir =
    match Environment.GetEnvironmentVariable "YOLOSPP_GOLDEN_DIR" with
    | null | "" -> Path.GetFullPath(Path.Combine(repoRoot, "..", "shared", "golden"))
    | d -> Path.GetFullPath d
