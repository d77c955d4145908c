/// Data pipeline: config and label parsing errors, the label scan and its cache, augmentation keeping boxes on
/// their pixels, rect shapes, determinism and the loader's epoch coverage (the dataset commands: DataCliTests).
module YoloSpp.Tests.Data.DataTests

open System
open System.IO
open Expecto
open YoloSpp.Data
open YoloSpp.Data.Labels
open YoloSpp.Tests
open YoloSpp.Tests.Data.DataFixtures

let labelTests =
    let bad =
        [
            "0 0.5 0.5 0.2", "expected 5 numbers (class cx cy w h), got 4 values"
            "0 0.5 0.5 0.2 0.2 0.1", "expected 5 numbers (class cx cy w h), got 6 values"
            "0 0.5 abc 0.2 0.2", "'abc' is not a number (column 3)"
            "0 nan 0.5 0.2 0.2", "'nan' is not a number (column 2)"
            "1.5 0.5 0.5 0.2 0.2", "class '1.5' is not an integer"
            "-1 0.5 0.5 0.2 0.2", "class -1 out of range [0, 3)"
            "3 0.5 0.5 0.2 0.2", "class 3 out of range [0, 3)"
            "0 1.2 0.5 0.2 0.2", "cx = 1.2 outside [0, 1]"
            "0 0.5 -0.1 0.2 0.2", "cy = -0.1 outside [0, 1]"
            "0 0.5 0.5 1.5 0.2", "w = 1.5 outside [0, 1]"
            "0 0.5 0.5 0 0.2", "w = 0 must be > 0"
            "0 0.5 0.5 0.2 0", "h = 0 must be > 0"
        ]

    testList
        "labels"
        [
            for text, reason in bad do
                yield
                    test (sprintf "'%s' is an error: %s" text reason) {
                        match parse "x.txt" 3 ("1 0.5 0.5 0.1 0.1\n" + text + "\n") with
                        | Error [ e ] -> Expect.equal (e.ToString()) ("x.txt:2: " + reason) "file:line: reason"
                        | other -> failtestf "expected one error, got %A" other
                    }
            yield
                test "duplicate rows are kept (as the reference trains on them) and reported by line; blank lines skipped" {
                    match parse "x.txt" 2 "0 0.5 0.5 0.2 0.2\n\n1 0.1 0.1 0.1 0.1\n0 0.5 0.5 0.2 0.2\n" with
                    | Ok p ->
                        Expect.equal p.Rows.Length 3 "every row, the duplicate included"
                        Expect.equal p.Rows[2] p.Rows[0] "the duplicate in its place"
                        Expect.equal p.DuplicateLines [ 4 ] "line 4 duplicates line 1"
                    | Error e -> failtestf "%A" e
                }
            yield
                test "duplicates are judged in float32, as np.unique on the reference's float32 labels" {
                    // 0.1 and 0.1 + 1e-9 are one float32; 0.1 and 0.1001 are not
                    match parse "x.txt" 1 "0 0.1 0.5 0.2 0.2\n0 0.100000001 0.5 0.2 0.2\n0 0.1001 0.5 0.2 0.2\n" with
                    | Ok p ->
                        Expect.equal p.Rows.Length 3 "all rows kept"
                        Expect.equal p.DuplicateLines [ 2 ] "only the float32-equal row"
                    | Error e -> failtestf "%A" e
                }
            yield test "an empty file has no objects" { Expect.equal (parse "x.txt" 2 "" |> Result.map (fun p -> p.Rows.Length)) (Ok 0) "no rows" }
            yield
                test "label path: the last images folder → labels, extension → .txt" {
                    Expect.equal (labelPathFor "/d/images/train/a.jpg") "/d/labels/train/a.txt" "segment"
                    Expect.equal (labelPathFor "/x/images/proj/images/train/a.jpg") "/x/images/proj/labels/train/a.txt" "only the last images folder"
                    Expect.equal (labelPathFor "/x/images/proj/train/a.jpg") "/x/labels/proj/train/a.txt" "the last one may be high up"
                    Expect.equal (labelPathFor @"C:\x\images\t\a.png") @"C:\x\labels\t\a.txt" "backslashes kept"
                    Expect.equal (labelPathFor "/d/train/a.jpg") "/d/train/a.txt" "no images folder: beside the image"
                    Expect.equal (labelPathFor "/d/myimages/a.JPG") "/d/myimages/a.txt" "not a segment: unchanged folder"
                    Expect.equal (labelPathFor "/d/images/images.png") "/d/labels/images.txt" "file named images kept"
                }
        ]

