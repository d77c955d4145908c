/// The embedded shapes dataset: its geometry, determinism, label validity, tight boxes, folder layout, reuse, and
/// the `yolospp shapes` command.
module YoloSpp.Tests.Data.ShapesTests

open System
open System.IO
open System.Text.RegularExpressions
open Expecto
open YoloSpp
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Data
open YoloSpp.Tests

let private withTempDir (f: string -> unit) =
    let d = Directory.CreateTempSubdirectory "yolospp-shapes-"

    try
        f d.FullName
    finally
        d.Delete true

/// A small dataset: 12 train and 4 val images of 96 px.
let private small (dir: string) (seed: int) =
    ShapesOptions(dir, Train = 12, Val = 4, Size = 96, Seed = seed)

let private relativeFiles (dir: string) =
    Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
    |> Array.map (fun f -> Path.GetRelativePath(dir, f).Replace('\\', '/'))
    |> Array.sort

let private box (o: ShapesObject) : Shapes.PixelBox =
    {
        X1 = o.X1
        Y1 = o.Y1
        X2 = o.X2
        Y2 = o.Y2
    }

let private geometryTests =
    testList
        "geometry"
        [
            test "a square rotated by 45° has an axis-aligned box of side r√2; unrotated (a diamond) of side 2r" {
                let r = 10.0
                let diamond = Shapes.polygonBox (Shapes.regularPolygon 4 50.0 50.0 r 0.0)
                let square = Shapes.polygonBox (Shapes.regularPolygon 4 50.0 50.0 r (Math.PI / 4.0))
                Expect.floatClose Accuracy.high diamond.Width (2.0 * r) "diamond width"
                Expect.floatClose Accuracy.high square.Width (r * sqrt 2.0) "square width"
                Expect.floatClose Accuracy.high square.Height (r * sqrt 2.0) "square height"
            }
            test "a triangle's box is tighter than its circumcircle's: height 1.5 r with a corner pointing up" {
                let b = Shapes.polygonBox (Shapes.regularPolygon 3 0.0 0.0 2.0 (-Math.PI / 2.0))
                Expect.floatClose Accuracy.high b.Height 3.0 "r + r/2"
                Expect.floatClose Accuracy.high b.Width (2.0 * sqrt 3.0) "side r√3"
            }
            test "a star has 10 vertices, tips on the outer circle and notches on the inner one" {
                let xy = Shapes.star 0.0 0.0 10.0 0.4 0.3
                Expect.equal xy.Length 20 "10 x,y pairs"
                let radii = Array.init 10 (fun k -> sqrt (xy[2 * k] ** 2.0 + xy[2 * k + 1] ** 2.0))

                for k in 0..9 do
                    Expect.floatClose Accuracy.high radii[k] (if k % 2 = 0 then 10.0 else 4.0) (sprintf "vertex %d" k)
            }
            test "the overlap rule: IoU above 0.35, or an earlier box mostly covered, is refused" {
                let a: Shapes.PixelBox =
                    {
                        X1 = 0.0
                        Y1 = 0.0
                        X2 = 10.0
                        Y2 = 10.0
                    }

                let shifted dx : Shapes.PixelBox =
                    { a with
                        X1 = a.X1 + dx
                        X2 = a.X2 + dx
                    }

                Expect.isFalse (Shapes.fits 0.35 0.5 [ a ] (shifted 3.0)) "IoU 0.54"
                Expect.isTrue (Shapes.fits 0.35 0.5 [ a ] (shifted 6.0)) "IoU 0.25, 40 % covered"

                let big: Shapes.PixelBox =
                    {
                        X1 = -20.0
                        Y1 = -20.0
                        X2 = 30.0
                        Y2 = 30.0
                    }

                Expect.isTrue (Shapes.iou a big <= 0.35) "a small box inside a big one has a low IoU"
                Expect.isFalse (Shapes.fits 0.35 0.5 [ a ] big) "yet would be hidden"
            }
            test "COCO size buckets: < 32² small, 32²..96² medium, above large" {
                let sq s : Shapes.PixelBox = { X1 = 0.0; Y1 = 0.0; X2 = s; Y2 = s }
                Expect.equal (Shapes.sizeBucket (sq 31.9)) Shapes.SizeBucket.Small "small"
                Expect.equal (Shapes.sizeBucket (sq 32.0)) Shapes.SizeBucket.Medium "medium from 32²"
                Expect.equal (Shapes.sizeBucket (sq 96.0)) Shapes.SizeBucket.Medium "medium to 96²"
                Expect.equal (Shapes.sizeBucket (sq 96.1)) Shapes.SizeBucket.Large "large"
            }
            test "image seeds are non-negative and differ between seeds, splits and indices" {
                let seeds =
                    [
                        for s in 0..2 do
                            for split in 0..1 do
                                for i in 0..99 -> Shapes.imageSeed s split i
                    ]

                Expect.all seeds (fun x -> x >= 0) "non-negative"
                Expect.equal (List.distinct seeds).Length seeds.Length "distinct"
                Expect.isTrue (Shapes.imageSeed -1 0 0 >= 0) "a negative dataset seed too"
            }
        ]

