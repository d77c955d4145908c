/// Sliced inference: the tiles against SAHI's get_slice_bboxes written out independently, their coverage as a
/// property, the merge rules (a box cut by a tile edge is found once), and the detector and the CLI slicing.
module YoloSpp.Tests.Detection.SlicingTests

open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Tests

type private Tile = Slicing.Tile
type private Box = Slicing.Box

/// SAHI's get_slice_bboxes, line by line (sahi/slicing.py): the independent computation the tiles are checked against.
let private sahi (height: int) (width: int) (sliceH: int) (sliceW: int) (overlapH: float) (overlapW: float) =
    let out = ResizeArray()
    let mutable yMax = 0
    let mutable yMin = 0
    let yOverlap = int (overlapH * float sliceH)
    let xOverlap = int (overlapW * float sliceW)

    while yMax < height do
        let mutable xMin = 0
        let mutable xMax = 0
        yMax <- yMin + sliceH

        while xMax < width do
            xMax <- xMin + sliceW

            if yMax > height || xMax > width then
                let xmax = min width xMax
                let ymax = min height yMax
                let xmin = max 0 (xmax - sliceW)
                let ymin = max 0 (ymax - sliceH)
                out.Add [| xmin; ymin; xmax; ymax |]
            else
                out.Add [| xMin; yMin; xMax; yMax |]

            xMin <- xMax - xOverlap

        yMin <- yMax - yOverlap

    out.ToArray()

let private corners (t: Tile) = [| t.X1; t.Y1; t.X2; t.Y2 |]

let private box x1 y1 x2 y2 score cls : Box =
    {
        X1 = x1
        Y1 = y1
        X2 = x2
        Y2 = y2
        Score = score
        Class = cls
    }

let properties: (string * Property) list =
    [
        "tiles = SAHI's get_slice_bboxes; they cover every pixel, each min(size, side) wide, inside the image",
        Prop.forAll
            (Arb.fromGen (
                Gen.zip (Gen.zip (Gen.choose (1, 700)) (Gen.choose (1, 700))) (Gen.zip (Gen.choose (8, 300)) (Gen.elements [ 0.0; 0.1; 0.2; 0.25; 0.5; 0.9 ]))
            ))
            (fun ((w, h), (size, overlap)) ->
                let tiles = Slicing.tiles w h size overlap
                let expected = sahi h w size size overlap overlap
                let covered = Array2D.zeroCreate<bool> w h

                for t in tiles do
                    for x in t.X1 .. t.X2 - 1 do
                        for y in t.Y1 .. t.Y2 - 1 do
                            covered.[x, y] <- true

                (tiles |> Array.map corners) = expected
                && (covered |> Seq.cast<bool> |> Seq.forall id)
                && tiles
                   |> Array.forall (fun t ->
                       t.X1 >= 0
                       && t.Y1 >= 0
                       && t.X2 <= w
                       && t.Y2 <= h
                       && t.X2 - t.X1 = min size w
                       && t.Y2 - t.Y1 = min size h))
    ]

