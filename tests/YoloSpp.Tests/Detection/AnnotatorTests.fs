/// Drawing detections: line width and font that follow the image's size (ultralytics' Annotator), labels inside the
/// picture, and only the boxes above the draw threshold.
module YoloSpp.Tests.Detection.AnnotatorTests

open System
open System.IO
open Expecto
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Tests

/// A plain grey picture.
let private grey (w: int) (h: int) =
    RgbImage(w, h, Array.create (w * h * 3) 128uy)

let private pixel (img: RgbImage) (x: int) (y: int) =
    let i = (y * img.Width + x) * 3
    img.Pixels[i], img.Pixels[i + 1], img.Pixels[i + 2]

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
                let struct (r, g, b) = Annotator.ClassColor 4
                let colour = r, g, b

                let coloured (xs: int seq) (ys: int seq) =
                    [
                        for x in xs do
                            for y in ys do
                                if pixel drawn x y = colour then
                                    (x, y)
                    ]

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
        ]