let private renderTests =
    testList
        "render"
        [
            test "on a flat background every changed pixel lies in the labelled box, and touches its four sides" {
                let o =
                    ShapesOptions("unused", Size = 96, Background = ShapesBackground.Flat, MaxObjects = 1, EmptyFraction = 0.0)

                for i in 0..39 do
                    let img = ShapesDataset.Render(o, ShapesSplit.Train, i)
                    Expect.equal img.Objects.Count 1 (sprintf "image %d has one object" i)
                    let s = img.Size

                    let px (x, y) =
                        let k = (y * s + x) * 4 in int img.Rgba[k], int img.Rgba[k + 1], int img.Rgba[k + 2]
                    // the object covers under half the image, so the most frequent colour is the background
                    let bg =
                        [
                            for y in 0 .. s - 1 do
                                for x in 0 .. s - 1 -> px (x, y)
                        ]
                        |> List.countBy id
                        |> List.maxBy snd
                        |> fst

                    let differs (x, y) =
                        let (r, g, b), (br, bgc, bb) = px (x, y), bg
                        max (abs (r - br)) (max (abs (g - bgc)) (abs (b - bb))) > 8

                    let changed =
                        [
                            for y in 0 .. s - 1 do
                                for x in 0 .. s - 1 do
                                    if differs (x, y) then
                                        yield (x, y)
                        ]

                    let o1 = img.Objects[0]

                    let name =
                        sprintf "image %d (%s, box %.2f %.2f %.2f %.2f)" i Shapes.classNames[o1.Class] o1.X1 o1.Y1 o1.X2 o1.Y2

                    Expect.isNonEmpty changed name
                    // pixel (x, y) covers [x, x+1) x [y, y+1)
                    for x, y in changed do
                        Expect.isTrue
                            (float x + 1.0 >= o1.X1 - 1.0
                             && float x <= o1.X2 + 1.0
                             && float y + 1.0 >= o1.Y1 - 1.0
                             && float y <= o1.Y2 + 1.0)
                            (sprintf "%s: pixel %d,%d outside" name x y)

                    let xs, ys = List.map fst changed, List.map snd changed
                    Expect.isTrue (abs (float (List.min xs) - o1.X1) <= 1.0) (sprintf "%s: left side, first pixel %d" name (List.min xs))
                    Expect.isTrue (abs (float (List.max xs) + 1.0 - o1.X2) <= 1.0) (sprintf "%s: right side, last pixel %d" name (List.max xs))
                    Expect.isTrue (abs (float (List.min ys) - o1.Y1) <= 1.0) (sprintf "%s: top side, first pixel %d" name (List.min ys))
                    Expect.isTrue (abs (float (List.max ys) + 1.0 - o1.Y2) <= 1.0) (sprintf "%s: bottom side, last pixel %d" name (List.max ys))
            }
            test "objects per image are 0..6 with about 5 % empty, overlaps at most IoU 0.35, every class present" {
                let o = ShapesOptions("unused", Size = 64)
                let images = [ for i in 0..299 -> ShapesDataset.Render(o, ShapesSplit.Train, i) ]
                let counts = images |> List.map (fun im -> im.Objects.Count)
                Expect.all counts (fun n -> n >= 0 && n <= 6) "0..6 objects"
                let empty = counts |> List.filter ((=) 0) |> List.length
                Expect.isTrue (empty >= 5 && empty <= 35) (sprintf "%d of 300 empty (expected ~15)" empty)
                Expect.isTrue (counts |> List.exists ((=) 6)) "some image holds 6"

                for im in images do
                    let boxes = im.Objects |> Seq.map box |> Seq.toArray

                    for a in 0 .. boxes.Length - 1 do
                        for b in a + 1 .. boxes.Length - 1 do
                            Expect.isTrue (Shapes.iou boxes[a] boxes[b] <= 0.35 + 1e-9) "IoU ≤ 0.35"

                let classes =
                    images
                    |> Seq.collect (fun im -> im.Objects)
                    |> Seq.map (fun ob -> ob.Class)
                    |> Set.ofSeq

                Expect.equal classes (set [ 0..4 ]) "all five classes"
            }
            test "at 256 px small, medium and large objects all occur" {
                let o = ShapesOptions("unused", Size = 256)

                let buckets =
                    [
                        for i in 0..59 do
                            for ob in ShapesDataset.Render(o, ShapesSplit.Val, i).Objects -> Shapes.sizeBucket (box ob)
                    ]
                    |> List.countBy id
                    |> Map.ofList

                for b in [ Shapes.SizeBucket.Small; Shapes.SizeBucket.Medium; Shapes.SizeBucket.Large ] do
                    Expect.isTrue (buckets.ContainsKey b) (sprintf "%A present: %A" b buckets)
            }
        ]

