/// `yolospp-bench`: the benchmarks, a development tool kept out of the shipped runner. Run it with
/// `dotnet fsi build.fsx bench -- <options>` (builds first) or, once built,
/// `dotnet bench/YoloSpp.Bench/bin/Release/net10.0/yolospp-bench.dll <options>`.
module YoloSpp.Bench.Program

open Argu
open YoloSpp.Bench.BenchCommand

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<BenchArgs>(programName = "yolospp-bench")

    try
        run (parser.ParseCommandLine(argv, raiseOnUsage = true))
    with :? ArguParseException as e ->
        if e.ErrorCode = ErrorCode.HelpText then
            printfn "%s" e.Message
            0
        else
            eprintfn "%s" e.Message
            2
