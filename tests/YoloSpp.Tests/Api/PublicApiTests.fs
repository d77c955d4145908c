/// The public API of the C# façade as a snapshot (tests/YoloSpp.Tests/Api/YoloSpp.CSharp.api.txt), so that every change
/// to it is deliberate, and the check that no F# type (option, list, map, function, record, union) appears in it.
module YoloSpp.Tests.Api.PublicApiTests

open System
open System.IO
open Expecto
open PublicApiGenerator
open YoloSpp.Tests

let private snapshot =
    Path.Combine(TestUtil.repoRoot, "tests", "YoloSpp.Tests", "Api", "YoloSpp.CSharp.api.txt")

/// The façade's public API as PublicApiGenerator prints it (no assembly attributes, LF line ends).
let publicApi () =
    let options = ApiGeneratorOptions(IncludeAssemblyAttributes = false)
    typeof<YoloSpp.Training.Trainer>.Assembly.GeneratePublicApi(options).Replace("\r\n", "\n")

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
            test "the C# façade's public API equals the approved snapshot" {
                let api = publicApi ()

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
