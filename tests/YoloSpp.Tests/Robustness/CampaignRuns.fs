/// The campaign's bad options, COCO inputs, and faults of runs (kill -9, Ctrl+C, two runs at once), and the test
/// that runs every case of the campaign and prints its table.
module YoloSpp.Tests.Robustness.CampaignRuns

open System
open System.Diagnostics
open System.IO
open System.Threading
open Expecto
open YoloSpp.Tests
open YoloSpp.Tests.Robustness.Campaign
open YoloSpp.Tests.Robustness.CampaignData
open YoloSpp.Tests.Robustness.CampaignFiles

let private trainWith (ctx: Ctx) (extra: string list) =
    cli ctx (train ctx (dataset ctx) ([ "--output"; Path.Combine(ctx.Dir, "run") ] @ extra))

let private detectWith (ctx: Ctx) (extra: string list) =
    let data = dataset ctx

    cli
        ctx
        ([
            "detect"
            "--cfg"
            ctx.Fixture.Cfg
            "--weights"
            ctx.Fixture.Weights
            "--names"
            ctx.Fixture.Names
            "--source"
            image data
            "--out"
            Path.Combine(ctx.Dir, "det")
         ]
         @ extra)

let private evalWith (ctx: Ctx) (extra: string list) =
    cli
        ctx
        ([
            "eval"
            "--cfg"
            ctx.Fixture.Cfg
            "--weights"
            ctx.Fixture.Weights
            "--data"
            dataset ctx
            "--img-size"
            "64"
         ]
         @ extra)

let private exportWith (ctx: Ctx) (extra: string list) =
    cli
        ctx
        ([
            "export"
            "--cfg"
            ctx.Fixture.Cfg
            "--weights"
            ctx.Fixture.Weights
            "--output"
            Path.Combine(ctx.Dir, "m.onnx")
         ]
         @ extra)

