/// Unit tests of the F# core beyond the golden vectors: error paths, documented quirks, and the C# façade.
module YoloSpp.Tests.CoreTests

open System
open System.IO
open Expecto
open TorchSharp
open type TorchSharp.torch.TensorIndex
open YoloSpp
open YoloSpp.Geometry
open YoloSpp.Training
open YoloSpp.Tests

/// Runs f, expects exception 'E, returns its message.
let throwsMessage<'E when 'E :> exn> (f: unit -> unit) =
    try
        f ()
        failtestf "expected %s" typeof<'E>.Name
    with :? 'E as e ->
        e.Message

let private hypText =
    File.ReadAllText(Path.Combine(TestUtil.repoRoot, "cfg", "hyp.yaml"))

let private hypErrors (text: string) =
    match Hyp.parse "h.yaml" text with
    | Ok _ -> failtest "expected errors"
    | Error es -> es |> List.map string

let private replaceLine (key: string) (line: string) =
    hypText.Split('\n')
    |> Array.map (fun l -> if l.StartsWith(key + ":") then line else l)
    |> String.concat "\n"

let hypTests =
    testList
        "hyp"
        [
            test "cfg/hyp.yaml parses to the reference's values" {
                match Hyp.parse "cfg/hyp.yaml" hypText with
                | Ok h -> Expect.equal h Hyp.defaults "values"
                | Error es -> failtestf "%A" es
            }
            test "an unknown key is an error naming the file, line and key" {
                let es = hypErrors (hypText + "mosaic_prob: 0.5\n")
                let n = hypText.Split('\n').Length

                Expect.equal
                    es
                    [
                        sprintf "h.yaml:%d: unknown key 'mosaic_prob' (known: %s)" n (String.Join(", ", Hyp.knownKeys))
                    ]
                    "error"
            }
            test "a missing key is an error naming the key" {
                let es = hypErrors (replaceLine "shear" "")
                Expect.equal es [ "h.yaml: missing key 'shear'" ] "error"
            }
            test "a value that is not a number names its line" {
                let text = replaceLine "lr0" "lr0: fast"
                let line = 1 + (text.Split('\n') |> Array.findIndex (fun l -> l.StartsWith "lr0"))
                Expect.equal (hypErrors text) [ sprintf "h.yaml:%d: lr0: 'fast' is not a number" line ] "error"
            }
            test "values outside their domain are errors" {
                Expect.stringContains (hypErrors (replaceLine "momentum" "momentum: 1.5")).Head "momentum = 1.5 must be in [0, 1)" "momentum"
                Expect.stringContains (hypErrors (replaceLine "lr0" "lr0: 0")).Head "lr0 = 0 must be > 0" "lr0"
                Expect.stringContains (hypErrors (replaceLine "giou" "giou: -1")).Head "giou = -1 must be >= 0" "giou"
                Expect.stringContains (hypErrors (replaceLine "gr" "gr: 2")).Head "gr = 2 must be in [0, 1]" "gr"
            }
            test "broken yaml is an error with a line" {
                let es = hypErrors "giou: 3.54\n  cls: [1,\n"
                Expect.isTrue (es.Head.StartsWith "h.yaml:") (sprintf "got %A" es)
            }
            test "a file that is not a mapping is an error" { Expect.equal (hypErrors "- 1\n- 2\n") [ "h.yaml:1: expected a mapping of key: number" ] "error" }
            test "adjustForDataset scales cls by nc/80 and obj by size/320, nothing else" {
                let h = Hyp.adjustForDataset 20 512 Hyp.defaults
                Expect.floatClose Accuracy.veryHigh h.Cls (37.4 * 20.0 / 80.0) "cls"
                Expect.floatClose Accuracy.veryHigh h.Obj (64.3 * 512.0 / 320.0) "obj"

                Expect.equal
                    { h with
                        Cls = Hyp.defaults.Cls
                        Obj = Hyp.defaults.Obj
                    }
                    Hyp.defaults
                    "others"
            }
            test "toYaml round-trips" {
                let h =
                    { Hyp.defaults with
                        GrRamp = 300.0
                        Lr0 = 0.02
                    }

                Expect.equal (Hyp.parse "x" (Hyp.toYaml h)) (Ok h) "round trip"
            }
            test "gr is fixed by default and ramps linearly when gr_ramp > 0" {
                Expect.equal (Hyp.grAt 0 Hyp.defaults) 1.0 "fixed"
                let h = { Hyp.defaults with GrRamp = 300.0 }
                Expect.equal (Hyp.grAt 0 h) 0.0 "start"
                Expect.floatClose Accuracy.veryHigh (Hyp.grAt 150 h) 0.5 "middle"
                Expect.equal (Hyp.grAt 1000 h) 1.0 "after"
            }
        ]

