/// The runner's one mapping from failures to exit codes: 0 success, 1 a failed run (a non-finite loss, an
/// environment problem), 2 bad input (usage, malformed or missing files, options out of range). Bad input is printed
/// as one line per problem (file:line: reason), at most `maxLines` of them, and never as a stack trace.
module YoloSpp.App.Errors

open System
open System.IO
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training

/// Problems printed per failure before "... and N more".
let maxLines = 20

let private printLines (lines: seq<string>) =
    let all = Seq.toArray lines

    for l in Seq.truncate maxLines all do
        eprintfn "%s" l

    if all.Length > maxLines then
        eprintfn "... and %d more problems" (all.Length - maxLines)

/// Prints warnings to stderr ("warning: ..."), at most `maxLines` of them before a count of the rest.
let printWarnings (warnings: seq<string>) =
    printLines (warnings |> Seq.map (sprintf "warning: %s"))

/// The exit code of a failure, after printing it to stderr; None for an exception that is a bug (it propagates
/// with its stack trace).
let exitCodeOf (e: exn) : int option =
    match e with
    | :? InvalidInputException as bad ->
        printLines (bad.Errors |> Seq.map string)
        Some 2
    | :? ArgumentException ->
        printLines (e.Message.Split('\n'))
        Some 2
    | :? NonFiniteLossException ->
        eprintfn "%s" e.Message
        Some 1
    | :? IOException ->
        eprintfn "%s" e.Message
        Some 1
    // a setup this version does not run (e.g. --rect on several MPI ranks)
    | :? NotSupportedException ->
        eprintfn "%s" e.Message
        Some 2
    | _ -> None

/// Runs a command body; a failure becomes its exit code (see `exitCodeOf`).
let run (body: unit -> int) : int =
    try
        body ()
    with e ->
        match exitCodeOf e with
        | Some code -> code
        | None -> reraise ()