let private options =
    let f = "options"

    [
        refused f "train --epochs 0" 2 [ "--epochs 0" ] (fun ctx -> trainWith ctx [ "--epochs"; "0" ])
        refused f "train --batch-size 0" 2 [ "--batch-size 0" ] (fun ctx -> trainWith ctx [ "--batch-size"; "0" ])
        refused f "train --img-size 33" 2 [ "--img-size 33" ] (fun ctx -> trainWith ctx [ "--img-size"; "33" ])
        refused f "train --accumulate 0" 2 [ "--accumulate 0" ] (fun ctx -> trainWith ctx [ "--accumulate"; "0" ])
        refused f "train --time-limit 0" 2 [ "--time-limit" ] (fun ctx -> trainWith ctx [ "--time-limit"; "0" ])
        refused f "train --time-limit NaN" 2 [ "--time-limit" ] (fun ctx -> trainWith ctx [ "--time-limit"; "NaN" ])
        refused f "train --time-limit 1e300" 2 [ "--time-limit" ] (fun ctx -> trainWith ctx [ "--time-limit"; "1e300" ])
        refused f "train --device cuda:x" 2 [ "cuda:x"; "cpu, cuda or cuda:N" ] (fun ctx -> trainWith ctx [ "--device"; "cuda:x" ])
        refused f "train --result-name ../r.txt" 2 [ "--result-name" ] (fun ctx -> trainWith ctx [ "--result-name"; "../r.txt" ])
        refused f "train --output /dev/null" 2 [ "/dev/null" ] (fun ctx -> cli ctx (train ctx (dataset ctx) [ "--output"; "/dev/null" ]))
        refused f "train --output under a file" 2 [ "afile" ] (fun ctx ->
            cli ctx (train ctx (dataset ctx) [ "--output"; Path.Combine(text ctx "afile" "x", "run") ]))
        refused f "train --output under /proc" 2 [ "/proc/yolospp-run" ] (fun ctx -> cli ctx (train ctx (dataset ctx) [ "--output"; "/proc/yolospp-run" ]))
        refused f "train --output of 300 characters a component" 2 [ "cannot create the output folder" ] (fun ctx ->
            cli ctx (train ctx (dataset ctx) [ "--output"; Path.Combine(ctx.Dir, String('x', 300)) ]))
        accepted f "detect --device with spaces and capitals" [ "1 images" ] (fun ctx -> detectWith ctx [ "--device"; " CPU " ])
        refused f "detect --conf NaN" 2 [ "--conf" ] (fun ctx -> detectWith ctx [ "--conf"; "NaN" ])
        refused f "detect --draw-threshold 5" 2 [ "--draw-threshold" ] (fun ctx -> detectWith ctx [ "--draw-threshold"; "5" ])
        refused f "detect --img-size 0" 2 [ "--img-size 0" ] (fun ctx -> detectWith ctx [ "--img-size"; "0" ])
        refused f "eval --conf 1.5" 2 [ "--conf 1.5" ] (fun ctx -> evalWith ctx [ "--conf"; "1.5" ])
        refused f "eval --iou NaN" 2 [ "--iou" ] (fun ctx -> evalWith ctx [ "--iou"; "NaN" ])
        refused f "eval --batch-size 0" 2 [ "--batch-size 0" ] (fun ctx -> evalWith ctx [ "--batch-size"; "0" ])
        refused f "export --opset 5" 2 [ "opset" ] (fun ctx -> exportWith ctx [ "--opset"; "5" ])
        refused f "export --img-size 33" 2 [ "33" ] (fun ctx -> exportWith ctx [ "--img-size"; "33" ])
        refused f "iou with an infinite value" 2 [ "box1"; "not a finite number" ] (fun ctx -> cli ctx [ "iou"; "Infinity,1,2,2"; "1,1,2,2" ])
        refused f "iou xyxy with x2 < x1" 2 [ "box2"; "x2 < x1" ] (fun ctx -> cli ctx [ "iou"; "1,1,2,2"; "5,1,2,2"; "--format"; "xyxy" ])
        refused f "hyp --nc -1" 2 [ "--nc -1" ] (fun ctx -> cli ctx [ "hyp"; Path.Combine(TestUtil.repoRoot, "cfg", "hyp.yaml"); "--nc"; "-1" ])
        refused f "hyp --img-size 33" 2 [ "--img-size 33" ] (fun ctx ->
            cli
                ctx
                [
                    "hyp"
                    Path.Combine(TestUtil.repoRoot, "cfg", "hyp.yaml")
                    "--nc"
                    "2"
                    "--img-size"
                    "33"
                ])
        refused f "an unknown command" 2 [ "unrecognized" ] (fun ctx -> cli ctx [ "trian" ])
    ]

let private gtJson (images: string) (annotations: string) =
    sprintf """{"images":[%s],"categories":[{"id":1,"name":"a"}],"annotations":[%s]}""" images annotations

let private ann =
    """{"id":1,"image_id":1,"category_id":1,"bbox":[10,10,20,20],"area":400,"iscrowd":0}"""

let private img = """{"id":1,"width":100,"height":100}"""

let private det =
    """[{"image_id":1,"category_id":1,"bbox":[10,10,20,20],"score":0.9}]"""

let private cocoeval (gt: string) (dt: string) (extra: string list) (ctx: Ctx) =
    cli
        ctx
        ([ "cocoeval"; "--gt"; text ctx "gt.json" gt; "--dt"; text ctx "dt.json" dt ]
         @ extra)

