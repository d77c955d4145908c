/// hyp.yaml: parsing errors with file and line, the reference's values, train.py's adjustments, the gr ramp.
module YoloSpp.Tests.Training.HypTests

open System
open System.IO
open Expecto
open TorchSharp
open type TorchSharp.torch.TensorIndex
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Geometry
open YoloSpp.Training
open YoloSpp.Tests

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

let tests =
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