let configTests =
    let data text =
        DataConfig.parseData "/d/x.data" text |> Result.mapError (List.map string)

    testList
        "config"
        [
            test "a .data file resolves paths beside it and keeps other keys" {
                match data "# c\nclasses= 2\ntrain = t.txt\nvalid=/abs/v.txt\nnames=n.names\nbackup=backup/\n" with
                | Ok d ->
                    Expect.equal (d.Classes, d.Train, d.Valid, d.Names) (2, "/d/t.txt", "/abs/v.txt", "/d/n.names") "resolved"
                    Expect.equal (d.Others |> Map.toList) [ "backup", "backup/" ] "others"
                | Error e -> failtestf "%A" e
            }
            test "missing keys, bad numbers and lines without '=' name the file and line" {
                Expect.equal (data "classes=x\ntrain=t\nvalid=v\nnames=n\n") (Error [ "/d/x.data:1: classes = 'x' is not a positive integer" ]) "bad classes"
                Expect.equal (data "classes=2\ntrain=t\nvalid=v\n") (Error [ "/d/x.data: missing key 'names'" ]) "missing key"

                Expect.equal
                    (data "classes=2\ntrain t\nvalid=v\nnames=n\n")
                    (Error
                        [
                            "/d/x.data: missing key 'train'"
                            "/d/x.data:2: expected key=value, got 'train t'"
                        ])
                    "no '='"

                Expect.equal
                    (data "classes=2\nclasses=3\ntrain=t\nvalid=v\nnames=n\n")
                    (Error [ "/d/x.data:2: duplicate key 'classes' (first on line 1)" ])
                    "dup"
            }
            test "names: blank lines ignored, count must equal classes" {
                Expect.equal (DataConfig.parseNames "n" (Some 2) "a\n\nb\n") (Ok [| "a"; "b" |]) "two"

                Expect.equal
                    (DataConfig.parseNames "n" (Some 3) "a\nb\n" |> Result.mapError (List.map string))
                    (Error [ "n: 2 class names but the .data file says classes=3" ])
                    "mismatch"
            }
        ]

let geometryTests =
    testList
        "geometry"
        [
            test "rect shapes follow the reference: sorted by h/w, [maxi, 1] landscape, [1, 1/mini] portrait, else square" {
                let order, shapes =
                    Augment.rectShapes [| 64, 32; 48, 64; 60, 64; 64, 64 |] 2 512 0.0

                Expect.equal order [| 1; 2; 3; 0 |] "sorted by h/w: 0.75, 0.9375, 1, 2"
                // ceil(0.9375 * 512 / 32) * 32 = 480; the second batch spans ratio 1..2 → square
                Expect.equal shapes [| 480, 512; 512, 512 |] "shapes (h, w)"
                let _, portrait = Augment.rectShapes [| 96, 64; 64, 32 |] 2 512 0.0
                // 1/mini = 1/1.5: ceil(512 / 1.5 / 32) * 32 = 352
                Expect.equal portrait [| 512, 352 |] "portrait"
                let _, wide = Augment.rectShapes [| 10, 100 |] 1 416 0.0
                Expect.equal wide [| 64, 416 |] "ceil(0.1 * 13) * 32"
            }
            test "load_image size truncates like Python's int" {
                Expect.equal (Augment.loadSize 512 (480, 640)) ((384, 512), 0.8) "shrink"
                Expect.equal (Augment.loadSize 64 (48, 64)) ((48, 64), 1.0) "unchanged"
                Expect.equal (fst (Augment.loadSize 100 (33, 70))) (47, 100) "int(33 * 100/70) = 47"
            }
            test "the identity affine keeps boxes and needs no warp; the candidate rule drops thin boxes" {
                let m = Augment.affineMatrix Augment.identityDraw (100, 100) 0
                Expect.isFalse (Augment.needsWarp m 0) "identity"

                let b: Augment.PixelBox =
                    {
                        Class = 1
                        X1 = 10.0
                        Y1 = 20.0
                        X2 = 30.0
                        Y2 = 50.0
                    }

                Expect.equal (Augment.transformBoxes m 1.0 (100, 100) [| b |]) [| b |] "kept"
                let thin = { b with X2 = 13.0 }
                Expect.isEmpty (Augment.transformBoxes m 1.0 (100, 100) [| thin |]) "w <= 4 dropped"
            }
            test "COCO ground truth: absolute xywh, area w*h, ids from 1, 0-based categories that occur" {
                let img: CocoGroundTruth.SourceImage =
                    {
                        FileName = "a.jpg"
                        Height = 100
                        Width = 200
                        Rows =
                            [|
                                {
                                    Class = 2
                                    Cx = 0.5
                                    Cy = 0.5
                                    W = 0.1
                                    H = 0.2
                                }
                            |]
                    }

                let c =
                    CocoGroundTruth.convert
                        [| "a"; "b"; "c" |]
                        [|
                            img
                            { img with
                                FileName = "b.jpg"
                                Rows = [||]
                            }
                        |]

                Expect.equal c.Images.Length 2 "images"
                let a = c.Annotations[0]
                Expect.equal (a.Id, a.ImageId, a.CategoryId, a.IsCrowd) (1L, 0L, 2L, false) "ids"
                Expect.floatClose Accuracy.high a.Bbox.X 90.0 "x"
                Expect.floatClose Accuracy.high a.Bbox.W 20.0 "w"
                Expect.floatClose Accuracy.high a.Area 400.0 "area"
                Expect.equal c.Categories [| ({ Id = 2L; Name = "c" }: YoloSpp.Evaluation.CocoCategory) |] "categories seen"
            }
        ]

