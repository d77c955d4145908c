/// The `eval` and `detect` commands and the Detector façade (`cocoeval`: CocoEvalCliTests): the
/// output formats on a tiny shapes set with a random-weight tiny-spp network, and each malformed input's message.
module YoloSpp.Tests.Detection.EvalDetectTests

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

open YoloSpp.Tests.Evaluation.CocoEvalCliTests

// ---------------------------------------------------------------- a tiny model on a tiny shapes set

/// 8 val images of 96 px (shapes, 5 classes), tiny-spp rewritten to 5 classes, random weights as safetensors.
type private Fixture =
    {
        Dir: string
        Data: string
        Names: string
        Cfg: string
        Weights: string
        ValImages: string[]
    }

let private fixture =
    lazy
        (let dir = TestUtil.fixtureDir "yolospp-evaldet-"

         let s =
             ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "shapes"), Train = 1, Val = 8, Size = 96, Seed = 3))

         let cfg = Path.Combine(dir, "tiny-spp-5.cfg")
         ModelCfg.WriteWithClasses(Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg"), cfg, 5)
         let weights = Path.Combine(dir, "random.safetensors")
         Backend.Initialize()
         TorchSharp.torch.manual_seed 0L |> ignore

         (use model = DarkNet.FromCfgFile cfg
          ModelWeights.Save(model, weights))

         let valDir = Path.Combine(s.Directory, "images", "val")

         {
             Dir = dir
             Data = s.DataFile
             Names = Path.Combine(s.Directory, "shapes.names")
             Cfg = cfg
             Weights = weights
             ValImages = Directory.GetFiles valDir |> Array.sort
         })

