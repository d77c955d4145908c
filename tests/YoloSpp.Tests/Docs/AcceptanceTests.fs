/// The README as a new user follows it, outside the repository: the `yolospp` tool installed from the packages this
/// build packs, the "Train on your own images" commands as written on a small dataset, and a new console app on the
/// `YoloSpp` package that builds with warnings as errors and runs the README's C# example verbatim.
///
/// What the tests change in the README's commands, and only this: they pack with a version of their own (so that
/// NuGet's cache cannot hand back an older build) and install the tool into a folder of their own instead of
/// `--global`; `/path/to/yolospp` is this repository; `yolospp train` gets `--epochs 1 --img-size 64 --batch-size 4`
/// and `yolospp shapes` `--train 4 --val 2 --size 64` appended (a later option wins), so that CI's two cores finish.
module YoloSpp.Tests.Docs.AcceptanceTests

open System
open System.IO
open System.Text.RegularExpressions
open Expecto
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests
open YoloSpp.Tests.Docs.DocBlocks

/// What the tests append to the README's commands (see the module's summary).
let smallOptions (words: string list) =
    match words with
    | _ :: "train" :: _ -> words @ [ "--epochs"; "1"; "--img-size"; "64"; "--batch-size"; "4" ]
    | _ :: "shapes" :: _ -> words @ [ "--train"; "4"; "--val"; "2"; "--size"; "64" ]
    | _ -> words

let private nugetCache () =
    match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
    | null
    | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
    | d -> d

let private deleteQuietly (path: string) =
    try
        if Directory.Exists path then
            Directory.Delete(path, true)
        elif File.Exists path then
            File.Delete path
    with _ ->
        ()

/// The README's install block, run once for every test that needs the packages: its `pack` line with a version of
/// this test run; the packages, and what NuGet cached of them, are removed when the test process exits.
let packed =
    lazy
        (let version = sprintf "0.1.0-test.%d" (DateTime.UtcNow.Ticks / 10_000_000L)
         let feed = Path.Combine(TestUtil.repoRoot, "artifacts", "packages")

         AppDomain.CurrentDomain.ProcessExit.Add(fun _ ->
             for f in
                 (if Directory.Exists feed then
                      Directory.GetFiles(feed, sprintf "*.%s.nupkg" version)
                  else
                      [||]) do
                 deleteQuietly f

             for id in [ "yolospp"; "yolospp.fsharp"; "yolospp.cli" ] do
                 deleteQuietly (Path.Combine(nugetCache (), id, version)))

         let pack =
             testedCommands "install"
             |> List.find (fun c -> c.Contains "build.fsx pack")
             |> words

         let code, out, err =
             runProcess (List.head pack) (List.tail pack @ [ sprintf "-p:Version=%s" version ]) TestUtil.repoRoot

         if code <> 0 then
             failwithf "%s failed: %s %s" (String.Join(" ", pack)) out err

         for id in [ "YoloSpp"; "YoloSpp.FSharp"; "YoloSpp.Cli" ] do
             if not (File.Exists(Path.Combine(feed, sprintf "%s.%s.nupkg" id version))) then
                 failwithf "%s.%s.nupkg was not packed" id version

         version, feed)

/// A temporary folder outside the repository, removed when the test ends.
let private withTempDir (prefix: string) (f: string -> unit) =
    let dir = (Directory.CreateTempSubdirectory prefix).FullName

    try
        f dir
    finally
        deleteQuietly dir

/// The user's dataset of the README's layout: images and labels of generated shapes in `my-data`, with the README's
/// `my.data` verbatim and as many names as it has classes (labels folded onto them).
let private ownImages (work: string) =
    let myData =
        Regex.Matches(section "README.md" "Train on your own images", "```text\n(?<code>.*?)```", RegexOptions.Singleline)
        |> Seq.map (fun m -> m.Groups["code"].Value)
        |> Seq.find (fun t -> t.StartsWith "classes=")

    let classes = int (Regex.Match(myData, @"classes=(\d+)").Groups[1].Value)
    let root = Path.Combine(work, "my-data")
    let generated = Path.Combine(work, "generated")

    YoloSpp.Data.ShapesDataset.Generate(YoloSpp.Data.ShapesOptions(generated, Train = 8, Val = 4, Size = 64, Seed = 2))
    |> ignore

    for split in [ "train"; "val" ] do
        let images = Directory.CreateDirectory(Path.Combine(root, "images", split)).FullName
        let labels = Directory.CreateDirectory(Path.Combine(root, "labels", split)).FullName

        for f in Directory.GetFiles(Path.Combine(generated, "images", split)) do
            File.Copy(f, Path.Combine(images, Path.GetFileName f))

        for f in Directory.GetFiles(Path.Combine(generated, "labels", split)) do
            let rows =
                File.ReadAllLines f
                |> Array.map (fun l ->
                    let w = l.Split ' '
                    String.Join(" ", Array.append [| string (int w[0] % classes) |] w[1..]))

            File.WriteAllLines(Path.Combine(labels, Path.GetFileName f), rows)

    deleteQuietly generated
    File.WriteAllText(Path.Combine(root, "my.data"), myData)
    File.WriteAllLines(Path.Combine(root, "my.names"), [ for k in 1..classes -> sprintf "class%d" k ])