let private anchorVecs () =
    [|
        torch.tensor([| 116.0; 90.0; 156.0; 198.0; 373.0; 326.0 |]).view (3L, 2L)
        /. 32.0
        torch.tensor([| 30.0; 61.0; 62.0; 45.0; 59.0; 119.0 |]).view (3L, 2L) /. 16.0
        torch.tensor([| 10.0; 13.0; 16.0; 30.0; 33.0; 23.0 |]).view (3L, 2L) /. 8.0
    |]
    |> Array.map (fun t -> t.to_type (torch.float64))

let private preds (nc: int) =
    let g = new torch.Generator(7UL)

    [| 2L; 4L; 8L |]
    |> Array.map (fun n -> torch.randn([| 2L; 3L; n; n; int64 (nc + 5) |], dtype = torch.float64, generator = g).requires_grad_ (true))

let private lossHyp nc =
    Hyp.adjustForDataset nc 64 Hyp.defaults |> Hyp.toLossHyp

let private rows (xs: float list list) =
    torch.tensor(xs |> List.concat |> List.toArray, dtype = torch.float64).view (-1L, 6L)

let targetLossTests =
    testList
        "targets-loss"
        [
            test "a class index >= nc is an error naming the class and nc" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 1.0; 0.5; 0.5; 0.2; 0.2 ]; [ 1.0; 5.0; 0.5; 0.5; 0.2; 0.2 ] ]

                let msg =
                    throwsMessage<ArgumentException> (fun () -> Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) t |> ignore)

                Expect.equal msg "target row 1 has class 5, out of range for nc = 3" "message"
            }
            test "targets of the wrong shape are an error" {
                use _ = torch.NewDisposeScope()

                Expect.throwsT<ArgumentException>
                    (fun () ->
                        Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) (torch.zeros (3L, 5L))
                        |> ignore)
                    "shape"
            }
            test "a centre at x = 1.0 lands in the last cell with offset 1.0 (edge clamp before tbox)" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 0.0; 1.0; 0.0; 0.3; 0.3 ] ]
                let l = (Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) t).[2]
                Expect.isGreaterThan l.Count 0 "matched"
                Expect.equal (l.Gi.[0L].item<int64> ()) 7L "gi = g - 1"
                Expect.equal (l.Tbox.[0L, 0L].item<float> ()) 1.0 "x offset"
                Expect.equal (l.Tbox.[0L, 1L].item<float> ()) 0.0 "y offset"
            }
            test "a target matching no anchor of any layer disappears (no best-anchor fallback)" {
                use _ = torch.NewDisposeScope()
                // a 1x1-pixel box at 64 px: far below every anchor's shape IoU threshold
                let t = rows [ [ 0.0; 0.0; 0.5; 0.5; 1.0 / 64.0; 1.0 / 64.0 ] ]
                let ls = Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) t
                Expect.equal (ls |> Array.sumBy (fun l -> l.Count)) 0 "no positives"
            }
            test "with one class the class loss is exactly 0" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 0.0; 0.5; 0.5; 0.4; 0.3 ]; [ 1.0; 0.0; 0.2; 0.7; 0.1; 0.2 ] ]

                let parts =
                    Loss.computeLoss (lossHyp 1) 1.0 { AnchorVecs = anchorVecs (); Nc = 1 } (preds 1) t

                Expect.equal (parts.Cls.item<float> ()) 0.0 "lcls"
                Expect.isGreaterThan (parts.Box.item<float> ()) 0.0 "lbox"
            }
            test "fl_gamma > 0 wraps both objectness and class BCE in the focal loss" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 1.0; 0.5; 0.5; 0.4; 0.3 ] ]
                let spec: Loss.YoloSpec = { AnchorVecs = anchorVecs (); Nc = 3 }
                let plain = Loss.computeLoss (lossHyp 3) 1.0 spec (preds 3) t
                let focal = Loss.computeLoss { lossHyp 3 with FlGamma = 1.5 } 1.0 spec (preds 3) t
                Expect.equal (focal.Box.item<float> ()) (plain.Box.item<float> ()) "box unchanged"
                Expect.isLessThan (focal.Obj.item<float> ()) (plain.Obj.item<float> ()) "obj down-weighted"
                Expect.isLessThan (focal.Cls.item<float> ()) (plain.Cls.item<float> ()) "cls down-weighted"
            }
            test "focal wrapper equals its formula" {
                use _ = torch.NewDisposeScope()
                let x = torch.tensor ([| -2.0; 0.5; 3.0 |])
                let y = torch.tensor ([| 0.0; 1.0; 1.0 |])
                let got = Loss.focal 2.0 0.25 (Loss.bceWithLogits 1.0) x y
                let p = torch.sigmoid x
                let bce = -(y * torch.log p + (1.0 .- y) * torch.log (1.0 .- p))
                let pT = y * p + (1.0 .- y) * (1.0 .- p)
                let expected = bce * (y *. 0.25 + (1.0 .- y) *. 0.75) * (1.0 .- pT).square ()
                Expect.isTrue (torch.allclose (got, expected, 1e-12, 1e-12)) "focal"
            }
            test "rows sharing a cell: the last row in anchor-major order sets the objectness target" {
                use _ = torch.NewDisposeScope()
                let pi = torch.zeros ([| 1L; 3L; 2L; 2L; 8L |], dtype = torch.float64)

                let l: Targets.LayerTargets =
                    {
                        Tcls = torch.zeros ([| 3L |], dtype = torch.int64)
                        Tbox = torch.zeros (3L, 4L)
                        B = torch.zeros ([| 3L |], dtype = torch.int64)
                        A = torch.tensor ([| 1L; 0L; 1L |])
                        Gj = torch.tensor ([| 1L; 0L; 1L |])
                        Gi = torch.tensor ([| 0L; 1L; 0L |])
                        Anchors = torch.zeros (3L, 2L)
                    }

                let tobj =
                    Loss.objectnessTarget 1.0 pi l (torch.tensor ([| 0.3; 0.5; 0.7 |], dtype = torch.float64))

                Expect.equal (tobj.[0L, 1L, 1L, 0L].item<float> ()) 0.7 "last of rows 0 and 2"
                Expect.equal (tobj.[0L, 0L, 0L, 1L].item<float> ()) 0.5 "single row"

                let tobj2 =
                    Loss.objectnessTarget 0.5 pi l (torch.tensor ([| 0.3; 0.5; -0.2 |], dtype = torch.float64))

                Expect.equal (tobj2.[0L, 1L, 1L, 0L].item<float> ()) 0.5 "(1 - gr) + gr * clamp(giou, 0) of the last row"
                Expect.equal (tobj2.sum().item<float> ()) 1.25 "nothing else written"
            }
            test "computeLoss does not mutate its inputs" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 1.0; 1.0; 1.0; 0.4; 0.3 ] ]
                let before = t.clone ()
                let p = preds 3
                let pBefore = p |> Array.map (fun x -> x.detach().clone ())

                Loss.computeLoss (lossHyp 3) 1.0 { AnchorVecs = anchorVecs (); Nc = 3 } p t
                |> ignore

                Expect.isTrue (t.eq(before).all().item<bool> ()) "targets"
                Array.iter2 (fun (a: torch.Tensor) (b: torch.Tensor) -> Expect.isTrue (a.detach().eq(b).all().item<bool> ()) "p") p pBefore
            }
        ]