let private evalTests =
    testList
        "eval"
        [
            test "eval's defaults are validation.py's: rectangular batches, batch size 1, 512; --no-rect letterboxes squares" {
                let v = DataOptions.Validation
                Expect.equal (v.Rect, v.BatchSize, v.ImageSize) (true, 1, 512) "validation.py's LoadImagesAndLabels arguments"
                let _, usage, _ = yolospp [ "eval"; "--help" ]
                Expect.stringContains usage "--no-rect" "the square letterbox is the option"
                Expect.stringContains usage "(default 1, as validation.py)" "batch size default"
            }
            test "prints 12 stats, a row per class and the timing; --save-json writes COCO detections" {
                let f = fixture.Force()
                let json = Path.Combine(f.Dir, "eval-dets.json")

                let code, out, err =
                    yolospp
                        [
                            "eval"
                            "--cfg"
                            f.Cfg
                            "--weights"
                            f.Weights
                            "--data"
                            f.Data
                            "--img-size"
                            "64"
                            "--batch-size"
                            "4"
                            "--conf"
                            "0.00001"
                            "--save-json"
                            json
                        ]

                Expect.equal code 0 err
                let lines = out.Split('\n') |> Array.map (fun l -> l.TrimEnd())
                let stats = lines |> Array.filter (fun l -> l.StartsWith " Average ")
                Expect.equal stats.Length 12 "the 12-line summary"

                for name in Shapes.classNames do
                    Expect.isTrue (lines |> Array.exists (fun l -> l.StartsWith(name + " "))) (sprintf "a row for %s" name)

                Expect.isTrue (lines |> Array.exists (fun l -> l.StartsWith "8 images")) "timing line over 8 images"
                use doc = JsonDocument.Parse(File.ReadAllText json)
                let dets = doc.RootElement.EnumerateArray() |> Seq.toArray
                Expect.isNonEmpty dets "random weights at conf 1e-5 still give boxes"

                for d in dets do
                    Expect.isTrue (d.GetProperty("image_id").GetInt64() < 8L) "image ids index the valid list"
                    Expect.equal (d.GetProperty("bbox").GetArrayLength()) 4 "xywh"
                    Expect.isTrue (d.GetProperty("category_id").GetInt64() < 5L) "5 classes"
            }
            test "a class without ground truth shows '-'" {
                let f = fixture.Force()
                // a valid list with one image whose labels hold no star (class 3) or some other class
                let dir = Path.Combine(f.Dir, "one")
                Directory.CreateDirectory dir |> ignore

                let labels (img: string) =
                    Path.ChangeExtension(img.Replace("/images/", "/labels/"), ".txt")

                let img =
                    f.ValImages
                    |> Array.find (fun i ->
                        File.Exists(labels i)
                        && (File.ReadAllLines(labels i) |> Array.exists (fun l -> l.Trim() <> "")))

                let present =
                    File.ReadAllLines(labels img)
                    |> Array.filter (fun l -> l.Trim() <> "")
                    |> Array.map (fun l -> int (l.Split(' ')[0]))
                    |> set

                let absent = [ 0..4 ] |> List.find (fun c -> not (present.Contains c))
                File.WriteAllText(Path.Combine(dir, "val.txt"), img + "\n")
                let data = Path.Combine(dir, "one.data")
                File.WriteAllText(data, sprintf "classes=5\ntrain=val.txt\nvalid=val.txt\nnames=%s\n" f.Names)

                let code, out, err =
                    yolospp
                        [
                            "eval"
                            "--cfg"
                            f.Cfg
                            "--weights"
                            f.Weights
                            "--data"
                            data
                            "--img-size"
                            "64"
                        ]

                Expect.equal code 0 err

                let row =
                    out.Split('\n')
                    |> Array.find (fun l -> l.StartsWith(Shapes.classNames[absent] + " "))

                Expect.sequenceEqual (row.Split(' ', StringSplitOptions.RemoveEmptyEntries) |> Array.skip 1) [| "-"; "-" |] row
            }
            test "a missing weights file: exit 2 naming it" {
                let f = fixture.Force()
                let missing = Path.Combine(f.Dir, "none.safetensors")

                expectOneLineError
                    (let c, _, e =
                        yolospp
                            [
                                "eval"
                                "--cfg"
                                f.Cfg
                                "--weights"
                                missing
                                "--data"
                                f.Data
                                "--img-size"
                                "64"
                            ] in

                     c, e.Trim())
                    (missing + ": no such weights file")
            }
            test "a cfg with another class count than the .data: exit 2" {
                let f = fixture.Force()
                let cfg2 = Path.Combine(TestUtil.repoGoldenDir, "tiny-spp.cfg")

                expectOneLineError
                    (let c, _, e =
                        yolospp
                            [
                                "eval"
                                "--cfg"
                                cfg2
                                "--weights"
                                f.Weights
                                "--data"
                                f.Data
                                "--img-size"
                                "64"
                            ] in

                     c, e.Trim())
                    "the cfg has 2 classes but"
            }
            test "weights of another network: exit 2" {
                let f = fixture.Force()
                let w = Path.Combine(TestUtil.repoGoldenDir, "tiny-spp-random.weights")

                let code, _, err =
                    yolospp [ "eval"; "--cfg"; f.Cfg; "--weights"; w; "--data"; f.Data; "--img-size"; "64" ]

                Expect.equal code 2 err
                Expect.stringContains err "tiny-spp-random.weights" "names the file"
            }
            test "a missing .data file: exit 2" {
                let f = fixture.Force()
                let missing = Path.Combine(f.Dir, "none.data")

                expectOneLineError
                    (let c, _, e =
                        yolospp [ "eval"; "--cfg"; f.Cfg; "--weights"; f.Weights; "--data"; missing ] in

                     c, e.Trim())
                    (missing + ": no such .data file")
            }
        ]

