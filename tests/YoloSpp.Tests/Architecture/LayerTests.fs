/// The C# engine's layers (CONTRIBUTING.md, "Layers"): a file may use the types of its own layer and of the layers
/// below it, never those of a layer above. Read from the sources: plain `using`s, `using` aliases and qualified names.
/// The F# core (the YoloSpp.Fs assembly) lies below every layer, even where it shares a namespace with one
/// (`YoloSpp.Training.Hyp`): a file reaches it through an alias (`using Hyp = YoloSpp.Training.Hyp;`).
module YoloSpp.Tests.Architecture.LayerTests

open System
open System.IO
open System.Text.RegularExpressions
open Expecto
open YoloSpp.Tests

/// The layers, lowest first; the namespaces of one layer may use each other.
let layers =
    [
        [ "YoloSpp"; "YoloSpp.IO" ] // errors, recipes, hyperparameters, file writing
        [ "YoloSpp.Distributed" ] // the communicator (MPI) data-parallel runs reduce through
        [ "YoloSpp.Platform" ] // the machine: backend, convolution guard and checks, oneDNN, CPU, memory, doctor
        [ "YoloSpp.Geometry" ]
        [ "YoloSpp.Data" ]
        [ "YoloSpp.Model" ]
        [ "YoloSpp.Detection" ]
        [ "YoloSpp.Evaluation" ]
        [ "YoloSpp.Training" ]
        [ "YoloSpp.Export" ]
    ]

let private layerOf =
    layers
    |> List.indexed
    |> List.collect (fun (i, l) -> l |> List.map (fun ns -> ns, i))
    |> Map.ofList

let private engineDir = Path.Combine(TestUtil.repoRoot, "src", "YoloSpp.CSharp")

/// The engine's types by namespace (from the assembly: public and internal, not nested).
let private engineTypes =
    lazy
        (typeof<YoloSpp.Model.DarkNet>.Assembly.GetTypes()
         |> Array.filter (fun t -> not t.IsNested && not (isNull t.Namespace) && not (t.Name.Contains '<'))
         |> Array.map (fun t -> t.Namespace, t.Name.Split('`').[0])
         |> Set.ofArray)

/// Full names of the F# core's types and modules.
let private coreTypes =
    lazy
        (typeof<YoloSpp.Training.OptimizerChoice>.Assembly.GetTypes()
         |> Array.map (fun t -> t.FullName.Replace('+', '.'))
         |> Set.ofArray)

/// Code without comments, strings and character literals (so that prose and messages never count).
let private code (text: string) =
    let noBlock = Regex.Replace(text, @"/\*.*?\*/", " ", RegexOptions.Singleline)

    let noStrings =
        Regex.Replace(noBlock, "\\$?@?\"(?:\\\\.|[^\"\\\\])*\"|'(?:\\\\.|[^'\\\\])'", "\"\"")

    Regex.Replace(noStrings, @"//.*", "")

/// A file's uses of a higher layer, as messages naming the file and the line; `path` only names it.
let violations (path: string) (text: string) =
    let own =
        let m = Regex.Match(text, @"^namespace ([\w.]+);", RegexOptions.Multiline)

        if m.Success then m.Groups.[1].Value else "(no namespace)"

    match Map.tryFind own layerOf with
    | None ->
        [
            sprintf "%s: namespace %s is in no layer (add it to LayerTests.layers and CONTRIBUTING.md)" path own
        ]
    | Some mine ->
        let above (ns: string) =
            match Map.tryFind ns layerOf with
            | Some l -> l > mine
            | None -> false

        let lines = text.Split('\n')

        [
            for i, raw in Array.indexed lines do
                let line = raw.Trim()
                let at = sprintf "%s:%d" path (i + 1)
                let plain = Regex.Match(line, @"^using ([\w.]+);")
                let aliased = Regex.Match(line, @"^using (?:static |\w+ = )([\w.]+);")

                if plain.Success && above plain.Groups.[1].Value then
                    yield sprintf "%s: %s (layer %s) uses %s, a layer above" at own own plain.Groups.[1].Value
                elif aliased.Success then
                    let target = aliased.Groups.[1].Value
                    let ns = target.Substring(0, max 0 (target.LastIndexOf '.'))

                    if above ns && not (coreTypes.Force().Contains target) then
                        yield sprintf "%s: %s uses %s, a layer above" at own target
                elif not (line.StartsWith "using") then
                    // qualified names: YoloSpp.Training.Checkpoint, or Training.Checkpoint from inside YoloSpp.*
                    for m in Regex.Matches(code raw, @"(?<![\w.])(?:YoloSpp\.)?(\w+)\.(\w+)") do
                        let ns = "YoloSpp." + m.Groups.[1].Value

                        if above ns && engineTypes.Force().Contains((ns, m.Groups.[2].Value)) then
                            yield sprintf "%s: %s uses %s.%s, a layer above" at own ns m.Groups.[2].Value
        ]