let private folderTests =
    testList
        "folder"
        [
            test "the same seed gives byte-identical files, another seed other images" {
                withTempDir (fun root ->
                    let a, b, c =
                        Path.Combine(root, "a"), Path.Combine(root, "b"), Path.Combine(root, "c")

                    ShapesDataset.Generate(small a 7) |> ignore
                    ShapesDataset.Generate(small b 7) |> ignore
                    ShapesDataset.Generate(small c 8) |> ignore
                    let fa, fb = relativeFiles a, relativeFiles b
                    Expect.sequenceEqual fb fa "same file names"

                    for f in fa do
                        Expect.isTrue (File.ReadAllBytes(Path.Combine(a, f)) = File.ReadAllBytes(Path.Combine(b, f))) (f + " identical")

                    let differing =
                        fa
                        |> Array.filter (fun f ->
                            f.EndsWith ".jpg"
                            && File.ReadAllBytes(Path.Combine(a, f)) <> File.ReadAllBytes(Path.Combine(c, f)))

                    Expect.equal differing.Length 16 "every image differs under another seed")
            }
            test "layout: image lists, labels beside images, .names and .data relative to the folder" {
                withTempDir (fun dir ->
                    let s = ShapesDataset.Generate(small dir 0)
                    Expect.equal s.DataFile (Path.Combine(dir, "shapes.data")) "data file"
                    Expect.equal (File.ReadAllText s.DataFile) "classes=5\ntrain=train.txt\nvalid=val.txt\nnames=shapes.names\n" ".data"
                    Expect.equal (File.ReadAllText(Path.Combine(dir, "shapes.names"))) "circle\nsquare\ntriangle\nstar\nring\n" ".names"

                    for split, n in [ "train", 12; "val", 4 ] do
                        let lines = File.ReadAllLines(Path.Combine(dir, split + ".txt"))
                        Expect.sequenceEqual lines [ for i in 0 .. n - 1 -> sprintf "images/%s/%06d.jpg" split i ] (split + ".txt")

                        for l in lines do
                            let bytes = File.ReadAllBytes(Path.Combine(dir, l))
                            Expect.isTrue (bytes.Length > 3 && bytes[0] = 0xFFuy && bytes[1] = 0xD8uy) (l + " is a JPEG")
                            Expect.isTrue (File.Exists(Path.Combine(dir, l.Replace("images/", "labels/").Replace(".jpg", ".txt")))) (l + " has a label file")

                    Expect.isEmpty (relativeFiles dir |> Array.filter (fun f -> f.EndsWith ".tmp")) "no temp files left"
                    Expect.equal (s.TrainImages, s.ValImages) (12, 4) "counts"
                    Expect.equal (Seq.sum s.ObjectsPerSize) s.Objects "every object in one size bucket")
            }
            test "label rows are `class cx cy w h` with 6 decimals, class 0..4, box inside [0, 1], w and h > 0" {
                withTempDir (fun dir ->
                    ShapesDataset.Generate(small dir 3) |> ignore
                    let row = Regex(@"^[0-4]( \d\.\d{6}){4}$")
                    let mutable rows = 0

                    for f in Directory.GetFiles(Path.Combine(dir, "labels"), "*.txt", SearchOption.AllDirectories) do
                        for l in File.ReadAllLines f do
                            rows <- rows + 1
                            Expect.isTrue (row.IsMatch l) (sprintf "%s: '%s'" f l)

                            let v =
                                l.Split ' '
                                |> Array.map (fun x -> Double.Parse(x, Globalization.CultureInfo.InvariantCulture))

                            let cx, cy, w, h = v[1], v[2], v[3], v[4]
                            Expect.isTrue (w > 0.0 && h > 0.0) (sprintf "%s: '%s' size" f l)

                            Expect.isTrue
                                (cx - w / 2.0 >= -1e-6
                                 && cx + w / 2.0 <= 1.0 + 1e-6
                                 && cy - h / 2.0 >= -1e-6
                                 && cy + h / 2.0 <= 1.0 + 1e-6)
                                (sprintf "%s: '%s' inside" f l)

                    Expect.isGreaterThan rows 16 "rows were written")
            }
            test "a folder holding the same dataset is reused untouched; other parameters regenerate and drop stale files" {
                withTempDir (fun dir ->
                    let first = ShapesDataset.Generate(small dir 0)
                    Expect.isFalse first.Reused "first run generates"
                    let img = Path.Combine(dir, "images", "train", "000011.jpg")
                    let stamp = File.GetLastWriteTimeUtc img
                    let again = ShapesDataset.Generate(small dir 0)
                    Expect.isTrue again.Reused "second run reuses"
                    Expect.equal (File.GetLastWriteTimeUtc img) stamp "image not rewritten"
                    Expect.equal again.ObjectsPerClass first.ObjectsPerClass "same summary"

                    let fewer =
                        ShapesDataset.Generate(ShapesOptions(dir, Train = 6, Val = 4, Size = 96, Seed = 0))

                    Expect.isFalse fewer.Reused "another train count regenerates"
                    Expect.isFalse (File.Exists img) "image 11 of the larger dataset removed"
                    Expect.equal (File.ReadAllLines(Path.Combine(dir, "train.txt")).Length) 6 "train.txt"
                    File.Delete(Path.Combine(dir, "images", "val", "000002.jpg"))
                    Expect.isFalse (ShapesDataset.Generate(ShapesOptions(dir, Train = 6, Val = 4, Size = 96)).Reused) "a missing image regenerates")
            }
            test "bad options throw ArgumentException with a one-line reason" {
                for o in
                    [
                        ShapesOptions("x", Size = 100)
                        ShapesOptions("x", Size = 32)
                        ShapesOptions("x", Train = -1)
                        ShapesOptions("x", Val = -3)
                    ] do
                    let e = Expect.throwsC (fun () -> ShapesDataset.Generate o |> ignore) id
                    Expect.isTrue (e :? ArgumentException && not (e.Message.Contains "\n")) e.Message
            }
        ]

