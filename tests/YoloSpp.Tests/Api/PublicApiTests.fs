/// The public APIs as snapshots, so that every change to them is deliberate: the C# façade's
/// (tests/YoloSpp.Tests/Api/YoloSpp.CSharp.api.txt) and the F# core's, which ships as the YoloSpp.FSharp package
/// (YoloSpp.FSharp.api.txt); and the check that no F# type (option, list, map, function, record, union) appears in the
/// façade's.
module YoloSpp.Tests.Api.PublicApiTests

open System
open System.IO
open Expecto
open PublicApiGenerator
open YoloSpp.Tests

let private snapshotFile (name: string) =
    Path.Combine(TestUtil.repoRoot, "tests", "YoloSpp.Tests", "Api", name)

/// An assembly's public API as PublicApiGenerator prints it (no assembly attributes, nor the F# compiler's
/// bookkeeping attributes; LF line ends).
let private apiOf (assembly: Reflection.Assembly) =
    let options =
        ApiGeneratorOptions(
            IncludeAssemblyAttributes = false,
            ExcludeAttributes =
                [|
                    "Microsoft.FSharp.Core.CompilationArgumentCountsAttribute"
                    "Microsoft.FSharp.Core.CompilationMappingAttribute"
                    "Microsoft.FSharp.Core.CompilationSourceNameAttribute"
                    // names the compiler's state machine (<Detect>d__28): not API, and renumbered by any new method
                    "System.Runtime.CompilerServices.AsyncIteratorStateMachineAttribute"
                |]
        )

    assembly.GeneratePublicApi(options).Replace("\r\n", "\n")

/// The façade's public API.
let publicApi () =
    apiOf typeof<YoloSpp.Training.Trainer>.Assembly

/// Fails, writing NAME.received.txt beside the snapshot, when `api` differs from the approved snapshot `name`.
let private approve (name: string) (api: string) =
    let snapshot = snapshotFile name

    let approved =
        if File.Exists snapshot then
            File.ReadAllText(snapshot).Replace("\r\n", "\n")
        else
            ""

    if api <> approved then
        let received = Path.ChangeExtension(snapshot, ".received.txt")
        File.WriteAllText(received, api)
        let a, b = approved.Split('\n'), api.Split('\n')
        let removed = a |> Array.except b |> Array.truncate 15
        let added = b |> Array.except a |> Array.truncate 15

        failtestf
            "the public API changed: review %s and copy it over %s if the change is meant.\nremoved:\n%s\nadded:\n%s"
            received
            snapshot
            (String.Join("\n", removed))
            (String.Join("\n", added))

/// Full names of the F# assembly's and FSharp.Core's public types that the façade must not show.
let private fsharpTypes () =
    [ typeof<YoloSpp.SourceError>.Assembly; typeof<option<int>>.Assembly ]
    |> Seq.collect (fun a -> a.GetExportedTypes())
    |> Seq.map (fun t ->
        (if t.IsGenericType then
             t.FullName.Substring(0, t.FullName.IndexOf '`')
         else
             t.FullName)
            .Replace('+', '.'))
    |> Seq.filter (fun n -> not (String.IsNullOrEmpty n))
    |> Set.ofSeq

let tests =
    testList
        "api"
        [
            test "the C# façade's public API equals the approved snapshot" { approve "YoloSpp.CSharp.api.txt" (publicApi ()) }
            test "the F# core's public API (the YoloSpp.FSharp package) equals the approved snapshot" {
                approve "YoloSpp.FSharp.api.txt" (apiOf typeof<YoloSpp.SourceError>.Assembly)
            }
            test "no F# type appears in the C# façade's public API" {
                let api = publicApi ()

                let words =
                    api.Split([| ' '; '('; ')'; '<'; '>'; ','; '['; ']'; '?'; ';'; '\n'; '{'; '}' |], StringSplitOptions.RemoveEmptyEntries)
                    |> Set.ofArray

                let leaks = Set.intersect words (fsharpTypes ()) |> Set.toList

                if not leaks.IsEmpty then
                    failtestf "F# types in public signatures (use .NET collections, C# records or façade types): %s" (String.Join(", ", leaks))
            }
        ]
