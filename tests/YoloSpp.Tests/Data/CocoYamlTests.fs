/// Datasets in: COCO instances json (coco2yolo, yolo2coco and their round trip) and Ultralytics data.yaml files.
module YoloSpp.Tests.Data.CocoYamlTests

open System
open System.IO
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests
open YoloSpp.Tests.Data.DataFixtures

/// Label rows of a file, parsed: (class, cx, cy, w, h).
let private rows (path: string) =
    File.ReadAllLines path
    |> Array.filter (fun l -> l.Trim() <> "")
    |> Array.map (fun l ->
        let p = l.Split ' '
        int p[0], Array.map (fun (s: string) -> Double.Parse(s, Globalization.CultureInfo.InvariantCulture)) p[1..])

let private expectRowsClose (actual: (int * float[])[]) (expected: (int * float[])[]) (what: string) =
    Expect.equal actual.Length expected.Length (what + ": row count")

    for (ca, va), (ce, ve) in Array.zip actual expected do
        Expect.equal ca ce (what + ": class")

        for a, e in Array.zip va ve do
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } a e (sprintf "%s: %A vs %A" what va ve)

/// A COCO instances file with the structure of the real one: crowd regions with RLE, polygons, areas, category ids
/// with gaps, an image without annotations, a box over the edge, a repeated box and one without area.
let private realCoco =
    """{
  "info": {"description": "COCO-like", "year": 2017},
  "licenses": [{"id": 1, "name": "x", "url": "y"}],
  "images": [
    {"id": 139, "license": 1, "file_name": "000000000139.jpg", "width": 64, "height": 48, "date_captured": "2013"},
    {"id": 285, "file_name": "000000000285.jpg", "width": 40, "height": 80},
    {"id": 632, "file_name": "000000000632.jpg", "width": 50, "height": 50}
  ],
  "annotations": [
    {"id": 1, "image_id": 139, "category_id": 7, "bbox": [8, 4, 16, 12], "area": 150.5, "iscrowd": 0,
     "segmentation": [[8, 4, 24, 4, 24, 16, 8, 16]]},
    {"id": 2, "image_id": 139, "category_id": 1, "bbox": [0, 0, 64, 48], "area": 3072, "iscrowd": 1,
     "segmentation": {"counts": [0, 10, 20], "size": [48, 64]}},
    {"id": 3, "image_id": 285, "category_id": 3, "bbox": [30, 60, 20, 30], "area": 600, "iscrowd": 0,
     "segmentation": [[30, 60, 50, 60, 50, 90]]},
    {"id": 4, "image_id": 285, "category_id": 1, "bbox": [4, 8, 8, 16], "area": 128, "iscrowd": 0, "segmentation": []},
    {"id": 5, "image_id": 285, "category_id": 1, "bbox": [4, 8, 8, 16], "area": 128, "iscrowd": 0, "segmentation": []},
    {"id": 6, "image_id": 139, "category_id": 3, "bbox": [10, 10, 0, 5], "area": 0, "iscrowd": 0, "segmentation": []}
  ],
  "categories": [
    {"supercategory": "a", "id": 7, "name": "seven"},
    {"supercategory": "a", "id": 1, "name": "one"},
    {"supercategory": "b", "id": 3, "name": "three"}
  ]
}"""

let private writeCocoImages (dir: string) =
    for name, w, h in
        [
            "000000000139.jpg", 64, 48
            "000000000285.jpg", 40, 80
            "000000000632.jpg", 50, 50
        ] do
        redBoxImage (Path.Combine(dir, name)) w h (1, 1, 5, 5)