let scheduleTests =
    testList
        "schedule"
        [
            test "accumulate = max(round(64 / batch), 1) with Python's half-to-even rounding" {
                Expect.equal ([ 1; 3; 4; 16; 64; 128; 256 ] |> List.map Schedule.accumulate) [ 64; 21; 16; 4; 1; 1; 1 ] "accumulate"
            }
            test "warmup lasts min(1000, batches - 1) iterations" {
                Expect.equal (Schedule.warmupIterations 50) 49 "short epoch"
                Expect.equal (Schedule.warmupIterations 5000) 1000 "long epoch"
            }
            test "cosine goes from 1 to lrf" {
                Expect.floatClose Accuracy.veryHigh (Schedule.cosine 30 0.01 0) 1.0 "start"
                Expect.floatClose Accuracy.veryHigh (Schedule.cosine 30 0.01 30) 0.01 "end"
            }
        ]

let boxTests =
    testList
        "boxes"
        [
            test "xywh2xyxy and xyxy2xywh are inverse" {
                use _ = torch.NewDisposeScope()
                let b = torch.tensor([| 10.0; 20.0; 4.0; 6.0; -3.0; 2.5; 1.0; 0.5 |]).view (2L, 4L)
                Expect.isTrue (torch.allclose ((Boxes.xyxy2xywh (Boxes.xywh2xyxy b)), b)) "round trip"
                Expect.sequenceEqual ((Boxes.xywh2xyxy b).[0L].data<float>().ToArray()) [| 8.0; 17.0; 12.0; 23.0 |] "corners"
            }
            test "scaleCoords leaves its input untouched and clips to the original image" {
                use _ = torch.NewDisposeScope()
                let b = torch.tensor([| -10.0f; 5.0f; 700.0f; 300.0f |]).view (1L, 4L)
                let before = b.clone ()
                let out = Boxes.scaleCoords (512, 512) b (375, 500) Option.None
                Expect.isTrue (b.eq(before).all().item<bool> ()) "input unchanged"
                let o = out.[0L].data<float32>().ToArray()
                Expect.equal o.[0] 0.0f "x1 clipped"
                Expect.equal o.[2] 500.0f "x2 clipped"
            }
        ]

