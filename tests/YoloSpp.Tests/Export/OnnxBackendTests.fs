/// The ONNX Runtime backend: detect and eval through ONNX Runtime give the TorchSharp backend's detections (façade
/// and CLI), and a plain-ONNX-Runtime program reads an exported model.
module YoloSpp.Tests.Export.OnnxBackendTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Export
open YoloSpp.Model
open YoloSpp.Tests

open YoloSpp.Tests.Export.OnnxTests

/// The demo network (cfg/shapes-spp.cfg) with seeded weights whose head biases are spread, so that scores differ
/// clearly (no near-ties for NMS to order differently), and a few shapes images.
let demo =
    lazy
        (let dir = TestUtil.fixtureDir "yolospp-onnx-"

         let s =
             ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "shapes"), Train = 1, Val = 6, Size = 128, Seed = 5))

         let cfg = Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")
         torch.manual_seed 4L |> ignore

         (use m = DarkNet.FromCfgFile cfg
          randomiseBatchNorm m 4L
          use _ = torch.no_grad ()
          let g = new torch.Generator(8UL)

          for i in m.YoloLayerIndices do
              let conv =
                  (m.Modules[i - 1] :?> TorchSharp.Modules.Sequential).named_children ()
                  |> Seq.head
                  |> fun struct (_, c) -> c :?> TorchSharp.Modules.Conv2d

              conv.bias.copy_ (torch.randn (conv.bias.shape, generator = g) * 3.0) |> ignore

          ModelWeights.Save(m, Path.Combine(dir, "demo.safetensors"))
          OnnxExport.Export(m, Path.Combine(dir, "demo.onnx"), OnnxExportOptions(ClassNames = Shapes.classNames)))

         let valDir = Path.Combine(s.Directory, "images", "val")
         dir, cfg, s, Directory.GetFiles valDir |> Array.sort)

/// The same detections in the same order, up to the order within runs of equal confidence (|Δ| < 1e-5: cells of a
/// uniform padding score alike, and ONNX Runtime's last bits may order such ties otherwise): per run, the same
/// (class, box) multiset; every confidence within 1e-5.
let private sameDetections (a: (int * float list * float) list) (b: (int * float list * float) list) (what: string) =
    Expect.equal b.Length a.Length (what + ": as many detections")
    Expect.isGreaterThan a.Length 0 (what + ": something is detected")

    for i, ((_, _, ca), (_, _, cb)) in List.indexed (List.zip a b) do
        Expect.isLessThan (abs (ca - cb)) 1e-5 (sprintf "%s: detection %d confidence %.9f against %.9f" what i cb ca)

    // runs of near-equal confidence in the reference order
    let runs =
        a
        |> List.indexed
        |> List.fold
            (fun (acc: int list list) (i, (_, _, c)) ->
                match acc with
                | (j :: _ as run) :: rest when abs (c - (let _, _, cj = a[j] in cj)) < 1e-5 -> (i :: run) :: rest
                | _ -> [ i ] :: acc)
            []

    for run in runs do
        let key (l: (int * float list * float) list) =
            run |> List.map (fun i -> let c, box, _ = l[i] in c, box) |> List.sort

        Expect.equal (key b) (key a) (sprintf "%s: detections %A (class, box)" what (List.rev run))

let private ofDetector (ds: Detection seq) =
    [ for d in ds -> d.ClassId, [ d.X1; d.Y1; d.X2; d.Y2 ], d.Confidence ]

