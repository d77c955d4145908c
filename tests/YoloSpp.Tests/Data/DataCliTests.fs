/// The runner's dataset commands: anchors, check-data, voc2yolo and dataset-cfg, with their errors.
module YoloSpp.Tests.Data.DataCliTests

open System
open System.IO
open Expecto
open YoloSpp.Data
open YoloSpp.Tests
open YoloSpp.Tests.Data.DataFixtures

let private yolospp = BuildTests.yolospp

let private tinyCfg =
    """[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=255
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,13,  16,30,  33,23
classes=80
num=3
"""

let private vocXml (objects: (string * int * (int * int * int * int)) list) =
    let objs =
        objects
        |> List.map (fun (n, d, (x1, y1, x2, y2)) ->
            sprintf
                "<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox></object>"
                n
                d
                x1
                y1
                x2
                y2)

    sprintf "<annotation>\n<size><width>64</width><height>48</height><depth>3</depth></size>\n%s\n</annotation>" (String.concat "\n" objs)

let tests =
    testList
        "cli"
        [
            test "anchors: the reference's report and a cfg line; too few boxes is an error naming the list" {
                let dir, cleanup = tempDir ()
                use _ = cleanup

                let s =
                    ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "s"), Train = 20, Val = 1, Size = 96, Seed = 1))

                let code, out, err =
                    yolospp [ "anchors"; "--data"; s.DataFile; "--gen"; "50"; "--img-size"; "96"; "96" ]

                Expect.equal code 0 err
                let lines = out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                Expect.stringStarts lines[0] "Running kmeans for 9 anchors on " "k-means line"
                Expect.exists lines (fun l -> l.StartsWith "0.20 iou_thr: ") "fitness report"
                let last = lines[lines.Length - 1]
                Expect.stringStarts last "anchors = " "cfg line"
                Expect.equal (last.Substring(10).Split(",  ").Length) 9 "nine w,h pairs"
                let code2, _, err2 = yolospp [ "anchors"; "--data"; s.DataFile; "--n"; "5000" ]
                Expect.equal code2 2 "bad input"
                Expect.stringContains err2 "cannot make 5000 anchors" "says why"
                Expect.stringContains err2 "train.txt" "names the list"
            }
            test "check-data: a good set prints the summaries and exits 0" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let data = makeDataset dir
                let code, out, err = yolospp [ "check-data"; "--data"; data ]
                Expect.equal code 0 err
                Expect.stringContains out "train: " "train line"
                Expect.stringContains out "3 images; found 2, missing 1, empty 0, duplicate 0" "summary"
            }
            test "plot-labels draws the first images with their labels and the label statistics; bad options exit 2" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let data = makeDataset dir
                let out = Path.Combine(dir, "pl")

                let code, stdout, err =
                    yolospp [ "plot-labels"; "--data"; data; "--out"; out; "--n"; "3"; "--img-size"; "64" ]

                Expect.equal code 0 err
                let sample = RgbImage.Load(Path.Combine(out, "labels_sample.jpg"))
                Expect.equal (sample.Width, sample.Height) (128, 128) "3 tiles of 64 in a 2 x 2 grid"
                let stats = RgbImage.Load(Path.Combine(out, "labels.png"))
                Expect.equal (stats.Width, stats.Height) (1560, 480) "three panels"
                Expect.stringContains stdout "labels.png" "names what it wrote"

                for args, fragment in
                    [
                        [ "--n"; "0" ], "--n 0"
                        [ "--split"; "test" ], "--split test"
                        [ "--img-size"; "100" ], "--img-size"
                    ] do
                    let code, _, err = yolospp ([ "plot-labels"; "--data"; data; "--out"; out ] @ args)
                    Expect.equal code 2 (sprintf "%A exits 2" args)
                    Expect.stringContains err fragment "names the option"
            }
            test "check-data: each kind of bad row, bad image and bad .data entry exits 2 naming it" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let data = makeDataset dir
                let label = Path.Combine(dir, "labels", "a.txt")

                let cases =
                    [
                        "0 0.5 0.5 0.2", "a.txt:1: expected 5 numbers"
                        "0 0.5 x 0.2 0.2", "a.txt:1: 'x' is not a number"
                        "0.5 0.5 0.5 0.2 0.2", "a.txt:1: class '0.5' is not an integer"
                        "1 0.5 0.5 0.2 0.2", "a.txt:1: class 1 out of range [0, 1)"
                        "0 0.5 1.5 0.2 0.2", "a.txt:1: cy = 1.5 outside [0, 1]"
                        "0 0.5 0.5 0.2 -0.2", "a.txt:1: h = -0.2 outside [0, 1]"
                        "0 0.5 0.5 0 0.2", "a.txt:1: w = 0 must be > 0"
                    ]

                for row, expected in cases do
                    File.WriteAllText(label, row + "\n")
                    let code, _, err = yolospp [ "check-data"; "--data"; data ]
                    Expect.equal code 2 (sprintf "exit 2 for '%s'" row)
                    Expect.stringContains err expected row

                File.WriteAllText(label, "0 0.5 0.5 0.2 0.2\n")
                File.WriteAllText(Path.Combine(dir, "images", "c.png"), "not a png")
                let code, _, err = yolospp [ "check-data"; "--data"; data ]
                Expect.equal code 2 "corrupt image"
                Expect.stringContains err "c.png: not a readable image" "names the image"

                let badData =
                    [
                        "classes=2\ntrain=list.txt\nvalid=list.txt\nnames=shapes.names\n", "shapes.names: 1 class names but the .data file says classes=2"
                        "classes=1\ntrain=list.txt\nnames=shapes.names\n", "bad.data: missing key 'valid'"
                        "classes=one\ntrain=list.txt\nvalid=list.txt\nnames=shapes.names\n", "bad.data:1: classes = 'one' is not a positive integer"
                        "classes=1\ntrain=nolist.txt\nvalid=list.txt\nnames=shapes.names\n", "bad.data: train list not found"
                        "classes=1\ntrain=list.txt\nvalid=list.txt\nnames=none.names\n", "bad.data: names file not found"
                    ]

                for text, expected in badData do
                    let f = Path.Combine(dir, "bad.data")
                    File.WriteAllText(f, text)
                    let code, _, err = yolospp [ "check-data"; "--data"; f ]
                    Expect.equal code 2 expected
                    Expect.stringContains err expected expected

                let code, _, err =
                    yolospp [ "check-data"; "--data"; Path.Combine(dir, "missing.data") ]

                Expect.equal code 2 "missing .data"
                Expect.stringContains err "missing.data: no such file" "names it"
            }
            test "voc2yolo converts two XML files (difficult kept unless asked), dataset-cfg writes .data and cfg" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let voc = Path.Combine(dir, "VOC2012")

                for sub in [ "Annotations"; "JPEGImages"; "ImageSets/Main" ] do
                    Directory.CreateDirectory(Path.Combine(voc, sub)) |> ignore

                File.WriteAllText(Path.Combine(voc, "Annotations", "001.xml"), vocXml [ "cat", 0, (8, 8, 40, 32); "dog", 1, (0, 0, 16, 16) ])
                File.WriteAllText(Path.Combine(voc, "Annotations", "002.xml"), vocXml [ "dog", 0, (32, 12, 64, 48) ])

                for id in [ "001"; "002" ] do
                    redBoxImage (Path.Combine(voc, "JPEGImages", id + ".jpg")) 64 48 (0, 0, 1, 1)

                File.WriteAllText(Path.Combine(voc, "ImageSets", "Main", "train.txt"), "001\n")
                File.WriteAllText(Path.Combine(voc, "ImageSets", "Main", "val.txt"), "002\n")
                let classes = Path.Combine(dir, "classes.json")
                File.WriteAllText(classes, """{"cat": 1, "dog": 2}""")
                let out = Path.Combine(dir, "yolo")

                let code, stdout, err =
                    yolospp [ "voc2yolo"; "--voc-root"; voc; "--classes"; classes; "--output"; out ]

                Expect.equal code 0 err
                Expect.stringContains stdout "train: 1 images, 2 objects" "summary"

                Expect.equal
                    (File.ReadAllText(Path.Combine(out, "train", "labels", "001.txt")))
                    "0 0.375 0.416667 0.5 0.5\n1 0.125 0.166667 0.25 0.333333"
                    "rows"

                Expect.equal (File.ReadAllText(Path.Combine(out, "val", "labels", "002.txt"))) "1 0.75 0.625 0.5 0.75" "val rows"
                Expect.equal (File.ReadAllLines(Path.Combine(out, "train.txt"))) [| "train/images/001.jpg" |] "list"
                let out2 = Path.Combine(dir, "yolo2")

                let code, _, _ =
                    yolospp
                        [
                            "voc2yolo"
                            "--voc-root"
                            voc
                            "--classes"
                            classes
                            "--output"
                            out2
                            "--skip-difficult"
                        ]

                Expect.equal code 0 "skip difficult"
                Expect.equal (File.ReadAllText(Path.Combine(out2, "train", "labels", "001.txt"))) "0 0.375 0.416667 0.5 0.5" "difficult dog dropped"
                // dataset-cfg over voc2yolo's output
                let cfg = Path.Combine(dir, "tiny.cfg")
                File.WriteAllText(cfg, tinyCfg)
                let cfgOut = Path.Combine(dir, "cfgout")

                let code, _, err =
                    yolospp
                        [
                            "dataset-cfg"
                            "--root"
                            out
                            "--names"
                            Path.Combine(out, "classes.names")
                            "--cfg"
                            cfg
                            "--output"
                            cfgOut
                        ]

                Expect.equal code 0 err

                Expect.equal
                    (File.ReadAllText(Path.Combine(cfgOut, "my_data.data")))
                    "classes=2\ntrain=my_train_data.txt\nvalid=my_val_data.txt\nnames=my_data_label.names\n"
                    ".data"

                let written = File.ReadAllText(Path.Combine(cfgOut, "my_yolov3.cfg"))
                Expect.stringContains written "classes=2" "yolo classes"
                Expect.stringContains written "filters=21" "head filters 3 * (2 + 5)"

                let code, out3, err =
                    yolospp [ "check-data"; "--data"; Path.Combine(cfgOut, "my_data.data") ]

                Expect.equal code 0 (out3 + err)
            }
            test "voc2yolo: an unknown class and a bad number exit 2 with file:line" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let voc = Path.Combine(dir, "VOC")

                for sub in [ "Annotations"; "JPEGImages"; "ImageSets/Main" ] do
                    Directory.CreateDirectory(Path.Combine(voc, sub)) |> ignore

                File.WriteAllText(Path.Combine(voc, "Annotations", "001.xml"), vocXml [ "cow", 0, (8, 8, 40, 32) ])
                File.WriteAllText(Path.Combine(voc, "Annotations", "002.xml"), (vocXml [ "cat", 0, (8, 8, 40, 32) ]).Replace("<xmax>40", "<xmax>4o"))

                for id in [ "001"; "002" ] do
                    redBoxImage (Path.Combine(voc, "JPEGImages", id + ".jpg")) 64 48 (0, 0, 1, 1)

                File.WriteAllText(Path.Combine(voc, "ImageSets", "Main", "train.txt"), "001\n002\n")
                File.WriteAllText(Path.Combine(voc, "ImageSets", "Main", "val.txt"), "")
                let names = Path.Combine(dir, "c.names")
                File.WriteAllText(names, "cat\ndog\n")

                let code, _, err =
                    yolospp
                        [
                            "voc2yolo"
                            "--voc-root"
                            voc
                            "--classes"
                            names
                            "--output"
                            Path.Combine(dir, "o")
                        ]

                Expect.equal code 2 "bad input"
                Expect.stringContains err "001.xml:3: class 'cow' is not in the class table" "unknown class"
                Expect.stringContains err "002.xml:3: <xmax> '4o' is not a number" "bad number"
                Expect.isFalse (Directory.Exists(Path.Combine(dir, "o"))) "nothing written"
            }
        ]
