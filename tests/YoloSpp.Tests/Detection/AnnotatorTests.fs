/// Drawing detections: line width and font that follow the image's size (ultralytics' Annotator), labels inside the
/// picture, and only the boxes above the draw threshold.
module YoloSpp.Tests.Detection.AnnotatorTests

open System
open System.IO
open Expecto
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Tests
open TorchSharp

/// A plain grey picture.
let private grey (w: int) (h: int) =
    RgbImage(w, h, Array.create (w * h * 3) 128uy)

let private pixel (img: RgbImage) (x: int) (y: int) =
    let i = (y * img.Width + x) * 3
    img.Pixels[i], img.Pixels[i + 1], img.Pixels[i + 2]

/// The pixels among xs × ys that have class `cls`'s colour exactly.
let private inColour (img: RgbImage) (cls: int) (xs: int seq) (ys: int seq) =
    let struct (r, g, b) = Annotator.ClassColor cls

    [
        for x in xs do
            for y in ys do
                if pixel img x y = (r, g, b) then
                    (x, y)
    ]

let tests =
    testList
        "annotator"
        [
            test "line width max(round((h + w) / 2 * 0.003), 2) and font max(round((h + w) / 2 * 0.035), 12), as ultralytics' Annotator" {
                for (w, h), lw, font in
                    [
                        (160, 160), 2, 12f
                        (640, 480), 2, 20f
                        (1280, 720), 3, 35f
                        (1920, 1080), 4, 53f // 1500 * 0.003 is 4.5 (to even: 4), 1500 * 0.035 is 52.50000000000001: as Python's round
                        (3840, 2160), 9, 105f
                    ] do
                    Expect.equal (Annotator.LineWidth(w, h)) lw (sprintf "line width at %dx%d" w h)
                    Expect.equal (Annotator.FontSize(w, h)) font (sprintf "font at %dx%d" w h)
            }
            test "labels stay inside the image: above the box when there is room, else inside it, moved left at the right edge" {
                let above = Annotator.LabelRect(20.0, 50.0, 40f, 14f, 160, 160)
                Expect.equal (above.Left, above.Top, above.Bottom) (20f, 36f, 50f) "above the box"
                let top = Annotator.LabelRect(20.0, 5.0, 40f, 14f, 160, 160)
                Expect.equal (top.Left, top.Top) (20f, 5f) "no room above: inside the box's top edge"
                let right = Annotator.LabelRect(150.0, 50.0, 40f, 14f, 160, 160)
                Expect.equal (right.Left, right.Right) (120f, 160f) "moved left to end at the image's edge"
                let corner = Annotator.LabelRect(150.0, 155.0, 40f, 14f, 160, 160)
                Expect.equal (corner.Right, corner.Bottom) (160f, 155f) "bottom-right: above the box, inside the image"
                let wide = Annotator.LabelRect(0.0, 0.0, 400f, 14f, 160, 160)
                Expect.equal (wide.Left, wide.Right) (0f, 160f) "wider than the image: clipped to it"
            }
            test "a box at the right edge gets its whole label drawn in the picture, with a 2-pixel outline at 160x160" {
                let image = grey 160 160
                let d = Detection(4, "ring", 0.87, 140.0, 60.0, 159.0, 100.0)
                let drawn = Annotator.Draw(image, [| d |])
                let coloured = inColour drawn 4

                // the label's tab, above the box: from the image's last column leftwards, far enough for its text
                Expect.isNonEmpty (coloured [ 159 ] [ 30..59 ]) "the label reaches the right edge"
                Expect.isNonEmpty (coloured [ 110 ] [ 30..59 ]) "and starts well left of the box, so that its text fits"
                Expect.isEmpty (coloured [ 0..100 ] [ 0..159 ]) "nothing drawn far left of the box"
                // the outline: 2 pixels of the class colour across the box's left edge (max(round(160 * 0.003), 2))
                Expect.equal (coloured [ 130..145 ] [ 80 ]).Length 2 "a 2-pixel outline"
            }
            test "Detector.Annotate draws only the detections above DrawThreshold" {
                let dir = TestUtil.fixtureDir "yolospp-annotate-"
                let cfg = Path.Combine(dir, "tiny5.cfg")
                YoloSpp.Model.ModelCfg.WriteWithClasses(TestUtil.goldenFile "tiny-spp.cfg", cfg, 5)

                let data =
                    ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "data"), Train = 4, Val = 2, Size = 64, Seed = 8))

                // a random network scores many boxes a little: the threshold decides what is drawn
                use m = new YoloSpp.Model.DarkNet(YoloSpp.Model.ModelCfg.Load cfg)
                let weights = Path.Combine(dir, "random.safetensors")
                YoloSpp.Model.ModelWeights.Save(m, weights)
                let names = Path.Combine(data.Directory, "shapes.names")
                let image = Path.Combine(data.Directory, "images", "val", "000000.jpg")

                for threshold in [ 0.0; 0.2; 0.9 ] do
                    use detector =
                        Detector.Load(cfg, weights, names, DetectorOptions(ImageSize = Nullable 64, ConfThreshold = 0.0001, DrawThreshold = threshold))

                    let all = detector.Detect image

                    let drawn =
                        detector.Annotate(image, Path.Combine(dir, sprintf "drawn-%g.png" threshold))

                    let above = all |> Seq.filter (fun d -> d.Confidence > threshold) |> Seq.toList
                    Expect.sequenceEqual drawn above (sprintf "drawn at %g: those above it" threshold)

                    if threshold = 0.0 then
                        Expect.isNonEmpty drawn "some boxes at 0"
            }
            test "BatchPlot: a batch of two 48x40 images side by side, the label box in its class colour on the second, pixels as the loader's" {
                let dir = TestUtil.fixtureDir "yolospp-batchplot-"
                // [n, 3, h, w] in [0, 1]: grey 0.5, which the plot writes as 128 (round(127.5), as yolov5's * 255)
                use images = torch.ones ([| 2L; 3L; 40L; 48L |])
                images.mul_ (torch.tensor 0.5f) |> ignore
                // image 1, class 2: centre (24, 20), 24 x 20 pixels, so x 12..36 and y 10..30 in its tile
                use targets =
                    torch.tensor([| 1.0f; 2.0f; 0.5f; 0.5f; 0.5f; 0.5f |]).reshape (1L, 6L)

                let out = Path.Combine(dir, "batch.png")
                BatchPlot.Save(images, targets, null, [| "circle"; "square"; "triangle" |], out)
                let drawn = RgbImage.Load out
                Expect.equal (drawn.Width, drawn.Height) (96, 40) "⌈√2⌉ = 2 columns of 48 x 40, one row"
                Expect.equal (pixel drawn 24 20) (128uy, 128uy, 128uy) "the first image's middle, untouched"
                let coloured = inColour drawn 2

                Expect.isEmpty (coloured [ 0..47 ] [ 0..39 ]) "nothing in the class colour on the unlabelled image"
                Expect.isNonEmpty (coloured [ 59..61 ] [ 20..28 ]) "the box's left edge at x 48 + 12"
                Expect.isNonEmpty (coloured [ 83..85 ] [ 20..28 ]) "its right edge at x 48 + 36"
                Expect.isEmpty (coloured [ 63..81 ] [ 15..28 ]) "the box's inside is not filled"
                Expect.equal (pixel drawn 72 20) (128uy, 128uy, 128uy) "the second image's middle, inside the box"
            }
            test "BatchPlot of predictions: the box above 0.25 drawn at its edges in its class colour, the one below not" {
                let dir = TestUtil.fixtureDir "yolospp-batchplot-"
                use images = torch.ones ([| 1L; 3L; 40L; 48L |])
                images.mul_ (torch.tensor 0.5f) |> ignore
                // class 2 at x 12..36, y 10..30 scoring 0.9; class 1 at the same place scoring 0.2 (not drawn)
                use preds =
                    torch
                        .tensor(
                            [|
                                0.0f
                                2.0f
                                0.5f
                                0.5f
                                0.5f
                                0.5f
                                0.9f
                                0.0f
                                1.0f
                                0.5f
                                0.5f
                                0.5f
                                0.5f
                                0.2f
                            |]
                        )
                        .reshape (2L, 7L)

                let out = Path.Combine(dir, "pred.png")
                BatchPlot.Save(images, preds, null, [| "circle"; "square"; "triangle" |], out)
                let drawn = RgbImage.Load out
                Expect.equal (drawn.Width, drawn.Height) (48, 40) "one tile"
                Expect.isNonEmpty (inColour drawn 2 [ 11..13 ] [ 20..28 ]) "the left edge at x 12"
                Expect.isNonEmpty (inColour drawn 2 [ 35..37 ] [ 20..28 ]) "the right edge at x 36"
                Expect.isEmpty (inColour drawn 1 [ 0..47 ] [ 0..39 ]) "the 0.2 prediction is not drawn"
                use eight = torch.zeros ([| 1L; 8L |])
                Expect.throwsT<ArgumentException> (fun () -> BatchPlot.Save(images, eight, null, [||], Path.Combine(dir, "z.png"))) "8 columns"
            }
            test "BatchPlot: at most 16 images in a 4 x 4 grid, a grid wider than 1920 scaled down, other shapes refused" {
                let dir = TestUtil.fixtureDir "yolospp-batchplot-"
                use many = torch.zeros ([| 17L; 3L; 8L; 8L |])
                use none = torch.zeros ([| 0L; 6L |])
                BatchPlot.Save(many, none, null, [||], Path.Combine(dir, "many.png"))
                let m = RgbImage.Load(Path.Combine(dir, "many.png"))
                Expect.equal (m.Width, m.Height) (32, 32) "16 of the 17 images, 4 columns and 4 rows of 8 x 8"
                use wide = torch.zeros ([| 1L; 3L; 100L; 2000L |])
                BatchPlot.Save(wide, none, [| "/data/images/a.jpg" |], [||], Path.Combine(dir, "wide.jpg"))
                let w = RgbImage.Load(Path.Combine(dir, "wide.jpg"))
                Expect.equal (w.Width, w.Height) (1920, 96) "scaled by 1920 / 2000, never up"
                use gray = torch.zeros ([| 1L; 1L; 8L; 8L |])
                Expect.throwsT<ArgumentException> (fun () -> BatchPlot.Save(gray, none, null, [||], Path.Combine(dir, "x.png"))) "one channel"
                use short = torch.zeros ([| 2L; 5L |])
                Expect.throwsT<ArgumentException> (fun () -> BatchPlot.Save(many, short, null, [||], Path.Combine(dir, "y.png"))) "5 label columns"

                Expect.isFalse
                    (File.Exists(Path.Combine(dir, "x.png"))
                     || File.Exists(Path.Combine(dir, "y.png")))
                    "nothing written"
            }
        ]