let private coco =
    let f = "cocoeval"

    [
        accepted f "an image without a size: a warning" [ "size 0x100 is not positive" ] (cocoeval (gtJson """{"id":1,"width":0,"height":100}""" ann) det [])
        accepted
            f
            "a detection of an unknown category: a warning"
            [ "category_id 4 is not a category" ]
            (cocoeval (gtJson img ann) (det.Replace("\"category_id\":1", "\"category_id\":4")) [])
        accepted f "a detection of negative size: a warning" [ "negative size" ] (cocoeval (gtJson img ann) (det.Replace("[10,10,20,20]", "[10,10,-20,20]")) [])
        accepted f "an image id used twice: a warning" [ "image id 1 is used twice" ] (cocoeval (gtJson (img + "," + img) ann) det [])
        accepted f "--strict on clean inputs" [ "Average Precision" ] (cocoeval (gtJson img ann) det [ "--strict" ])
        refused
            f
            "--strict with a duplicate annotation id"
            2
            [ "annotation id 1 is used twice"; "--strict" ]
            (cocoeval (gtJson img (ann + "," + ann)) det [ "--strict" ])
        refused f "ground truth that is not JSON" 2 [ "gt.json"; "not JSON" ] (cocoeval "{images" det [])
        refused f "ground truth nested 1000 deep" 2 [ "gt.json" ] (cocoeval (String('[', 1000) + String(']', 1000)) det [])
        refused f "detections as an object" 2 [ "dt.json"; "expected a JSON array" ] (cocoeval (gtJson img ann) "{}" [])
        refused f "a score that is a string" 2 [ "dt.json"; "score" ] (cocoeval (gtJson img ann) (det.Replace("0.9", "\"high\"")) [])
        refused f "an id of 1e30" 2 [ "gt.json"; "expected an integer" ] (cocoeval (gtJson (img.Replace("\"id\":1", "\"id\":1e30")) ann) det [])
    ]

/// Waits (up to a minute) until `ready` holds, polling.
let private waitFor (ready: unit -> bool) =
    let watch = Stopwatch.StartNew()

    while not (ready ()) && watch.Elapsed < TimeSpan.FromMinutes 1.0 do
        Thread.Sleep 50

    ready ()

/// A long training run of the fixture started in the background into `out` (killed by the caller).
let private startLong (ctx: Ctx) (data: string) (extra: string list) =
    start ctx.Dir (train ctx data ([ "--epochs"; "500"; "--notest" ] @ extra))

let private kill (p: Process, out: Threading.Tasks.Task<string>, err: Threading.Tasks.Task<string>) =
    if not p.HasExited then
        p.Kill true

    p.WaitForExit()
    out.Result |> ignore
    err.Result |> ignore

/// The bytes of every file under a folder, by relative path.
let private snapshot (dir: string) =
    Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
    |> Array.map (fun f -> Path.GetRelativePath(dir, f), File.ReadAllBytes f)
    |> Map.ofArray

/// The outcome with a loss when a file of the earlier snapshot changed or went.
let private unchanged (before: Map<string, byte[]>) (dir: string) (o: Outcome) =
    let after = snapshot dir

    match before |> Map.tryFindKey (fun k v -> not (after.ContainsKey k) || after[k] <> v) with
    | Some f ->
        { o with
            Lost = Some(Path.Combine(dir, f))
        }
    | None -> o