let facadeTests =
    testList
        "csharp"
        [
            test "the README's C# example computes a GIoU and a finite loss" {
                let struct (giou, loss) = QuickStart.Example.Run()
                Expect.floatClose Accuracy.veryHigh giou 0.1388888888888889 "GIoU of the README boxes"
                Expect.isTrue (Double.IsFinite loss && loss > 0.0) (sprintf "loss %g" loss)
            }
            test "BboxIou rejects a box without four numbers" {
                Expect.throwsT<ArgumentException> (fun () -> BoxOps.BboxIou([| 1.0; 2.0; 3.0 |], [| 1.0; 2.0; 3.0; 4.0 |]) |> ignore) "3 numbers"
            }
            test "HyperParameters.Load reports every problem with file and line" {
                let f =
                    Path.Combine(Path.GetTempPath(), sprintf "yolospp-hyp-%d.yaml" (Random.Shared.Next()))

                File.WriteAllText(f, hypText.Replace("lr0: 0.001", "lr0: x") + "bogus: 1\n")

                try
                    let msg =
                        throwsMessage<InvalidInputException> (fun () -> HyperParameters.Load f |> ignore)

                    Expect.stringContains msg (f + ":") "file"
                    Expect.stringContains msg "lr0: 'x' is not a number" "lr0"
                    Expect.stringContains msg "unknown key 'bogus'" "bogus"
                finally
                    File.Delete f
            }
        ]

let tests =
    testList "core" [ hypTests; targetLossTests; scheduleTests; boxTests; facadeTests ]