let private detectTests =
    testList
        "detect"
        [
            test "a folder: annotated images at the original sizes, detections.json, per-image timing; other files skipped" {
                let f = fixture.Force()
                let src = Path.Combine(f.Dir, "detect-src")
                Directory.CreateDirectory src |> ignore

                for img in f.ValImages |> Array.truncate 2 do
                    File.Copy(img, Path.Combine(src, Path.GetFileName img), true)
                // a non-square PNG, so the letterbox pads and scale_coords has work to do
                (RgbImage.Load f.ValImages[2]).Resized(80, 48).Save(Path.Combine(src, "wide.png"))
                File.WriteAllText(Path.Combine(src, "notes.txt"), "not an image")
                let out = Path.Combine(f.Dir, "detect-out")

                let code, stdout, err =
                    yolospp
                        [
                            "detect"
                            "--cfg"
                            f.Cfg
                            "--weights"
                            f.Weights
                            "--names"
                            f.Names
                            "--source"
                            src
                            "--out"
                            out
                            "--img-size"
                            "64"
                            "--conf"
                            "0.00001"
                        ]

                Expect.equal code 0 err
                Expect.stringContains stdout "skipping" "the text file is skipped with a note"
                Expect.stringContains stdout "notes.txt" "naming it"
                Expect.stringContains stdout "inference" "timing per image"
                use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "detections.json")))
                let images = doc.RootElement.EnumerateArray() |> Seq.toArray
                Expect.equal images.Length 3 "three images"

                for im in images do
                    let path = im.GetProperty("image").GetString()
                    let w, h = im.GetProperty("width").GetInt32(), im.GetProperty("height").GetInt32()
                    Expect.equal struct (w, h) (RgbImage.ReadSize path) "original size in the json"
                    let annotated = Path.Combine(out, Path.GetFileName path)
                    Expect.equal (RgbImage.ReadSize annotated) struct (w, h) "annotated image keeps the original size"

                    for d in im.GetProperty("detections").EnumerateArray() do
                        let cls = d.GetProperty("class").GetInt32()
                        Expect.equal (d.GetProperty("name").GetString()) Shapes.classNames[cls] "name of the class"
                        let conf = d.GetProperty("confidence").GetDouble()
                        Expect.isTrue (conf > 0.0 && conf <= 1.0) "confidence in (0, 1]"

                        let b =
                            d.GetProperty("box_xyxy").EnumerateArray()
                            |> Seq.map (fun e -> e.GetDouble())
                            |> Seq.toArray

                        Expect.equal b.Length 4 "xyxy"

                        Expect.isTrue
                            (b[0] >= 0.0
                             && b[1] >= 0.0
                             && b[2] <= float w
                             && b[3] <= float h
                             && b[0] <= b[2]
                             && b[1] <= b[3])
                            (sprintf "box inside the original image: %A" b)

                Expect.isTrue
                    (images
                     |> Array.exists (fun im -> im.GetProperty("detections").GetArrayLength() > 0))
                    "some boxes at conf 1e-5"

                use png = File.OpenRead(Path.Combine(out, "wide.png"))
                let magic = Array.zeroCreate<byte> 4
                png.ReadExactly magic
                Expect.equal magic [| 0x89uy; byte 'P'; byte 'N'; byte 'G' |] "a .png stays PNG"
            }
            test "a non-image --source: exit 2 naming it" {
                let f = fixture.Force()
                let txt = Path.Combine(f.Dir, "notes.md")
                File.WriteAllText(txt, "hello")

                expectOneLineError
                    (let c, _, e =
                        yolospp
                            [
                                "detect"
                                "--cfg"
                                f.Cfg
                                "--weights"
                                f.Weights
                                "--names"
                                f.Names
                                "--source"
                                txt
                                "--out"
                                Path.Combine(f.Dir, "o2")
                                "--img-size"
                                "64"
                            ] in

                     c, e.Trim())
                    (txt + ": not an image, a video or a .txt list")
            }
            test "an unreadable image: exit 2 naming the file" {
                let f = fixture.Force()
                let bad = Path.Combine(f.Dir, "broken.jpg")
                File.WriteAllText(bad, "not really a jpeg")

                let code, _, err =
                    yolospp
                        [
                            "detect"
                            "--cfg"
                            f.Cfg
                            "--weights"
                            f.Weights
                            "--names"
                            f.Names
                            "--source"
                            bad
                            "--out"
                            Path.Combine(f.Dir, "o3")
                            "--img-size"
                            "64"
                        ]

                Expect.equal code 2 err
                Expect.stringContains err bad "names the file"
            }
            test "a missing weights file: exit 2 naming it" {
                let f = fixture.Force()
                let missing = Path.Combine(f.Dir, "none.pt")

                expectOneLineError
                    (let c, _, e =
                        yolospp
                            [
                                "detect"
                                "--cfg"
                                f.Cfg
                                "--weights"
                                missing
                                "--names"
                                f.Names
                                "--source"
                                f.ValImages[0]
                                "--out"
                                Path.Combine(f.Dir, "o4")
                                "--img-size"
                                "64"
                            ] in

                     c, e.Trim())
                    (missing + ": no such weights file")
            }
        ]

