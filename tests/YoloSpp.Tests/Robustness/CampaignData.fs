/// The campaign's bad dataset files: image lists and labels, and images, each through the runner; and the helpers
/// every case file uses (`refused`, `accepted`).
module YoloSpp.Tests.Robustness.CampaignData

open System
open System.IO
open System.IO.Compression
open System.Text
open SkiaSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Tests
open YoloSpp.Tests.Robustness.Campaign

/// A case refused with `code` and a message naming each of `mentions`.
let refused family name code mentions run =
    {
        Family = family
        Name = name
        Code = code
        Mentions = mentions
        Accepts = false
        Run = run
    }

/// A case accepted (exit 0) whose output names each of `mentions`.
let accepted family name mentions run =
    {
        Family = family
        Name = name
        Code = 0
        Mentions = mentions
        Accepts = true
        Run = run
    }

/// check-data on a fresh copy of the set after `edit` (given the .data file).
let checkData (edit: string -> unit) (ctx: Ctx) =
    let data = dataset ctx
    edit data
    cli ctx [ "check-data"; "--data"; data ]

/// The first labelled training image's label file of a set.
let label (data: string) = snd (WhyFixtures.firstLabelled data)

/// The first labelled training image of a set.
let image (data: string) = fst (WhyFixtures.firstLabelled data)

/// The name of the first labelled training image's label file (the fixture set is always the same).
let labelName =
    lazy (Path.GetFileName(label (Path.Combine(fixture.Force().Dataset, "shapes.data"))))

let setLabel (content: string) (data: string) = File.WriteAllText(label data, content)

let labels =
    let f = "labels"

    [
        refused f "a row of 6 values" 2 [ ":1: expected 5 numbers" ] (checkData (setLabel "0 0.5 0.5 0.2 0.2 7\n"))
        refused f "class -1" 2 [ "class -1 out of range" ] (checkData (setLabel "-1 0.5 0.5 0.2 0.2\n"))
        refused f "class 1.5" 2 [ "not an integer" ] (checkData (setLabel "1.5 0.5 0.5 0.2 0.2\n"))
        refused f "a NaN centre" 2 [ "'nan' is not a number" ] (checkData (setLabel "0 nan 0.5 0.2 0.2\n"))
        refused f "an infinite width" 2 [ "'Infinity' is not a number" ] (checkData (setLabel "0 0.5 0.5 Infinity 0.2\n"))
        refused f "a zero width" 2 [ "w = 0 must be > 0" ] (checkData (setLabel "0 0.5 0.5 0 0.2\n"))
        refused f "a centre outside the image" 2 [ "cx = 1.5 outside [0, 1]" ] (checkData (setLabel "0 1.5 0.5 0.2 0.2\n"))
        refused f "binary bytes as a label file" 2 [ ":1:" ] (checkData (fun d -> File.WriteAllBytes(label d, [| 0uy; 159uy; 1uy; 255uy; 10uy |])))
        refused
            f
            "a 65 MB label file"
            2
            [ "too large for a label file" ]
            (checkData (fun d ->
                use s = File.Open(label d, FileMode.Create)
                s.SetLength(65L <<< 20)))
        accepted f "a UTF-16 label file with its BOM" [] (checkData (fun d -> File.WriteAllText(label d, "0 0.5 0.5 0.2 0.2\n", Encoding.Unicode)))
        accepted f "CRLF, tabs and trailing blank lines" [] (checkData (setLabel "0\t0.5 0.5 0.2 0.2\r\n\r\n\r\n"))
        refused
            f
            "a list naming an image that is not there"
            2
            [ "train.txt:"; "image not found" ]
            (checkData (fun d -> File.AppendAllText(Path.Combine(Path.GetDirectoryName d, "train.txt"), "\nimages/train/nope.jpg\n")))
        refused
            f
            "a binary image list"
            2
            [ "train.txt"; "binary" ]
            (checkData (fun d -> File.WriteAllBytes(Path.Combine(Path.GetDirectoryName d, "train.txt"), [| 0uy; 1uy; 2uy; 10uy |])))
        refused
            f
            "an empty image list"
            2
            [ "train.txt"; "names no images" ]
            (checkData (fun d -> File.WriteAllText(Path.Combine(Path.GetDirectoryName d, "train.txt"), "")))
        accepted
            f
            "a list line naming a folder is skipped with a warning"
            [ "has no image extension" ]
            (checkData (fun d -> File.AppendAllText(Path.Combine(Path.GetDirectoryName d, "train.txt"), "\nimages/train/\n")))
        refused
            f
            ".data with classes=0"
            2
            [ "shapes.data:1"; "not a positive integer" ]
            (checkData (fun d -> File.WriteAllText(d, File.ReadAllText(d).Replace("classes=5", "classes=0"))))
        refused
            f
            ".data without valid"
            2
            [ "missing key 'valid'" ]
            (checkData (fun d -> File.WriteAllText(d, File.ReadAllText(d).Replace("valid=", "# valid="))))
        refused
            f
            "a names file with another class count"
            2
            [ "shapes.names"; "class names" ]
            (checkData (fun d -> File.WriteAllText(Path.Combine(Path.GetDirectoryName d, "shapes.names"), "one\ntwo\n")))
        refused f "a .data path that is a folder" 2 [ "is a folder, not a .data file" ] (fun ctx -> cli ctx [ "check-data"; "--data"; ctx.Dir ])
        accepted
            f
            "train= naming a folder of images"
            [ "found" ]
            (checkData (fun d -> File.WriteAllText(d, File.ReadAllText(d).Replace("train=train.txt", "train=images/train"))))
        accepted
            f
            "an image listed twice"
            [ "9 images" ]
            (checkData (fun d -> File.AppendAllText(Path.Combine(Path.GetDirectoryName d, "train.txt"), "\nimages/train/000001.jpg\n")))
        accepted
            f
            "a validation set without labels: a warning"
            [ "no labels" ]
            (checkData (fun d ->
                let dir = Path.GetDirectoryName d
                Directory.Delete(Path.Combine(dir, "labels", "val"), true)))
        accepted
            f
            "one training image without its label file: a warning naming it"
            [ "1 of 8 images have no label file"; labelName.Force() ]
            (checkData (fun d -> File.Delete(label d)))
        accepted
            f
            "a garbage label cache is rescanned"
            [ "found" ]
            (checkData (fun d -> File.WriteAllText(Path.Combine(Path.GetDirectoryName d, "train.txt.cache"), "{not json")))
        accepted
            f
            "a label cache of another layout is rescanned"
            [ "found" ]
            (checkData (fun d ->
                File.WriteAllText(Path.Combine(Path.GetDirectoryName d, "train.txt.cache"), """{"Version":3,"Classes":5,"Stamps":null,"Entries":[null]}""")))
        accepted
            f
            "a temp cache file a killed writer left"
            [ "found" ]
            (checkData (fun d ->
                File.WriteAllText(
                    Path.Combine(Path.GetDirectoryName d, sprintf ".train.txt.cache.%d.%s.tmp" (WhyFixtures.deadPid ()) (Guid.NewGuid().ToString "N")),
                    "{"
                )))
        refused f "a label file that is a folder, in train" 2 [ labelName.Force(); "a folder" ] (fun ctx ->
            let data = dataset ctx
            let l = label data
            File.Delete l
            Directory.CreateDirectory l |> ignore
            cli ctx (train ctx data [ "--output"; Path.Combine(ctx.Dir, "run") ]))
    ]

