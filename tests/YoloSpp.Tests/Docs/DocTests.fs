/// The documentation as a reader meets it: the README a front door of at most 250 lines, every shell block run by a
/// test or marked illustrative, links that lead somewhere, the C# example the package sample's code, and the blocks
/// the tests here run (`tested: cli-tour`, `tested: two-commands`; the README's install, package and own-images
/// blocks are run by AcceptanceTests).
module YoloSpp.Tests.Docs.DocTests

open System
open System.IO
open System.Text.RegularExpressions
open Expecto
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests
open YoloSpp.Tests.Docs.DocBlocks

/// The IDs of `<!-- tested: ID -->` that a test runs: install, package and own-images (AcceptanceTests), cli-tour and
/// two-commands (here).
let knownIds =
    set [ "install"; "package"; "own-images"; "cli-tour"; "two-commands" ]

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
let private slug (heading: string) =
    let kept =
        heading.ToLowerInvariant()
        |> String.filter (fun c -> Char.IsLetterOrDigit c || c = ' ' || c = '-' || c = '_')

    kept.Replace(' ', '-')

let private anchorsOf (path: string) =
    File.ReadAllLines path
    |> Array.filter (fun l -> l.StartsWith "#")
    |> Array.map (fun l -> slug (l.TrimStart('#').Trim()))
    |> Set.ofArray

let private readme () =
    File.ReadAllText(Path.Combine(TestUtil.repoRoot, "README.md"))