let private runs =
    let f = "runs"

    [
        accepted f "kill -9 after the first checkpoint, then resume" [ "mAP@0.5" ] (fun ctx ->
            let data = dataset ctx
            let out = Path.Combine(ctx.Dir, "run")
            let p = startLong ctx data [ "--output"; out ]
            let ckpt = Path.Combine(out, "last.ckpt")
            let ready = waitFor (fun () -> File.Exists ckpt)
            kill p
            let o = cli ctx (train ctx data [ "--weights"; ckpt; "--epochs"; "3" ])

            o
            |> check ready "a checkpoint was written before the kill"
            |> check (not (Directory.Exists(out + "2"))) "resumed in its own folder")
        accepted f "kill -9 early: the next run takes a folder that never mixes with the killed run's files" [ "last.ckpt" ] (fun ctx ->
            let data = dataset ctx
            let out = Path.Combine(ctx.Dir, "run")
            let p = startLong ctx data [ "--output"; out ]
            let ready = waitFor (fun () -> File.Exists(Path.Combine(out, ".yolospp.owner")))
            kill p
            // a folder with the killed run's TensorBoard events or checkpoint holds a run; one with only the lock does not
            let held =
                Directory.Exists(Path.Combine(out, "tensorboard"))
                || File.Exists(Path.Combine(out, "last.ckpt"))

            let expected = Path.Combine((if held then out + "2" else out), "last.ckpt")
            let o = cli ctx (train ctx data [ "--output"; out; "--notest" ])

            o
            |> check ready "the run had started"
            |> check (o.Out.Contains expected) (sprintf "wrote %s" expected))
        {
            Family = f
            Name = "Ctrl+C (SIGINT) mid-training: exit 130 and a resumable checkpoint"
            Code = 130
            Mentions = []
            Accepts = true
            Run =
                fun ctx ->
                    let data = dataset ctx
                    let out = Path.Combine(ctx.Dir, "run")
                    // a process started from a background job inherits SIGINT ignored (as a shell's `cmd &` does), and
                    // .NET then leaves it ignored: GNU env restores the default, as a terminal's foreground process has it
                    let psi =
                        ProcessStartInfo(
                            "env",
                            [ "--default-signal=INT"; "dotnet"; BuildTests.cliDll ]
                            @ train ctx data [ "--epochs"; "500"; "--notest"; "--output"; out ],
                            WorkingDirectory = ctx.Dir,
                            RedirectStandardOutput = true,
                            RedirectStandardError = true
                        )

                    let p = Process.Start psi
                    let o, e = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
                    let ready = waitFor (fun () -> File.Exists(Path.Combine(out, "last.ckpt")))
                    Process.Start("kill", [ "-INT"; string p.Id ]).WaitForExit()
                    let r = finish (p, o, e)

                    let resumed =
                        cli ctx (train ctx data [ "--weights"; Path.Combine(out, "last.ckpt"); "--epochs"; "3"; "--notest" ])

                    r
                    |> check ready "trained until a checkpoint"
                    |> check (resumed.Code = 0) ("the checkpoint resumes: " + resumed.Err)
        }
        refused f "resuming a run that is still training" 2 [ "in use by another live training run"; "pid" ] (fun ctx ->
            let data = dataset ctx
            let out = Path.Combine(ctx.Dir, "run")
            let p = startLong ctx data [ "--output"; out ]
            let ready = waitFor (fun () -> File.Exists(Path.Combine(out, "last.ckpt")))

            let o =
                cli ctx (train ctx data [ "--weights"; Path.Combine(out, "last.ckpt"); "--epochs"; "600" ])

            kill p
            o |> check ready "the first run wrote a checkpoint")
        refused f "--exist-ok into a folder a live run holds" 2 [ "run"; "in use by another live training run" ] (fun ctx ->
            let data = dataset ctx
            let out = Path.Combine(ctx.Dir, "run")
            let p = startLong ctx data [ "--output"; out ]
            let ready = waitFor (fun () -> File.Exists(Path.Combine(out, ".yolospp.owner")))
            let o = cli ctx (train ctx data [ "--output"; out; "--exist-ok" ])
            kill p
            o |> check ready "the first run had started")
        accepted f "a third run goes to <output>3 and the first two stay" [ "run3" ] (fun ctx ->
            let out = Path.Combine(ctx.Dir, "run")
            copyTree ctx.Fixture.Run out
            copyTree ctx.Fixture.Run (out + "2")
            let before, before2 = snapshot out, snapshot (out + "2")
            let o = cli ctx (train ctx (dataset ctx) [ "--output"; out; "--notest" ])
            o |> unchanged before out |> unchanged before2 (out + "2"))
        accepted f "--exist-ok reuses a folder that holds a run" [ "run/last.ckpt" ] (fun ctx ->
            let out = Path.Combine(ctx.Dir, "run")
            copyTree ctx.Fixture.Run out

            let o =
                cli ctx (train ctx (dataset ctx) [ "--output"; out; "--notest"; "--exist-ok" ])

            o |> check (not (Directory.Exists(out + "2"))) "no new folder")
        accepted f "a stale lock and owner file of a killed run are taken over" [ "run/last.ckpt" ] (fun ctx ->
            let out = Directory.CreateDirectory(Path.Combine(ctx.Dir, "run")).FullName
            File.WriteAllText(Path.Combine(out, ".yolospp.lock"), "")
            File.WriteAllText(Path.Combine(out, ".yolospp.owner"), "pid 1 on elsewhere")
            cli ctx (train ctx (dataset ctx) [ "--output"; out; "--notest" ]))
        accepted f "a dead process's temp checkpoint is removed by a new run in its folder" [] (fun ctx ->
            let out = Directory.CreateDirectory(Path.Combine(ctx.Dir, "run")).FullName

            let temp =
                Path.Combine(out, sprintf ".best.ckpt.%d.%s.tmp" (WhyFixtures.deadPid ()) (Guid.NewGuid().ToString "N"))

            File.WriteAllText(temp, "half")
            let o = cli ctx (train ctx (dataset ctx) [ "--output"; out; "--notest" ])
            o |> check (not (File.Exists temp)) "temp removed")
        refused f "resume with a cfg that is not there" 2 [ "missing.cfg"; "no such cfg file" ] (fun ctx ->
            let out = Path.Combine(ctx.Dir, "run")
            copyTree ctx.Fixture.Run out

            WhyFixtures.trainArgs (dataset ctx) (Path.Combine(ctx.Dir, "missing.cfg")) [ "--weights"; Path.Combine(out, "last.ckpt") ]
            |> cli ctx)
        refused f "resume from a checkpoint cut in half" 2 [ "last.ckpt"; "not a YoloSpp checkpoint" ] (fun ctx ->
            let out = Path.Combine(ctx.Dir, "run")
            copyTree ctx.Fixture.Run out
            let ckpt = Path.Combine(out, "last.ckpt")
            let b = File.ReadAllBytes ckpt
            File.WriteAllBytes(ckpt, b[.. b.Length / 2])
            cli ctx (train ctx (dataset ctx) [ "--weights"; ckpt ]))
    ]