let private facadeTests =
    testList
        "detector façade"
        [
            test "Detector.Load/Detect/Annotate: boxes in original pixels, the same from a path and from pixels" {
                let f = fixture.Force()

                use detector =
                    Detector.Load(f.Cfg, f.Weights, f.Names, DetectorOptions(ImageSize = 64, ConfThreshold = 0.00001))

                Expect.sequenceEqual detector.ClassNames Shapes.classNames "names"
                let img = RgbImage.Load f.ValImages[0]
                let fromPath = detector.Detect f.ValImages[0]
                let fromPixels = detector.Detect img
                Expect.sequenceEqual fromPixels fromPath "path and pixels agree"
                Expect.isNonEmpty fromPath "boxes at conf 1e-5"

                for d in fromPath do
                    Expect.equal d.ClassName Shapes.classNames[d.ClassId] "name"

                    Expect.isTrue
                        (d.X1 >= 0.0
                         && d.Y1 >= 0.0
                         && d.X2 <= float img.Width
                         && d.Y2 <= float img.Height)
                        "inside the image"

                    Expect.equal d.X1 (Math.Round d.X1) "rounded as the reference"

                let out = Path.Combine(f.Dir, "facade.jpg")
                let drawn = detector.Annotate(f.ValImages[0], out)

                let above =
                    fromPath |> Seq.filter (fun d -> d.Confidence > detector.Options.DrawThreshold)

                Expect.isLessThan drawn.Count fromPath.Count "at conf 1e-5 some boxes score below the draw threshold"
                Expect.sequenceEqual drawn above "draws those above DrawThreshold (0.2), as the reference's predict"
                Expect.equal (RgbImage.ReadSize out) struct (img.Width, img.Height) "original size"
            }
            test "a .names with another count than the cfg is refused" {
                let f = fixture.Force()
                let names = Path.Combine(f.Dir, "three.names")
                File.WriteAllText(names, "a\nb\nc\n")
                Expect.throwsT<InvalidInputException> (fun () -> Detector.Load(f.Cfg, f.Weights, names) |> ignore) "3 names, 5 classes"
            }
            test "the Evaluator over files gives the CLI's 12 stats" {
                let f = fixture.Force()

                let r =
                    Evaluator.Evaluate(f.Cfg, f.Weights, f.Data, EvaluationOptions(ConfThreshold = 0.00001), DataOptions(ImageSize = 64, BatchSize = 4))

                Expect.equal r.Stats.Count 12 "12 stats"
                Expect.equal r.Images 8 "8 images"
                Expect.equal r.PerClass.Count 5 "5 classes"
            }
        ]

let private csharpTests =
    testList
        "from C#"
        [
            test "the QuickStart detection example runs: Detector and Evaluator from C#" {
                let f = fixture.Force()
                let out = Path.Combine(f.Dir, "quickstart.png")

                let struct (detections, map50) =
                    QuickStart.DetectExample.Run(f.Cfg, f.Weights, f.Names, f.Data, f.ValImages[0], out, 64)

                Expect.isNonEmpty detections "boxes at conf 1e-5"
                Expect.isTrue (map50 >= 0.0 && map50 <= 1.0) "mAP@.5 in [0, 1]"
                Expect.isTrue (File.Exists out) "annotated image written"
            }
        ]

let tests =
    testList "eval-detect" [ cocoevalTests; evalTests; detectTests; facadeTests; csharpTests ]
