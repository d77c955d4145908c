// The IoU family's properties with FsCheck, for exploring the geometry (the test suite runs the same list).
//   dotnet fsi scripts/properties.fsx [--max-test N]
#r "nuget: FsCheck, 3.6.0"
#load "yolospp.fsx"
#load "../tests/YoloSpp.Tests/Geometry/IouProperties.fs"

open FsCheck
open YoloSpp.Tests.Geometry

let maxTest =
    match fsi.CommandLineArgs |> Array.toList |> List.skip 1 with
    | [ "--max-test"; n ] -> int n
    | [] -> 200
    | other -> failwithf "usage: dotnet fsi scripts/properties.fsx [--max-test N] (got %A)" other

let config = Config.Quick.WithMaxTest(maxTest).WithQuietOnSuccess(false)
let mutable failures = 0

for name, prop in IouProperties.properties do
    printf "%s: " name

    try
        Check.One(config.WithQuietOnSuccess(false), prop)
    with e ->
        failures <- failures + 1
        printfn "%s" e.Message

if failures > 0 then
    exit 1