/// Every case of the campaign.
let cases = CampaignFiles.cases @ options @ coco @ runs

/// The campaign's results, run once for the tests below.
let private results = lazy (runAll 3 cases)

let tests =
    testList
        "robustness.campaign"
        [
            test "the exit-code rule: every bad input the campaign gives the runner exits 2 (or 1 for a failed run) without a stack trace" {
                let refused = results.Force() |> List.filter (fun (c, _, _) -> not c.Accepts)
                Expect.isGreaterThanOrEqual refused.Length 100 "at least 100 bad inputs"

                for c, _, o in refused do
                    let what = sprintf "%s / %s" c.Family c.Name
                    Expect.equal o.Code c.Code (sprintf "%s: exit code; stderr:\n%s" what o.Err)
                    WhyFixtures.expectNoTrace o.Err what
            }
            test "every bad input and fault is refused clearly or handled: no vague message, wrong answer, crash, hang or loss" {
                let all = results.Force()
                printfn "%s" (String.Join("\n", table all @ [ "" ] @ listing all))
                Expect.isGreaterThanOrEqual all.Length 100 "at least 100 cases"

                let bad =
                    all
                    |> List.filter (fun (_, v, _) -> v <> Clear && v <> Handled)
                    |> List.map explain

                if not bad.IsEmpty then
                    failtestf "%d of %d cases are neither clear nor handled:\n\n%s" bad.Length all.Length (String.Join("\n\n", bad))
            }
        ]