let tests =
    testList
        "docs"
        [
            test "the README is a front door: at most 250 lines, its sections in order" {
                let lines = File.ReadAllLines(Path.Combine(TestUtil.repoRoot, "README.md"))
                Expect.isLessThanOrEqual lines.Length 250 "lines"

                let headings = lines |> Array.filter (fun l -> l.StartsWith "## ") |> List.ofArray

                Expect.equal
                    headings
                    [
                        "## Install"
                        "## Two commands"
                        "## Train on your own images"
                        "## From C#"
                        "## Commands"
                        "## More"
                    ]
                    "what it is (the first paragraph), install, the two commands, your own images, C#, the commands, links"

                // one line per command of the runner
                let code, help, _ = yolospp [ "--help" ]
                Expect.equal code 0 "yolospp --help"

                let commands =
                    Regex.Matches(help, @"^\s{4}(?<c>[a-z][a-z0-9-]+)\s", RegexOptions.Multiline)
                    |> Seq.map (fun m -> m.Groups["c"].Value)
                    |> Seq.filter (fun c -> c <> "version" && c <> "help")
                    |> List.ofSeq

                Expect.isGreaterThan commands.Length 10 (sprintf "commands in --help: %A" commands)
                let table = section "README.md" "Commands"

                for c in commands do
                    Expect.stringContains table (sprintf "| `%s` |" c) (sprintf "the README's command list has %s" c)
            }
            test "every shell block of README.md, CONTRIBUTING.md and docs/*.md is marked tested (by a test that runs it) or illustrative" {
                let blocks = allBlocks ()
                let shell = blocks |> List.filter (fun b -> shellLanguages.Contains b.Language)
                Expect.isGreaterThan shell.Length 10 "shell blocks found"

                for b in shell do
                    match b.Marker with
                    | Unmarked -> failtestf "%s: a shell block neither `<!-- tested: ID -->` nor `<!-- illustrative -->`" b.Where
                    | Tested id -> Expect.isTrue (knownIds.Contains id) (sprintf "%s: no test runs blocks marked 'tested: %s'" b.Where id)
                    | Illustrative -> ()

                for id in knownIds do
                    Expect.isNonEmpty (testedCommands id) (sprintf "a test runs 'tested: %s', but no block is marked so" id)
            }
            test "every relative link of the documentation leads to a file, and to a heading when it names one" {
                for file in docFiles () do
                    let text = File.ReadAllText file
                    let dir = Path.GetDirectoryName file

                    for m in Regex.Matches(text, @"\]\((?<target>[^)\s]+)\)") do
                        let target = m.Groups["target"].Value

                        if not (target.StartsWith "http") then
                            let path, anchor =
                                match target.Split('#', 2) with
                                | [| p; a |] -> p, Some a
                                | a -> a[0], None

                            let full =
                                if path = "" then
                                    file
                                else
                                    Path.GetFullPath(Path.Combine(dir, path))

                            Expect.isTrue (File.Exists full || Directory.Exists full) (sprintf "%s: link to %s" file target)

                            anchor
                            |> Option.iter (fun a -> Expect.isTrue (anchorsOf full |> Set.contains a) (sprintf "%s: %s has no heading '#%s'" file path a))
            }
            test "the README's C# example is examples/PackageSample/Program.cs" {
                let sample =
                    File.ReadAllText(Path.Combine(TestUtil.repoRoot, "examples", "PackageSample", "Program.cs"))

                Expect.equal (sample.Replace("\r\n", "\n")) (blockIn "README.md" "From C#" "csharp") "the same code"
            }
            test "the reference is pinned once: repository, folder and commit in docs/reference-parity.md" {
                let pin = section "docs/reference-parity.md" "The reference"

                for part in
                    [
                        "WZMIAOMIAO/deep-learning-for-image-processing"
                        "pytorch_object_detection/yolov3_spp"
                        "fafdc48923146faede01ede801d3772b0239f96a"
                    ] do
                    Expect.stringContains pin part "the pin"

                let elsewhere =
                    docFiles ()
                    |> List.filter (fun f -> File.ReadAllText(f).Contains "fafdc48923146faede01ede801d3772b0239f96a")

                Expect.equal elsewhere.Length 1 "the commit is written in one place"
            }
            test "no line names a file no command writes: the outputs the issue found wrong stay gone" {
                for file in docFiles () do
                    let text = File.ReadAllText file

                    for wrong, why in
                        [
                            "best.safetensors", "training writes .ckpt files"
                            "voc.names", "voc2yolo writes classes.names"
                            "--output cfg/my.cfg", "dataset-cfg's --output is a folder"
                        ] do
                        Expect.isFalse (text.Contains wrong) (sprintf "%s names '%s' (%s)" file wrong why)
            }
            test "docs/cli.md's quick tour runs as written from an empty folder" {
                let dir = (Directory.CreateTempSubdirectory "yolospp-tour-").FullName

                try
                    let commands = testedCommands "cli-tour"

                    let outputs =
                        [
                            for command in commands ->
                                let w = words command
                                Expect.equal (List.head w) "yolospp" command
                                let code, out, err = runProcess "dotnet" (cliDll :: List.tail w) dir
                                Expect.equal code 0 (sprintf "'%s': %s %s" command out err)
                                out
                        ]

                    let all = String.Join("\n", outputs)
                    // what cli.md says they print
                    Expect.stringContains all "GIoU  0.1388888888888889" "iou"
                    Expect.stringContains all (YoloSpp.HyperParameters.Shapes.AdjustedFor(2, 320).ToString()) "hyp shapes, adjusted for 2 classes at 320"
                    Expect.stringContains all "yolov3-spp-20.cfg: yolov3-spp, 20 classes, 114 layers" "cfg"
                    Expect.stringContains all "GFLOPs at 416x416" "info"
                finally
                    Directory.Delete(dir, true)
            }
            test "the README's two commands: the script trains as written (small options added), and CI runs the test command" {
                let commands = testedCommands "two-commands"
                Expect.equal commands [ "dotnet fsi scripts/train.fsx"; "dotnet fsi build.fsx test" ] "the two commands, as they are"

                let ci = File.ReadAllText(Path.Combine(TestUtil.repoRoot, ".ci", "run"))
                Expect.isTrue (ci.Split('\n') |> Array.exists (fun l -> l.Trim() = commands[1])) ".ci/run runs the test command"

                let dir = (Directory.CreateTempSubdirectory "yolospp-script-").FullName

                try
                    let data =
                        YoloSpp.Data.ShapesDataset
                            .Generate(YoloSpp.Data.ShapesOptions(Path.Combine(dir, "data"), Train = 8, Val = 4, Size = 64, Seed = 5))
                            .DataFile

                    let w = words commands[0]

                    let small =
                        [
                            "--data"
                            data
                            "--epochs"
                            "1"
                            "--img-size"
                            "64"
                            "--batch-size"
                            "4"
                            "--output"
                            Path.Combine(dir, "run")
                        ]

                    let code, out, err =
                        runProcess (List.head w) (List.tail w @ small) TestUtil.repoRoot

                    Expect.equal code 0 (sprintf "%s: %s %s" commands[0] out err)

                    Expect.stringContains
                        out
                        (sprintf "weights: %s (best: %s)" (Path.Combine(dir, "run", "last.ckpt")) (Path.Combine(dir, "run", "best.ckpt")))
                        "the summary"

                    Expect.stringContains out "epoch 0/0" "epochs count from 0"
                finally
                    Directory.Delete(dir, true)
            }
        ]