/// The files and folders a section's inline code names (paths with a folder or a file extension).
let namedFiles (text: string) =
    Regex.Matches(text, "`([^`\n]+)`")
    |> Seq.collect (fun m -> m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
    |> Seq.map (fun w -> w.TrimEnd(':', ',', ';', ')'))
    |> Seq.filter (fun w ->
        not (w.StartsWith "-")
        && not (w.StartsWith ".")
        && not (Char.IsDigit w[0])
        && (w.Contains "/"
            || Regex.IsMatch(w, @"\.(ckpt|txt|csv|png|onnx|data|names|cfg|json|jpg)$")))
    |> Seq.distinct
    |> List.ofSeq

let tests =
    testList
        "acceptance"
        [
            test "the README's 'Train on your own images' runs as written with the packed tool, from an empty folder outside the repository" {
                let version, _ = packed.Force()

                withTempDir "yolospp-readme-" (fun dir ->
                    let tools = Path.Combine(dir, "tools")
                    let work = Directory.CreateDirectory(Path.Combine(dir, "work")).FullName

                    // the install block's second line: the tool from artifacts/packages, into a folder of this test
                    let install =
                        testedCommands "install"
                        |> List.find (fun c -> c.Contains "tool install")
                        |> words

                    let install =
                        (install
                         |> List.collect (fun w -> if w = "--global" then [ "--tool-path"; tools ] else [ w ]))
                        @ [ "--version"; version ]

                    let code, out, err =
                        runProcess (List.head install) (List.tail install) TestUtil.repoRoot

                    Expect.equal code 0 (sprintf "%s: %s %s" (String.Join(" ", install)) out err)

                    let exe =
                        Path.Combine(
                            tools,
                            (if OperatingSystem.IsWindows() then
                                 "yolospp.exe"
                             else
                                 "yolospp")
                        )

                    ownImages work
                    let text = section "README.md" "Train on your own images"
                    // the section's hint for readers without images, then its commands, one by one
                    let hint = Regex.Match(text, "`(yolospp shapes [^`]+)`").Groups[1].Value

                    let commands = (if hint = "" then [] else [ hint ]) @ testedCommands "own-images"
                    Expect.isGreaterThanOrEqual commands.Length 8 "the hint and seven commands"

                    let outputs =
                        [
                            for command in commands ->
                                let w = smallOptions (words command)
                                Expect.equal (List.head w) "yolospp" (sprintf "'%s' runs the tool" command)
                                let code, out, err = runProcess exe (List.tail w) work
                                Expect.equal code 0 (sprintf "'%s': %s %s" command out err)
                                Expect.isFalse (err.Contains "CUDA was requested") "--device auto is silent without CUDA"
                                List.item 1 w, out
                        ]
                        |> Map.ofList

                    // what the section says each command prints
                    for command, expected in
                        [
                            "check-data", "found"
                            "cfg", "my-data/my.cfg: shapes-spp, 2 classes, 66 layers"
                            "train", "epoch 0/0"
                            "train", "weights: runs/train/last.ckpt (best: runs/train/best.ckpt)"
                            "eval", "Average Precision  (AP) @[ IoU=0.50:0.95"
                            "eval", "AP@.5:.95"
                            "detect", "runs/detect/detections.json"
                            "export", "-> my.onnx"
                            "info", "Model summary:"
                            "info", "trained: epoch 0"
                            "info", "image size: 64"
                            "info", "classes (2): class1, class2"
                        ] do
                        Expect.stringContains outputs[command] expected (sprintf "%s prints '%s'" command expected)

                    // every file the section names was written (or, for my.data and my.names, laid out as it says)
                    for name in namedFiles text do
                        let found =
                            [
                                work
                                Path.Combine(work, "runs", "train")
                                Path.Combine(work, "runs", "detect")
                            ]
                            |> List.exists (fun d ->
                                let p = Path.Combine(d, name)
                                File.Exists p || Directory.Exists p)

                        Expect.isTrue found (sprintf "the section names '%s', which the commands did not write" name))
            }
            test "a new console app outside the repository builds on the packed packages with warnings as errors and runs the README's C# example verbatim" {
                let version, _ = packed.Force()

                withTempDir "yolospp-consumer-" (fun dir ->
                    let code, out, err =
                        runProcess "dotnet" [ "new"; "console"; "--output"; "app"; "--framework"; "net10.0" ] dir

                    Expect.equal code 0 (sprintf "dotnet new console: %s %s" out err)
                    let app = Path.Combine(dir, "app")

                    // the README's package block, in the app's folder
                    for command in testedCommands "package" do
                        let w =
                            words (command.Replace("/path/to/yolospp", TestUtil.repoRoot))
                            |> List.map (fun x -> if x = "0.1.0" then version else x)

                        let code, out, err = runProcess (List.head w) (List.tail w) app
                        Expect.equal code 0 (sprintf "'%s': %s %s" command out err)
                        Expect.isFalse (out.Contains "NU1603" || err.Contains "NU1603") (sprintf "no NU1603: %s" out)

                    File.WriteAllText(Path.Combine(app, "Program.cs"), blockIn "README.md" "From C#" "csharp")

                    let code, out, err =
                        runProcess "dotnet" [ "build"; "-c"; "Release"; "-warnaserror"; "--nologo" ] app

                    Expect.equal code 0 (sprintf "builds with warnings as errors: %s %s" out err)
                    Expect.isFalse (Regex.IsMatch(out, @"\bwarning [A-Z]+\d+")) (sprintf "no warning: %s" out)

                    let bin = Path.Combine(app, "bin", "Release", "net10.0")

                    if OperatingSystem.IsLinux() then
                        // the package's own buildTransitive step fixed the native glue in the app's output
                        let glue =
                            Path.Combine(bin, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

                        Expect.isTrue (File.Exists glue) "the app's output has TorchSharp's native glue"

                        let hasReadelf =
                            (try
                                (let c, _, _ = runProcess "readelf" [ "--version" ] "." in c = 0)
                             with _ ->
                                 false)

                        if hasReadelf && not (systemHasGlibcxx332 ()) then
                            Expect.equal (versionFlags glue) (Some "WEAK") "GLIBCXX_3.4.32 marked weak by the package's build step"

                    // run in a folder of its own: the example writes there
                    let run = Directory.CreateDirectory(Path.Combine(dir, "run")).FullName
                    let code, out, err = runProcess "dotnet" [ Path.Combine(bin, "app.dll") ] run
                    Expect.equal code 0 (sprintf "the example runs: %s %s" out err)

                    for line in
                        [
                            "trained 3 epochs: mAP@0.5 "
                            "evaluated 40 images"
                            "objects in shapes/images/val/000000.jpg"
                        ] do
                        Expect.stringContains out line (sprintf "prints '%s'" line)

                    for file in
                        [
                            "runs/csharp/last.ckpt"
                            "runs/csharp/best.ckpt"
                            "000000-boxes.jpg"
                            "shapes.onnx"
                        ] do
                        Expect.isTrue (File.Exists(Path.Combine(run, file))) (sprintf "%s written" file))
            }
            test "the package depends on Google.Protobuf, SharpZipLib and System.Numerics.Tensors at the versions it is built with" {
                let version, feed = packed.Force()

                use zip =
                    IO.Compression.ZipFile.OpenRead(Path.Combine(feed, sprintf "YoloSpp.%s.nupkg" version))

                use reader = new StreamReader(zip.GetEntry("YoloSpp.nuspec").Open())
                let nuspec = reader.ReadToEnd()
                let lock = File.ReadAllText(Path.Combine(TestUtil.repoRoot, "paket.lock"))

                for id in [ "Google.Protobuf"; "SharpZipLib"; "System.Numerics.Tensors" ] do
                    let locked =
                        Regex.Match(lock, sprintf @"\n    %s \(([\d.]+)\)" (Regex.Escape id)).Groups[1].Value

                    Expect.isNotEmpty locked (sprintf "%s in paket.lock" id)

                    let declared =
                        Regex.Match(nuspec, sprintf "<dependency id=\"%s\" version=\"\\[?([\\d.]+)" (Regex.Escape id)).Groups[1].Value

                    let parts (v: string) =
                        (v.Split '.' |> Array.map int |> List.ofArray) @ [ 0; 0; 0 ] |> List.take 3

                    Expect.equal (parts declared) (parts locked) (sprintf "%s: the nuspec says %s, paket.lock %s" id declared locked)
            }
        ]