let private sources () =
    Directory.GetFiles(engineDir, "*.cs", SearchOption.AllDirectories)
    |> Array.filter (fun f ->
        let rel = Path.GetRelativePath(engineDir, f)
        not (rel.StartsWith "obj" || rel.StartsWith "bin"))
    |> Array.sort

let tests =
    testList
        "architecture"
        [
            test "no file of the C# engine uses a layer above its own" {
                let found =
                    [
                        for f in sources () do
                            yield! violations (Path.GetRelativePath(TestUtil.repoRoot, f)) (File.ReadAllText f)
                    ]

                if not found.IsEmpty then
                    failtestf "%d uses of a higher layer:\n%s" found.Length (String.Join("\n", found))
            }
            test "a planted upward using, alias or qualified name is found; an alias to the F# core is not" {
                let file = Path.Combine(engineDir, "Data", "YoloDataset.cs")
                let text = File.ReadAllText file
                Expect.isEmpty (violations "YoloDataset.cs" text) "as it is"

                let planted (line: string) =
                    text.Replace("namespace YoloSpp.Data;", line + "\nnamespace YoloSpp.Data;")

                for line in
                    [
                        "using YoloSpp.Training;"
                        "using Ckpt = YoloSpp.Training.Checkpoint;"
                        "static class X { static bool F(string p) => YoloSpp.Model.CheckpointFile.IsCheckpoint(p); }"
                    ] do
                    Expect.equal (violations "YoloDataset.cs" (planted line)).Length 1 line

                Expect.isEmpty (violations "YoloDataset.cs" (planted "using Loss = YoloSpp.Training.Loss;")) "the F# core's Loss"
            }
            test "each folder of the engine is one namespace, its name" {
                let wrong =
                    [
                        for f in sources () do
                            let rel = Path.GetRelativePath(engineDir, f)
                            let folder = Path.GetDirectoryName rel

                            let expected =
                                if String.IsNullOrEmpty folder then
                                    "YoloSpp"
                                else
                                    "YoloSpp." + folder.Replace(Path.DirectorySeparatorChar, '.')

                            if not (File.ReadAllText(f).Contains(sprintf "namespace %s;" expected)) then
                                yield sprintf "%s: expected namespace %s" rel expected
                    ]

                Expect.isEmpty wrong "folders and namespaces"
            }
            test "the runner reaches no internals, and scripts/train.fsx loads only libraries" {
                let granted (project: string) =
                    Regex.Matches(File.ReadAllText(Path.Combine(TestUtil.repoRoot, project)), "InternalsVisibleTo Include=\"([^\"]+)\"")
                    |> Seq.map (fun m -> m.Groups[1].Value)
                    |> Set.ofSeq

                Expect.equal (granted "src/YoloSpp.CSharp/YoloSpp.CSharp.csproj") (set [ "YoloSpp.Tests"; "yolospp-bench" ]) "the engine's friends"
                Expect.equal (granted "src/YoloSpp.Fs/YoloSpp.Fs.fsproj") (set [ "YoloSpp.CSharp"; "YoloSpp.Tests" ]) "the core's friends"

                let loaded =
                    Regex.Matches(File.ReadAllText(Path.Combine(TestUtil.repoRoot, "scripts", "train.fsx")), "#r \"[^\"]*/([^/\"]+\.dll)\"")
                    |> Seq.map (fun m -> m.Groups[1].Value)
                    |> List.ofSeq

                Expect.contains loaded "YoloSpp.App.dll" "the app layer"
                Expect.isFalse (List.contains "yolospp.dll" loaded) "not the runner's executable"
            }
        ]