let private backendTests =
    testList
        "backend"
        [
            test "Detector: ONNX Runtime gives the TorchSharp detections on the demo network (same boxes, same order)" {
                let dir, cfg, s, images = demo.Force()
                let names = Path.Combine(s.Directory, "shapes.names")
                let options = DetectorOptions(ImageSize = 128, ConfThreshold = 0.3)

                use torchDet =
                    Detector.Load(cfg, Path.Combine(dir, "demo.safetensors"), names, options)

                use onnxDet =
                    Detector.Load(null, Path.Combine(dir, "demo.onnx"), null, options, backend = InferenceBackend.OnnxRuntime)

                Expect.sequenceEqual onnxDet.ClassNames Shapes.classNames "names from the model"
                // a non-square picture too, so the minimal-rectangle letterbox gives another input shape
                let wide = (RgbImage.Load images[0]).Resized(150, 70)

                for name, picture in [ for f in images -> Path.GetFileName f, RgbImage.Load f ] @ [ "wide", wide ] do
                    sameDetections (ofDetector (torchDet.Detect picture)) (ofDetector (onnxDet.Detect picture)) name
            }

            test "CLI: export, then detect --backend onnxruntime writes the default backend's detections.json; eval's mAP agrees" {
                let dir, cfg, s, _ = demo.Force()
                let onnx = Path.Combine(dir, "cli.onnx")
                let weights = Path.Combine(dir, "demo.safetensors")
                let names = Path.Combine(s.Directory, "shapes.names")

                let code, out, err =
                    BuildTests.yolospp
                        [
                            "export"
                            "--cfg"
                            cfg
                            "--weights"
                            weights
                            "--names"
                            names
                            "--output"
                            onnx
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "cli.onnx" "reports the file"
                let src = Path.Combine(s.Directory, "images", "val")

                let detect backend model out =
                    BuildTests.yolospp (
                        [
                            "detect"
                            "--weights"
                            model
                            "--source"
                            src
                            "--out"
                            out
                            "--img-size"
                            "128"
                            "--conf"
                            "0.3"
                        ]
                        @ (if backend = "onnxruntime" then
                               [ "--backend"; "onnxruntime" ]
                           else
                               [ "--cfg"; cfg; "--names"; names ])
                    )

                let c1, _, e1 = detect "torchsharp" weights (Path.Combine(dir, "det-torch"))
                Expect.equal c1 0 e1
                let c2, _, e2 = detect "onnxruntime" onnx (Path.Combine(dir, "det-onnx"))
                Expect.equal c2 0 e2

                let read (d: string) =
                    use doc =
                        JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, d, "detections.json")))

                    [
                        for im in doc.RootElement.EnumerateArray() do
                            for det in im.GetProperty("detections").EnumerateArray() ->
                                det.GetProperty("class").GetInt32(),
                                [ for v in det.GetProperty("box_xyxy").EnumerateArray() -> v.GetDouble() ],
                                det.GetProperty("confidence").GetDouble()
                    ]

                sameDetections (read "det-torch") (read "det-onnx") "detections.json"

                let evalMap backend model =
                    let code, out, err =
                        BuildTests.yolospp (
                            [
                                "eval"
                                "--weights"
                                model
                                "--data"
                                s.DataFile
                                "--img-size"
                                "128"
                                "--batch-size"
                                "2"
                            ]
                            @ (if backend = "onnxruntime" then
                                   [ "--backend"; "onnxruntime" ]
                               else
                                   [ "--cfg"; cfg ])
                        )

                    Expect.equal code 0 err

                    out.Split('\n')
                    |> Array.find (fun l -> l.Contains "IoU=0.50:0.95 | area=   all | maxDets=100")

                Expect.equal (evalMap "onnxruntime" onnx) (evalMap "torchsharp" weights) "the same mAP line"
            }

            test "examples/OnnxRuntimeOnly (plain ONNX Runtime, no YoloSpp, no post-processing) finds the detector's best detection" {
                let dir, _, _, images = demo.Force()

                let dll =
                    Path.Combine(TestUtil.repoRoot, "examples", "OnnxRuntimeOnly", "bin", "Release", "net10.0", "OnnxRuntimeOnly.dll")

                if not (File.Exists dll) then
                    failtestf "%s is not built (dotnet fsi build.fsx build)" dll

                // the example reads the NMS output: a model exported with --nms at the detector's thresholds
                let model = Path.Combine(dir, "demo-nms.onnx")

                OnnxExport.Export(
                    Path.Combine(dir, "demo.safetensors"),
                    model,
                    OnnxExportOptions(ClassNames = Shapes.classNames, Nms = OnnxNmsOptions(0.3, 0.6, 100)),
                    cfg = Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")
                )

                let code, out, err =
                    BuildTests.runProcess "dotnet" [ dll; model; images[1]; "128" ] TestUtil.repoRoot

                Expect.equal code 0 (out + err)
                Expect.stringContains out "input 128x128" "the long side at the given size"
                // a model without the NMS output is refused, saying how to export one
                let code2, _, err2 =
                    BuildTests.runProcess "dotnet" [ dll; Path.Combine(dir, "demo.onnx"); images[1]; "128" ] TestUtil.repoRoot

                Expect.equal code2 2 "refused"
                Expect.stringContains err2 "--nms" "says how"

                use detector =
                    Detector.Load(null, model, null, DetectorOptions(ImageSize = 128, ConfThreshold = 0.3), backend = InferenceBackend.OnnxRuntime)
                // the best (row, class) pair is the same in both: no NMS suppresses it
                let best = detector.Detect images[1] |> Seq.maxBy (fun d -> d.Confidence)
                let line = out.Split('\n').[1].Trim()

                let expected =
                    FormattableString.Invariant($"{best.ClassName} {best.Confidence:F3} ({best.X1:F0}, {best.Y1:F0})-({best.X2:F0}, {best.Y2:F0})")

                Expect.equal line expected "the first (best) detection"
            }

            test "CLI: --backend torchsharp without --cfg is bad input naming the option" {
                let dir, _, s, _ = demo.Force()

                let code, _, err =
                    BuildTests.yolospp
                        [
                            "detect"
                            "--weights"
                            Path.Combine(dir, "demo.safetensors")
                            "--source"
                            Path.Combine(s.Directory, "images", "val")
                        ]

                Expect.equal code 2 "bad input"
                Expect.stringContains err "--cfg" "names the option"
            }
        ]

let tests = testList "onnx" [ backendTests ]