let private cocoTests =
    testList
        "coco2yolo"
        [
            test "a COCO file of the real structure converts: ids in order, crowd skipped, polygons and RLE ignored" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let ann = Directory.CreateDirectory(Path.Combine(dir, "annotations")).FullName
                let json = Path.Combine(ann, "instances_val2017.json")
                File.WriteAllText(json, realCoco)
                writeCocoImages (Path.Combine(dir, "val2017"))
                let out = Path.Combine(dir, "yolo")

                let code, stdout, err =
                    yolospp [ "coco2yolo"; "--json"; json; "--output"; out; "--val-fraction"; "0" ]

                Expect.equal code 0 err
                Expect.stringContains stdout "1 crowd annotations skipped" "crowd counted"
                Expect.stringContains stdout "1 boxes without area skipped" "no-area box counted"
                Expect.stringContains stdout "1 repeated boxes dropped" "repeat counted"
                Expect.stringContains stdout "1 boxes clipped to their image" "clipped counted"
                // categories 1, 3, 7 -> classes 0, 1, 2 in id order
                Expect.equal (File.ReadAllLines(Path.Combine(out, "classes.names"))) [| "one"; "three"; "seven" |] "names in id order"
                let labels = Path.Combine(out, "labels", "train")

                expectRowsClose
                    (rows (Path.Combine(labels, "000000000139.txt")))
                    [| 2, [| 16.0 / 64.0; 10.0 / 48.0; 16.0 / 64.0; 12.0 / 48.0 |] |]
                    "139: category 7 is class 2"

                // the box [30, 60, 20, 30] on a 40x80 image reaches (50, 90): clipped to [30, 40] x [60, 80]
                expectRowsClose
                    (rows (Path.Combine(labels, "000000000285.txt")))
                    [|
                        1, [| 35.0 / 40.0; 70.0 / 80.0; 10.0 / 40.0; 20.0 / 80.0 |]
                        0, [| 8.0 / 40.0; 16.0 / 80.0; 8.0 / 40.0; 16.0 / 80.0 |]
                    |]
                    "285"

                Expect.equal (File.ReadAllText(Path.Combine(labels, "000000000632.txt"))) "" "an image without annotations: an empty label file"

                Expect.equal
                    (File.ReadAllLines(Path.Combine(out, "train.txt")))
                    [|
                        "images/train/000000000139.jpg"
                        "images/train/000000000285.jpg"
                        "images/train/000000000632.jpg"
                    |]
                    "list"

                let code, stdout, err =
                    yolospp [ "check-data"; "--data"; Path.Combine(out, DatasetTools.CocoDataFile) ]

                Expect.equal code 0 (stdout + err)
                // a second conversion into the same folder is refused: nothing is replaced
                let code, _, err = yolospp [ "coco2yolo"; "--json"; json; "--output"; out ]
                Expect.equal code 2 err
                Expect.stringContains err "exists and is not empty" "refused"
            }
            test "a broken COCO json names the file and the JSON path of the fault; nothing is written" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                writeCocoImages dir
                let json = Path.Combine(dir, "instances_x.json")
                let out = Path.Combine(dir, "yolo")

                for text, expected in
                    [
                        realCoco.Replace("\"bbox\": [30, 60, 20, 30]", "\"bbox\": [30, 60, 20]"),
                        "$.annotations[2].bbox: expected 4 numbers [x, y, w, h], got 3"
                        realCoco.Replace("\"image_id\": 285, \"category_id\": 3", "\"image_id\": 286, \"category_id\": 3"),
                        "$.annotations[2].image_id: no image has id 286"
                        realCoco.Replace("\"id\": 632, \"file_name\": \"000000000632.jpg\", ", "\"id\": 632, "), "$.images[2]: missing field 'file_name'"
                        realCoco.Replace("\"id\": 3, \"name\": \"three\"", "\"id\": 7, \"name\": \"three\""), "$.categories[2].id: duplicate id 7"
                        realCoco.Replace("\"images\": [", "\"images\": [,"), "not JSON"
                        realCoco.Replace("000000000632.jpg", "missing.jpg"), "$.images[2].file_name: image not found"
                    ] do
                    File.WriteAllText(json, text)
                    let code, _, err = yolospp [ "coco2yolo"; "--json"; json; "--output"; out ]
                    Expect.equal code 2 (expected + ": " + err)
                    Expect.stringContains err json (expected + ": names the file")
                    Expect.stringContains err expected expected
                    Expect.isFalse (Directory.Exists out) (expected + ": nothing written")
            }
            test "round trip: a YOLO dataset -> yolo2coco -> coco2yolo gives the same labels (1e-6) and lists" {
                let dir, cleanup = tempDir ()
                use _ = cleanup

                let s =
                    ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "shapes"), Train = 6, Val = 4, Size = 96, Seed = 5, EmptyFraction = 0.2))

                let coco = Directory.CreateDirectory(Path.Combine(dir, "coco")).FullName

                for split, name in [ "train", "instances_train.json"; "valid", "instances_val.json" ] do
                    let code, _, err =
                        yolospp
                            [
                                "yolo2coco"
                                "--data"
                                s.DataFile
                                "--split"
                                split
                                "--output"
                                Path.Combine(coco, name)
                            ]

                    Expect.equal code 0 err

                let code, _, err =
                    yolospp
                        [
                            "yolo2coco"
                            "--data"
                            s.DataFile
                            "--output"
                            Path.Combine(coco, "instances_val.json")
                        ]

                Expect.equal code 2 "an existing json is not replaced"
                Expect.stringContains err "exists" err
                let out = Path.Combine(dir, "back")

                let code, stdout, err =
                    yolospp
                        [
                            "coco2yolo"
                            "--json"
                            Path.Combine(coco, "instances_train.json")
                            "--json"
                            Path.Combine(coco, "instances_val.json")
                            "--output"
                            out
                        ]

                Expect.equal code 0 (stdout + err)
                let original = DataFiles.Load s.DataFile
                let converted = DataFiles.Load(Path.Combine(out, DatasetTools.CocoDataFile))
                Expect.sequenceEqual converted.Names original.Names "class names"

                for a, b in [ original.Train, converted.Train; original.Valid, converted.Valid ] do
                    let scanA = DatasetTools.ScanLabels(a, original.Classes, false)
                    let scanB = DatasetTools.ScanLabels(b, converted.Classes, false)

                    let names (scan: ScanResult) =
                        scan.Items |> Seq.map (fun i -> Path.GetFileName i.ImagePath) |> Seq.toArray

                    Expect.sequenceEqual (names scanB) (names scanA) "the same images in the same order"

                    for ia, ib in Seq.zip scanA.Items scanB.Items do
                        let r (i: DatasetItem) =
                            i.Labels
                            |> Seq.map (fun l -> l.Class, [| l.Cx; l.Cy; l.W; l.H |])
                            |> Seq.toArray

                        expectRowsClose (r ib) (r ia) (Path.GetFileName ia.ImagePath)
            }
        ]

