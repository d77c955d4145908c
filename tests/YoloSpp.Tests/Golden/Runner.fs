/// The one generic golden runner: every case file of the golden folder becomes one test named after the file,
/// dispatched on its `kind` field. Kinds owned by later work are pending (counted as skipped); a kind nobody
/// knows, or a file that cannot be read, is a failing test.
module YoloSpp.Tests.Golden.Runner

open System
open System.IO
open System.Text.Json
open Expecto
open YoloSpp.Tests
open YoloSpp.Tests.Golden.Json

/// Kinds whose implementation belongs to a later issue: they run as pending tests until then.
let pendingKinds: Set<string> = Set.empty

/// kind -> check of one case (folder of the case file, parsed case).
let handlers: Map<string, string -> JsonElement -> unit> =
    Map.ofList
        [
            "iou", (fun _ c -> IouCases.run c)
            "loss", LossCases.run
            "lr_schedule", (fun _ c -> ScheduleCases.run c)
            "scale_coords", (fun _ c -> ScaleCoordsCases.run c)
            "letterbox", (fun _ c -> LetterboxCases.run c)
            "darknet_forward", DarknetForwardCases.run
            "model_summary", ModelSummaryCases.run
            "nms", (fun _ c -> NmsCases.run c)
            "cocoeval", (fun _ c -> CocoEvalCases.run c)
            "darknet_grad", DarknetGradCases.run
            "sgd", (fun _ c -> SgdCases.run c)
            "adam", (fun _ c -> AdamCases.run c)
            "python_float", (fun _ c -> PythonFloatCases.run c)
            "resize", ImageCases.resize
            "image_decode", ImageCases.imageDecode
            "anchors", AnchorsCases.run
            "autoanchor", AutoanchorCases.run
            "train_steps", TrainStepsCases.run
            "sharding", (fun _ c -> ShardingCases.run c)
            "ap_per_class", (fun _ c -> MetricsCases.runApPerClass c)
            "confusion_matrix", (fun _ c -> MetricsCases.runConfusionMatrix c)
        ]

let private caseTest (folder: string) (file: string) =
    let name = Path.GetFileNameWithoutExtension file

    let kind =
        try
            use doc = JsonDocument.Parse(File.ReadAllText file)

            match doc.RootElement.TryGetProperty "kind" with
            | true, k when k.ValueKind = JsonValueKind.String -> Ok(k.GetString())
            | _ -> Error "no string field 'kind'"
        with e ->
            Error(sprintf "cannot read: %s" e.Message)

    match kind with
    | Error why -> testCase name (fun () -> failtestf "%s: %s" file why)
    | Ok k when handlers.ContainsKey k ->
        testCase name (fun () ->
            use doc = JsonDocument.Parse(File.ReadAllText file)
            handlers.[k] folder doc.RootElement)
    | Ok k when pendingKinds.Contains k -> ptestCase name (fun () -> ())
    | Ok k -> testCase name (fun () -> failtestf "%s: unknown golden kind '%s'" file k)

/// The `golden` test list over a folder: *.json files except companion *.grad.json files.
let goldenTests (folder: string) =
    if not (Directory.Exists folder) then
        testList
            "golden"
            [
                testCase "folder" (fun () -> failtestf "golden folder %s does not exist" folder)
            ]
    else
        let files =
            Directory.GetFiles(folder, "*.json")
            |> Array.filter (fun f -> not (f.EndsWith(".grad.json", StringComparison.OrdinalIgnoreCase)))
            |> Array.sort

        if files.Length = 0 then
            testList
                "golden"
                [
                    testCase "folder" (fun () -> failtestf "golden folder %s has no case file" folder)
                ]
        else
            testList "golden" [ for f in files -> caseTest folder f ]

/// The repository's copy of the golden vectors against the project's shared folder beside the checkout, where
/// there is one: every shared file must be in the copy, byte for byte (the copy may hold cases of its own).
let copyTests (copy: string) =
    let shared =
        Path.GetFullPath(Path.Combine(copy, "..", "..", "..", "shared", "golden"))

    if not (Directory.Exists shared) then
        testList
            "golden-copy"
            [
                ptestCase (sprintf "no shared golden folder at %s to compare with" shared) ignore
            ]
    else
        testList
            "golden-copy"
            [
                testCase "tests/golden holds every shared golden file unchanged" (fun () ->
                    let stale =
                        [
                            for f in Directory.GetFiles shared do
                                let mine = Path.Combine(copy, Path.GetFileName f)

                                if not (File.Exists mine) then
                                    yield sprintf "%s is missing" (Path.GetFileName f)
                                elif File.ReadAllBytes mine <> File.ReadAllBytes f then
                                    yield sprintf "%s differs" (Path.GetFileName f)
                        ]

                    if not stale.IsEmpty then
                        failtestf "tests/golden is out of date with %s (copy the files again):\n%s" shared (String.Join("\n", stale)))
            ]