let private cliTests =
    testList
        "cli"
        [
            test "yolospp shapes generates, prints the summary, then reuses the folder" {
                withTempDir (fun dir ->
                    let args =
                        [
                            "shapes"
                            "--out"
                            dir
                            "--train"
                            "8"
                            "--val"
                            "2"
                            "--size"
                            "64"
                            "--seed"
                            "5"
                        ]

                    let code, out, err = BuildTests.yolospp args
                    Expect.equal code 0 err
                    Expect.stringContains out "generated 8 train + 2 val images of 64x64 px (seed 5)" "generated"
                    Expect.stringContains out "objects: " "per class"
                    Expect.stringContains out "circle " "class names"
                    Expect.stringContains out "sizes (COCO areas at 64 px): small " "per size"
                    Expect.stringContains out ("data: " + Path.Combine(dir, "shapes.data")) "where the .data file is"
                    let code2, out2, err2 = BuildTests.yolospp args
                    Expect.equal code2 0 err2
                    Expect.stringContains out2 "not regenerated" "reused")
            }
            test "a generated dataset passes yolospp check-data" {
                withTempDir (fun dir ->
                    let code, _, err =
                        BuildTests.yolospp
                            [
                                "shapes"
                                "--out"
                                dir
                                "--train"
                                "8"
                                "--val"
                                "4"
                                "--size"
                                "64"
                                "--seed"
                                "2"
                            ]

                    Expect.equal code 0 err

                    let code2, out2, err2 =
                        BuildTests.yolospp [ "check-data"; "--data"; Path.Combine(dir, "shapes.data") ]

                    Expect.equal code2 0 err2
                    Expect.stringContains out2 "found" "scan summary")
            }
            test "bad arguments are exit code 2 with a one-line reason" {
                for args, msg in
                    [
                        [ "--size"; "100" ], "--size 100 must be a multiple of 32 and at least 64"
                        [ "--size"; "32" ], "--size 32 must be a multiple of 32 and at least 64"
                        [ "--train"; "-5" ], "--train -5 must not be negative"
                        [ "--val"; "-1" ], "--val -1 must not be negative"
                    ] do
                    let code, _, err =
                        BuildTests.yolospp (
                            [ "shapes"; "--out"; Path.Combine(Path.GetTempPath(), "yolospp-never-written") ]
                            @ args
                        )

                    Expect.equal code 2 (String.Join(" ", args))
                    Expect.equal (err.Trim()) msg "message"

                Expect.isFalse (Directory.Exists(Path.Combine(Path.GetTempPath(), "yolospp-never-written"))) "nothing written"
                let code, _, _ = BuildTests.yolospp [ "shapes" ]
                Expect.equal code 2 "--out is required"
            }
        ]

let tests = testList "shapes" [ geometryTests; renderTests; folderTests; cliTests ]