let scanTests =
    testList
        "scan"
        [
            test "summary counts, original sizes, and the cache is used until a label changes" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                let list = Path.Combine(dir, "list.txt")
                let r = LabelScan.Scan(list, 1)
                Expect.isEmpty r.Errors "no errors"
                Expect.stringContains r.Summary "3 images; found 2, missing 1, empty 0, duplicate 0" "summary"
                Expect.equal (r.Items[1].Width0, r.Items[1].Height0) (48, 64) "original size"
                Expect.isFalse r.FromCache "first scan"
                Expect.isTrue (LabelScan.Scan(list, 1).FromCache) "second scan from the cache"
                File.WriteAllText(Path.Combine(dir, "labels", "a.txt"), "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n")
                let r3 = LabelScan.Scan(list, 1)
                Expect.isFalse r3.FromCache "a changed label invalidates the cache"
                Expect.equal r3.Duplicate 1 "duplicate counted"
                Expect.equal r3.Items[0].Labels.Count 2 "and kept"
                Expect.stringContains r3.Summary "duplicate 1" "reported in the summary line"
                Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "no temp file left"
            }
            test "a missing image is an error naming list:line, a non-image line is skipped, a corrupt image is skipped naming it" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                File.WriteAllBytes(Path.Combine(dir, "images", "bad.jpg"), [| 0xFFuy; 0xD8uy; 1uy; 2uy; 3uy |])
                File.AppendAllLines(Path.Combine(dir, "list.txt"), [ "images/bad.jpg"; "images/none.png"; "notes.txt" ])
                let r = LabelScan.Scan(Path.Combine(dir, "list.txt"), 1)
                let list = Path.Combine(dir, "list.txt")

                Expect.equal r.Errors.Count 1 "one list error"
                Expect.stringStarts (string r.Errors[0]) (sprintf "%s:5: image not found: %s" list (Path.Combine(dir, "images", "none.png"))) "missing image"

                Expect.contains
                    r.Warnings
                    (sprintf "%s:6: 'notes.txt' has no image extension (%s), skipped" list (String.Join(" ", imageExtensions)))
                    "a non-image line is skipped, as the reference skips it"

                File.WriteAllLines(list, [ "images/a.png"; "images/bad.jpg" ])
                let r2 = LabelScan.Scan(list, 1)
                let bad = Path.Combine(dir, "images", "bad.jpg")
                // as yolov5's "ignoring corrupt image": left out of the set, with a warning naming it
                Expect.isEmpty r2.Errors "no error"
                Expect.equal r2.Items.Count 1 "the corrupt image is left out"
                Expect.equal r2.Skipped.Count 1 "one skipped"
                Expect.stringStarts (string r2.Skipped[0]) (bad + ": not a readable image") "named, with the reason"
                Expect.exists r2.Warnings (fun w -> w.StartsWith(bad + ": not a readable image") && w.EndsWith "skipped") "warned"
            }
            test "a list as calculate_dataset.py writes it: ./ paths from the working directory or beside the list's folder, sorted" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                // the reference's layout: <root>/data/my_train_data.txt naming ./my_yolo_dataset/train/images/...
                let root = Path.Combine(dir, "yolov3_spp")
                let set = Path.Combine(root, "my_yolo_dataset", "train")
                makeDataset set |> ignore
                let data = Directory.CreateDirectory(Path.Combine(root, "data")).FullName
                let list = Path.Combine(data, "my_train_data.txt")
                File.WriteAllText(list, "./my_yolo_dataset/train/images/c.png\n./my_yolo_dataset/train/images/a.png\n./my_yolo_dataset/train/images/b.png")

                let expected =
                    [ "a.png"; "b.png"; "c.png" ]
                    |> List.map (fun n -> Path.Combine(set, "images", n))
                // from another working directory: found beside the list's folder
                let r = LabelScan.Scan(list, 1, useCache = false)
                Expect.isEmpty r.Errors "loads"
                Expect.sequenceEqual (r.Items |> Seq.map (fun i -> i.ImagePath)) expected "sorted as the reference sorts img_files"
                // from the reference's working directory
                let cwd = Directory.GetCurrentDirectory()

                try
                    Directory.SetCurrentDirectory root
                    let r2 = LabelScan.Scan(list, 1, useCache = false)
                    Expect.isEmpty r2.Errors "loads from the working directory"
                    Expect.sequenceEqual (r2.Items |> Seq.map (fun i -> i.ImagePath)) expected "same images"
                finally
                    Directory.SetCurrentDirectory cwd
            }
            test "EXIF orientation 6: the decoded pixels, the sizes, the rect shapes and the COCO sizes are cv2.imread's" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                // 40×24 stored, tagged "rotate 90° clockwise": cv2.imread gives 24 wide, 40 high
                let jpg = Path.Combine(TestUtil.repoGoldenDir, "image_decode_orientation_6.jpg")
                let images = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName
                let labels = Directory.CreateDirectory(Path.Combine(dir, "labels")).FullName
                File.Copy(jpg, Path.Combine(images, "r.jpg"))
                File.WriteAllText(Path.Combine(labels, "r.txt"), "0 0.5 0.5 0.5 0.5\n")
                File.WriteAllText(Path.Combine(dir, "list.txt"), "images/r.jpg\n")
                let img = RgbImage.Load(Path.Combine(images, "r.jpg"))
                Expect.equal (img.Width, img.Height) (24, 40) "decoded upright"
                // the stored top-left quadrant (red, with a white marker) is now the top-right one
                let px x y =
                    img.Pixels[(y * img.Width + x) * 3 .. (y * img.Width + x) * 3 + 2]

                Expect.isTrue ((px 19 4)[0] > 200uy && (px 19 4)[1] > 200uy) "the marker at the top right"
                Expect.isTrue ((px 4 4)[2] > 200uy && (px 4 4)[0] < 60uy) "blue (stored bottom-left) at the top left"
                let r = LabelScan.Scan(Path.Combine(dir, "list.txt"), 1, useCache = false)
                Expect.equal (r.Items[0].Width0, r.Items[0].Height0) (24, 40) "scanned size (COCO image size, rect shapes)"

                let ds =
                    YoloDataset.Open(Path.Combine(dir, "list.txt"), 1, DataOptions(ImageSize = 160, BatchSize = 1, Rect = true))

                let sample = ds.GetItem 0
                // the reference's rect shape of a 24×40 (w×h) image at 160: [1, 0.6] · 160 / 32 → 160 high, 96 wide
                Expect.equal (sample.Image.Width, sample.Image.Height) (96, 160) "rect batch shape of the upright image"
                Expect.equal (sample.Shape.Value.Width0, sample.Shape.Value.Height0) (24, 40) "shape for scale_coords"
            }
            test "a relative path is looked up beside the list first" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                // the same relative path exists beside the list's folder too: the list's own folder wins
                let sub = Path.Combine(dir, "sub")
                makeDataset sub |> ignore
                let r = LabelScan.Scan(Path.Combine(sub, "list.txt"), 1, useCache = false)
                Expect.isEmpty r.Errors "loads"
                Expect.equal r.Items[0].ImagePath (Path.Combine(sub, "images", "a.png")) "beside the list"
            }
        ]

let tests =
    testList
        "data"
        [
            labelTests
            configTests
            geometryTests
            scanTests
            LoaderTests.augmentTests
            LoaderTests.hsvTests
            LoaderTests.loaderTests
            DataCliTests.tests
        ]
