/// The `cocoeval` command: the golden COCO case through the CLI, its JSON output, and each malformed input's
/// one-line message; and the helpers the eval and detect command tests share.
module YoloSpp.Tests.Evaluation.CocoEvalCliTests

open System
open System.IO
open System.Text.Json
open Expecto
open YoloSpp
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Tests
open YoloSpp.Platform

let yolospp = BuildTests.yolospp

let tempDir () =
    (Directory.CreateTempSubdirectory "yolospp-evaldet-").FullName

let withTempDir (f: string -> unit) =
    let d = tempDir ()

    try
        f d
    finally
        Directory.Delete(d, true)

// ---------------------------------------------------------------- cocoeval

let golden = Path.Combine(TestUtil.repoGoldenDir, "cocoeval_crafted.json")

/// Writes the golden case's gt and detections to files; returns (gt path, dt path, expected stats).
let goldenFiles (dir: string) =
    use doc = JsonDocument.Parse(File.ReadAllText golden)
    let root = doc.RootElement
    let gt, dt = Path.Combine(dir, "gt.json"), Path.Combine(dir, "dt.json")
    File.WriteAllText(gt, root.GetProperty("gt").GetRawText())
    File.WriteAllText(dt, root.GetProperty("detections").GetRawText())

    gt,
    dt,
    root.GetProperty("stats").EnumerateArray()
    |> Seq.map (fun e -> e.GetDouble())
    |> Seq.toArray

/// Runs cocoeval on the golden ground truth (or `gtText`) and a detection text; returns (exit code, stderr, dt path, gt path).
let cocoevalWith (gtText: string option) (dtText: string) =
    let dir = tempDir ()

    try
        let gt, _, _ = goldenFiles dir
        gtText |> Option.iter (fun t -> File.WriteAllText(gt, t))
        let dt = Path.Combine(dir, "bad.json")
        File.WriteAllText(dt, dtText)
        let code, _, err = yolospp [ "cocoeval"; "--gt"; gt; "--dt"; dt ]
        code, err.Trim(), dt, gt
    finally
        Directory.Delete(dir, true)

let expectOneLineError (code: int, err: string) (fragment: string) =
    Expect.equal code 2 (sprintf "exit code 2 (stderr: %s)" err)
    Expect.stringContains err fragment "the reason"
    Expect.equal (err.Split('\n').Length) 1 (sprintf "one line: %s" err)

let cocoevalTests =
    testList
        "cocoeval"
        [
            test "the golden case's 12 stats through the command, to 1e-12" {
                withTempDir (fun dir ->
                    let gt, dt, expected = goldenFiles dir
                    let code, out, err = yolospp [ "cocoeval"; "--gt"; gt; "--dt"; dt; "--json" ]
                    Expect.equal code 0 err
                    let stats = JsonSerializer.Deserialize<float[]>(out.Trim())
                    Expect.equal stats.Length 12 "12 stats"

                    for i in 0..11 do
                        Expect.floatClose { absolute = 1e-12; relative = 0.0 } stats[i] expected[i] (sprintf "stats[%d]" i))
            }
            test "without --json the summary table has pycocotools' 12 lines" {
                withTempDir (fun dir ->
                    let gt, dt, _ = goldenFiles dir
                    let code, out, err = yolospp [ "cocoeval"; "--gt"; gt; "--dt"; dt ]
                    Expect.equal code 0 err
                    let lines = out.TrimEnd().Split('\n')
                    Expect.equal lines.Length 12 "12 lines"
                    Expect.stringStarts lines[0] " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.278" "first line")
            }
            test "an empty detection list is allowed: every stat 0 (categories have ground truth)" {
                let dir = tempDir ()

                try
                    let gt, _, _ = goldenFiles dir
                    let dt = Path.Combine(dir, "empty.json")
                    File.WriteAllText(dt, "[]")
                    let code, out, err = yolospp [ "cocoeval"; "--gt"; gt; "--dt"; dt; "--json" ]
                    Expect.equal code 0 err
                    let stats = JsonSerializer.Deserialize<float[]>(out.Trim())
                    Expect.equal stats.Length 12 "12 stats"
                    Expect.all stats (fun s -> s = 0.0 || s = -1.0) "nothing found"
                finally
                    Directory.Delete(dir, true)
            }
            test "detections that are not JSON: one line naming the file, exit 2" {
                let code, err, dt, _ = cocoevalWith None "[{\"image_id\": 1,"
                expectOneLineError (code, err) "not JSON"
                Expect.stringContains err dt "names the file"
            }
            test "ground truth that is not JSON: one line naming the file, exit 2" {
                let code, err, _, gt = cocoevalWith (Some "images: []") "[]"
                expectOneLineError (code, err) "not JSON"
                Expect.stringContains err gt "names the file"
            }
            test "a detection without score: exit 2, names the field" {
                expectOneLineError
                    (let c, e, _, _ =
                        cocoevalWith None "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 2, 3, 4]}]" in

                     c, e)
                    "detection 0: missing field 'score'"
            }
            test "ground truth without annotations: exit 2, names the field" {
                expectOneLineError (let c, e, _, _ = cocoevalWith (Some "{\"images\": [], \"categories\": []}") "[]" in c, e) "missing field 'annotations'"
            }
            test "a detection on an image id not in the ground truth: exit 2" {
                expectOneLineError
                    (let c, e, _, _ =
                        cocoevalWith None "[{\"image_id\": 987654, \"category_id\": 1, \"bbox\": [1, 2, 3, 4], \"score\": 0.5}]" in

                     c, e)
                    "image_id 987654 is not an image of the ground truth"
            }
            test "a bbox of 3 numbers: exit 2" {
                expectOneLineError
                    (let c, e, _, _ =
                        cocoevalWith None "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 2, 3], \"score\": 0.5}]" in

                     c, e)
                    "expected 4 numbers [x, y, w, h], got 3"
            }
            test "a missing file: exit 2" {
                withTempDir (fun dir ->
                    let gt, _, _ = goldenFiles dir
                    let missing = Path.Combine(dir, "nope.json")
                    expectOneLineError (let c, _, e = yolospp [ "cocoeval"; "--gt"; gt; "--dt"; missing ] in c, e.Trim()) (missing + ": no such file"))
            }
        ]