/// An image of the set replaced by `content`.
let setImage (content: byte[]) (data: string) = File.WriteAllBytes(image data, content)

/// Encodes a bitmap of the given colour type as `format`.
let encoded (colorType: SKColorType) (format: SKEncodedImageFormat) (w: int) (h: int) =
    use bmp = new SKBitmap(SKImageInfo(w, h, colorType, SKAlphaType.Opaque))
    bmp.Erase(SKColors.Gray)
    use d = bmp.Encode(format, 90)
    d.ToArray()

let imageName =
    lazy (Path.GetFileName(image (Path.Combine(fixture.Force().Dataset, "shapes.data"))))

let images =
    let f = "images"

    let detect (ctx: Ctx) (source: string) (extra: string list) =
        cli
            ctx
            ([
                "detect"
                "--cfg"
                ctx.Fixture.Cfg
                "--weights"
                ctx.Fixture.Weights
                "--names"
                ctx.Fixture.Names
                "--source"
                source
                "--out"
                Path.Combine(ctx.Dir, "det")
                "--img-size"
                "64"
             ]
             @ extra)

    [
        refused f "a 0-byte JPEG" 2 [ imageName.Force(); "not a readable image" ] (checkData (setImage [||]))
        refused f "a text file named .jpg" 2 [ imageName.Force(); "not a readable image" ] (checkData (setImage "hello"B))
        refused
            f
            "a truncated PNG in the list"
            2
            [ "truncated" ]
            (checkData (fun d ->
                let png = encoded SKColorType.Rgba8888 SKEncodedImageFormat.Png 64 64
                setImage png[.. png.Length / 2] d))
        accepted
            f
            "a JPEG missing only its end marker: restored, with a note"
            [ "end marker" ]
            (checkData (fun d ->
                let b = File.ReadAllBytes(image d)
                setImage b[.. b.Length - 3] d))
        accepted f "a JPEG with bytes after its end marker" [ "found" ] (checkData (fun d -> setImage (Array.append (File.ReadAllBytes(image d)) "trailer"B) d))
        accepted f "PNG bytes under a .jpg name" [ "found" ] (checkData (setImage (encoded SKColorType.Rgba8888 SKEncodedImageFormat.Png 64 64)))
        accepted f "a WebP under a .jpg name" [ "found" ] (checkData (setImage (encoded SKColorType.Rgba8888 SKEncodedImageFormat.Webp 64 64)))
        accepted f "a greyscale PNG" [ "found" ] (checkData (setImage (encoded SKColorType.Gray8 SKEncodedImageFormat.Png 64 64)))
        accepted f "a 1x1 image" [ "found" ] (checkData (setImage (encoded SKColorType.Rgba8888 SKEncodedImageFormat.Png 1 1)))
        accepted f "a 20x10000 image trains" [ "mAP@0.5" ] (fun ctx ->
            let data = dataset ctx
            setImage (encoded SKColorType.Rgba8888 SKEncodedImageFormat.Png 20 10000) data
            cli ctx (train ctx data [ "--output"; Path.Combine(ctx.Dir, "run") ]))
        refused f "--max-pixels 100 on 64x64 images" 2 [ "4,096 pixels"; "above the limit of 100" ] (fun ctx ->
            cli ctx [ "check-data"; "--data"; dataset ctx; "--max-pixels"; "100" ])
        refused f "--max-pixels 0" 2 [ "--max-pixels 0" ] (fun ctx -> cli ctx [ "check-data"; "--data"; dataset ctx; "--max-pixels"; "0" ])
        refused f "--max-pixels beyond an array" 2 [ "--max-pixels" ] (fun ctx ->
            cli ctx [ "check-data"; "--data"; dataset ctx; "--max-pixels"; "999999999999" ])
        // yolov5's rule (issue 30): an unreadable source is named, skipped and counted; exit 2 only when none was read
        accepted f "detect on a folder with a good and a corrupt image" [ "bad.jpg"; "not a readable image"; "1 sources skipped" ] (fun ctx ->
            let data = dataset ctx
            let folder = Directory.CreateDirectory(Path.Combine(ctx.Dir, "pics")).FullName
            File.Copy(image data, Path.Combine(folder, "good.jpg"))
            File.WriteAllText(Path.Combine(folder, "bad.jpg"), "no")
            let o = detect ctx folder []
            o |> check (o.Out.Contains "good.jpg:") "the good image is still processed")
        refused f "detect on an empty folder" 2 [ "no images" ] (fun ctx -> detect ctx (Directory.CreateDirectory(Path.Combine(ctx.Dir, "e")).FullName) [])
        refused f "detect on a file that is no image" 2 [ "not an image" ] (fun ctx -> detect ctx (text ctx "notes.md" "x") [])
        refused f "detect on a .txt that is no list of paths" 2 [ "notes.txt:1: no such file"; "list of image and video paths" ] (fun ctx ->
            detect ctx (text ctx "notes.txt" "x") [])
        accepted f "eval with a truncated JPEG in the valid list: skipped, named" [ "warning: "; "truncated image"; "skipped" ] (fun ctx ->
            let data = dataset ctx
            let v = Path.Combine(Path.GetDirectoryName data, "images", "val", "000000.jpg")
            let b = File.ReadAllBytes v
            File.WriteAllBytes(v, b[.. b.Length / 2])

            cli
                ctx
                [
                    "eval"
                    "--cfg"
                    ctx.Fixture.Cfg
                    "--weights"
                    ctx.Fixture.Weights
                    "--data"
                    data
                    "--img-size"
                    "64"
                ])
        accepted f "anchors with a truncated JPEG in the train list: skipped, named" [ "warning: "; "truncated image"; "anchors = " ] (fun ctx ->
            let data = dataset ctx
            let i = image data
            let b = File.ReadAllBytes i
            File.WriteAllBytes(i, b[.. b.Length / 2])

            cli
                ctx
                [
                    "anchors"
                    "--data"
                    data
                    "--n"
                    "3"
                    "--gen"
                    "10"
                    "--img-size"
                    "64"
                    "64"
                ])
        refused f "eval with a 30000x30000 PNG in the valid list" 2 [ "huge.png"; "pixels" ] (fun ctx ->
            let data = dataset ctx
            let dir = Path.GetDirectoryName data
            File.Copy(WhyFixtures.hugePng.Force(), Path.Combine(dir, "images", "val", "huge.png"))
            File.AppendAllText(Path.Combine(dir, "val.txt"), "\nimages/val/huge.png\n")

            cli
                ctx
                [
                    "eval"
                    "--cfg"
                    ctx.Fixture.Cfg
                    "--weights"
                    ctx.Fixture.Weights
                    "--data"
                    data
                    "--img-size"
                    "64"
                ])
        refused f "export --int8 calibrated on a 30000x30000 PNG" 2 [ "huge.png"; "pixels" ] (fun ctx ->
            let big = Path.Combine(ctx.Dir, "huge.png")
            File.Copy(WhyFixtures.hugePng.Force(), big)

            cli
                ctx
                [
                    "export"
                    "--cfg"
                    ctx.Fixture.Cfg
                    "--weights"
                    ctx.Fixture.Weights
                    "--output"
                    Path.Combine(ctx.Dir, "m.onnx")
                    "--int8"
                    big
                    "--img-size"
                    "64"
                ])
    ]