/// coco128's layout: datasets/coco128/images/train2017 with labels/train2017 beside, the yaml elsewhere.
let private coco128 (dir: string) =
    let root = Path.Combine(dir, "datasets", "coco128")

    for i, (w, h) in List.indexed [ 64, 48; 48, 64; 64, 64 ] do
        let image = Path.Combine(root, "images", "train2017", sprintf "%012d.jpg" i)
        redBoxImage image w h (4, 4, 20, 20)
        let label = Path.Combine(root, "labels", "train2017", sprintf "%012d.txt" i)
        Directory.CreateDirectory(Path.GetDirectoryName label) |> ignore
        File.WriteAllText(label, sprintf "%d%s\n" (i % 2) ((rowOf w h (4, 4, 20, 20)).Substring 1))

    root

let private yamlTests =
    testList
        "data.yaml"
        [
            test "a data.yaml in coco128.yaml's layout loads, checks and lists its names (dict or list)" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let _ = coco128 dir
                let yolo = Directory.CreateDirectory(Path.Combine(dir, "yolov5", "data")).FullName
                let yaml = Path.Combine(yolo, "coco128.yaml")

                File.WriteAllText(
                    yaml,
                    "# COCO128\npath: ../../datasets/coco128 # dataset root dir\ntrain: images/train2017 # 128 images\nval: images/train2017\ntest: # optional\n\n# Classes\nnames:\n  0: person\n  1: bicycle\n\ndownload: https://example.invalid/coco128.zip\n"
                )

                let d = DataFiles.Load yaml
                Expect.sequenceEqual d.Names [ "person"; "bicycle" ] "names from the mapping"
                Expect.equal d.Classes 2 "nc from the names"
                Expect.equal d.Train (Path.Combine(dir, "datasets", "coco128", "images", "train2017")) "train resolved against path"
                let code, stdout, err = yolospp [ "check-data"; "--data"; yaml ]
                Expect.equal code 0 (stdout + err)
                Expect.stringContains stdout "3 images; found 3" stdout
                // the list form of names and nc
                File.WriteAllText(yaml, "path: ../../datasets/coco128\ntrain: images/train2017\nval: images/train2017\nnc: 2\nnames: ['person', 'bicycle']\n")
                Expect.sequenceEqual (DataFiles.Load yaml).Names [ "person"; "bicycle" ] "names from the list"
            }
            test "a yaml split of several sources is read as one list; Roboflow's ../train/images works" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let root = coco128 dir
                // a second source: a list file of one image, relative './' entries as yolov5 writes them
                let extra = Path.Combine(root, "extra.txt")
                File.WriteAllText(extra, "./images/train2017/000000000001.jpg\n")
                let yaml = Path.Combine(root, "data.yaml")
                File.WriteAllText(yaml, "train: [images/train2017, extra.txt]\nval: ../images/train2017\nnames: [a, b]\n")
                let d = DataFiles.Load yaml
                Expect.equal d.Valid (Path.Combine(root, "images", "train2017")) "'../' dropped when the path does not exist"
                let scan = DatasetTools.ScanLabels(d.Train, 2, false)
                Expect.equal scan.Items.Count 3 "the union, each image once"
                Expect.isEmpty scan.Errors "no errors"
            }
            test "bad data.yaml files: each problem names the file and the line" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let root = coco128 dir
                let yaml = Path.Combine(root, "bad.yaml")

                for text, expected in
                    [
                        "train: images/train2017\nval: images/val2017\nnames: [a, b]\n", "bad.yaml:2: val: not found"
                        "train: images/train2017\nnames: [a, b]\n", "bad.yaml: missing key 'val'"
                        "train: images/train2017\nval: images/train2017\nnc: 3\nnames: [a, b]\n", "bad.yaml:3: nc: 3 but 'names' has 2 classes"
                        "train: images/train2017\nval: images/train2017\nnames:\n  0: a\n  2: b\n", "bad.yaml:3: names: the indices must be 0..1"
                        "train: images/train2017\nval: images/train2017\n", "bad.yaml: missing key 'names'"
                        "train: [images/train2017\nval: x\n", "bad.yaml:"
                    ] do
                    File.WriteAllText(yaml, text)
                    let code, _, err = yolospp [ "check-data"; "--data"; yaml ]
                    Expect.equal code 2 (expected + ": " + err)
                    Expect.stringContains err expected expected
                    Expect.isFalse (err.Contains "   at ") "no stack trace"
            }
        ]

let tests = testList "datasets in" [ cocoTests; yamlTests ]