let tests =
    testList
        "slicing"
        [
            test "tiles of a 2048x1536 image at 512 with 0.2 overlap: SAHI's 5 x 4, the last ones at the edges" {
                let tiles = Slicing.tiles 2048 1536 512 0.2
                Expect.equal (tiles |> Array.map corners) (sahi 1536 2048 512 512 0.2 0.2) "SAHI's"
                let xs = tiles |> Array.map (fun t -> t.X1) |> Array.distinct
                let ys = tiles |> Array.map (fun t -> t.Y1) |> Array.distinct
                Expect.equal xs [| 0; 410; 820; 1230; 1536 |] "columns: a step of 512 − 102, the last moved back"
                Expect.equal ys [| 0; 410; 820; 1024 |] "rows"
                Expect.throwsT<System.ArgumentException> (fun () -> Slicing.tiles 100 100 64 1.0 |> ignore) "overlap 1"
            }

            test "a box cut by a tile edge is found once: NMS by IOS drops the part, NMM merges it; NMS by IoU keeps both; other classes stay" {
                // the whole object, seen by the tile that holds it, and the part the neighbouring tile's edge cut
                let whole = box 100.0 100.0 120.0 120.0 0.9 2
                let part = box 100.0 100.0 108.0 120.0 0.6 2
                let other = box 101.0 101.0 119.0 119.0 0.7 3

                let merged =
                    Slicing.merge Slicing.Merge.Nmm Slicing.Match.Ios 0.5 false [| part; other; whole |]

                Expect.equal merged [| whole; other |] "one box per object, by descending score"
                // the part's IoU with the whole is 0.4: NMS by IoU at 0.5 keeps it as a second detection; by IOS (the
                // default) it drops it and keeps the whole box as it is
                let nms =
                    Slicing.merge Slicing.Merge.Nms Slicing.Match.Iou 0.5 false [| part; whole |]

                Expect.equal nms.Length 2 "NMS by IoU keeps the fragment"

                let nmsIos =
                    Slicing.merge Slicing.Merge.Nms Slicing.Match.Ios 0.5 false [| part; other; whole |]

                Expect.equal nmsIos [| whole; other |] "NMS by IOS: one box per object"
                // a larger low-scored box around a good one: NMM grows the good box into it, NMS by IOS drops it
                let around = box 90.0 90.0 140.0 140.0 0.05 2
                Expect.equal (Slicing.merge Slicing.Merge.Nms Slicing.Match.Ios 0.5 false [| around; whole |]) [| whole |] "dropped"
                Expect.equal ((Slicing.merge Slicing.Merge.Nmm Slicing.Match.Ios 0.5 false [| around; whole |]).[0].X2) 140.0 "grown"
                // agnostic: one merge over the classes
                let agnostic =
                    Slicing.merge Slicing.Merge.Nmm Slicing.Match.Ios 0.5 true [| part; other; whole |]

                Expect.equal agnostic [| whole |] "one box"
                // matches are judged against the kept box (IOS 0.6 merges, 0.5 exactly does not), merged into the union
                let left = box 10.0 10.0 30.0 50.0 0.8 0
                let right = box 36.0 10.0 58.0 50.0 0.7 0
                let middle = box 18.0 10.0 38.0 50.0 0.75 0
                let edge = box 20.0 10.0 40.0 50.0 0.72 0

                let chained =
                    Slicing.merge Slicing.Merge.Nmm Slicing.Match.Ios 0.5 false [| left; right; middle; edge |]

                Expect.equal chained.Length 3 "the left box merges the middle one; the right one and the one at IOS 0.5 stay"
                Expect.equal (chained.[0].X1, chained.[0].X2, chained.[0].Score) (10.0, 38.0, 0.8) "the union, the best score"
            }

            test "the detector: one tile holding the whole image gives the plain detections; a large image's boxes stay inside it" {
                let dir, cfg, s, images = YoloSpp.Tests.Export.OnnxBackendTests.demo.Force()
                let names = Path.Combine(s.Directory, "shapes.names")
                let weights = Path.Combine(dir, "demo.safetensors")
                let plainOptions = DetectorOptions(ImageSize = 128, ConfThreshold = 0.3)
                use plain = Detector.Load(cfg, weights, names, plainOptions)

                use one =
                    Detector.Load(
                        cfg,
                        weights,
                        names,
                        DetectorOptions(
                            ImageSize = 128,
                            ConfThreshold = 0.3,
                            Slice = 128,
                            SliceMerge = SliceMerge.Nms,
                            SliceMatch = SliceMatch.Iou,
                            SliceMatchThreshold = 0.6
                        )
                    )

                for f in images do
                    let a = plain.Detect f
                    let b = one.Detect f
                    Expect.isGreaterThan a.Count 0 "something to compare"
                    Expect.sequenceEqual b a (Path.GetFileName f + ": the same detections")

                // a 300x200 picture in tiles of 96 (4 x 3 and the whole image), each letterboxed to 128
                let big = (RgbImage.Load images.[0]).Resized(300, 200)

                use sliced =
                    Detector.Load(cfg, weights, names, DetectorOptions(ImageSize = 128, ConfThreshold = 0.3, Slice = 96, SliceOverlap = 0.25))

                let r = sliced.DetectWithTimings big
                Expect.isGreaterThan r.Detections.Count 0 "detections"
                Expect.isLessThanOrEqual r.Detections.Count 100 "the cap"

                for d in r.Detections do
                    Expect.isTrue
                        (d.X1 >= 0.0
                         && d.Y1 >= 0.0
                         && d.X2 <= 300.0
                         && d.Y2 <= 200.0
                         && d.X2 > d.X1
                         && d.Y2 > d.Y1)
                        (sprintf "%A inside" d)

                let scores = r.Detections |> Seq.map (fun d -> d.Confidence) |> Array.ofSeq
                Expect.equal scores (Array.sortDescending scores) "by descending score"

                Expect.throwsT<System.ArgumentException> (fun () -> DetectorOptions(Slice = 64, SliceOverlap = 1.0).Validate()) "an overlap of 1 never ends"
            }

            test "CLI: detect --slice and eval --slice run the detector's slicing; the slicing options need --slice" {
                let dir, cfg, s, _ = YoloSpp.Tests.Export.OnnxBackendTests.demo.Force()
                let weights = Path.Combine(dir, "demo.safetensors")
                let names = Path.Combine(s.Directory, "shapes.names")
                let src = Path.Combine(s.Directory, "images", "val")

                let code, out, err =
                    BuildTests.yolospp
                        [
                            "detect"
                            "--weights"
                            weights
                            "--cfg"
                            cfg
                            "--names"
                            names
                            "--source"
                            src
                            "--img-size"
                            "64"
                            "--slice"
                            "64"
                            "--overlap"
                            "0.25"
                            "--out"
                            Path.Combine(dir, "det-slice")
                        ]

                Expect.equal code 0 err
                Expect.stringContains out "detections -> " "the summary"

                let code2, out2, err2 =
                    BuildTests.yolospp
                        [
                            "eval"
                            "--weights"
                            weights
                            "--cfg"
                            cfg
                            "--data"
                            s.DataFile
                            "--img-size"
                            "64"
                            "--slice"
                            "64"
                            "--slice-merge"
                            "nms"
                        ]

                Expect.equal code2 0 err2
                Expect.stringContains out2 "IoU=0.50:0.95 | area=   all" "the COCO table"

                // a data.yaml: the detector takes its names from the yaml, as the evaluation does
                let yaml = Path.Combine(s.Directory, "shapes.yaml")

                File.WriteAllText(yaml, sprintf "path: .\ntrain: train.txt\nval: val.txt\nnames: [%s]\n" (System.String.Join(", ", File.ReadAllLines names)))

                let code4, out4, err4 =
                    BuildTests.yolospp
                        [
                            "eval"
                            "--weights"
                            weights
                            "--cfg"
                            cfg
                            "--data"
                            yaml
                            "--img-size"
                            "64"
                            "--slice"
                            "64"
                        ]

                Expect.equal code4 0 err4
                Expect.stringContains out4 "IoU=0.50:0.95 | area=   all" "the COCO table from a data.yaml"

                let code3, _, err3 =
                    BuildTests.yolospp
                        [
                            "eval"
                            "--weights"
                            weights
                            "--cfg"
                            cfg
                            "--data"
                            s.DataFile
                            "--overlap"
                            "0.3"
                        ]

                Expect.equal code3 2 "usage error"
                Expect.stringContains err3 "go with --slice" "says why"
            }
        ]
