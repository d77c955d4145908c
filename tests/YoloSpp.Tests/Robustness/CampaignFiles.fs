/// The campaign's bad files: image lists and labels, images, cfgs, weights and hyp files, each through the runner.
module YoloSpp.Tests.Robustness.CampaignFiles

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
let label (data: string) = snd (WhyTests.firstLabelled data)

/// The first labelled training image of a set.
let image (data: string) = fst (WhyTests.firstLabelled data)

/// The name of the first labelled training image's label file (the fixture set is always the same).
let labelName =
    lazy (Path.GetFileName(label (Path.Combine(fixture.Force().Dataset, "shapes.data"))))

let private setLabel (content: string) (data: string) = File.WriteAllText(label data, content)

let private labels =
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
                    Path.Combine(Path.GetDirectoryName d, sprintf ".train.txt.cache.%d.%s.tmp" (WhyTests.deadPid ()) (Guid.NewGuid().ToString "N")),
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
let private setImage (content: byte[]) (data: string) = File.WriteAllBytes(image data, content)

/// Encodes a bitmap of the given colour type as `format`.
let private encoded (colorType: SKColorType) (format: SKEncodedImageFormat) (w: int) (h: int) =
    use bmp = new SKBitmap(SKImageInfo(w, h, colorType, SKAlphaType.Opaque))
    bmp.Erase(SKColors.Gray)
    use d = bmp.Encode(format, 90)
    d.ToArray()

let private imageName =
    lazy (Path.GetFileName(image (Path.Combine(fixture.Force().Dataset, "shapes.data"))))

let private images =
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
        refused f "detect on a folder with a good and a corrupt image" 2 [ "bad.jpg"; "not a readable image" ] (fun ctx ->
            let data = dataset ctx
            let folder = Directory.CreateDirectory(Path.Combine(ctx.Dir, "pics")).FullName
            File.Copy(image data, Path.Combine(folder, "good.jpg"))
            File.WriteAllText(Path.Combine(folder, "bad.jpg"), "no")
            let o = detect ctx folder []
            o |> check (o.Out.Contains "good.jpg:") "the good image is still processed")
        refused f "detect on an empty folder" 2 [ "no images" ] (fun ctx -> detect ctx (Directory.CreateDirectory(Path.Combine(ctx.Dir, "e")).FullName) [])
        refused f "detect on a file that is no image" 2 [ "not an image" ] (fun ctx -> detect ctx (text ctx "notes.txt" "x") [])
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
            File.Copy(WhyTests.hugePng.Force(), Path.Combine(dir, "images", "val", "huge.png"))
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
            File.Copy(WhyTests.hugePng.Force(), big)

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

/// info on the shapes network with one edit of its text.
let private infoEdit (old: string) (replacement: string) (ctx: Ctx) =
    let cfg =
        WhyTests.editCfg (Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")) (Path.Combine(ctx.Dir, "e.cfg")) old replacement

    cli ctx [ "info"; "--cfg"; cfg; "--img-size"; "64" ]

let private infoText (content: string) (ctx: Ctx) =
    cli ctx [ "info"; "--cfg"; text ctx "t.cfg" content ]

let private cfgs =
    let f = "cfg"
    let first = "filters=8\nsize=3\nstride=1"

    [
        refused f "size=0" 2 [ "e.cfg:"; "'size' must be > 0" ] (infoEdit first "filters=8\nsize=0\nstride=1")
        refused f "filters=-3" 2 [ "'filters' must be > 0" ] (infoEdit first "filters=-3\nsize=3\nstride=1")
        refused f "filters=abc" 2 [ "'abc' is not an integer" ] (infoEdit first "filters=abc\nsize=3\nstride=1")
        refused f "filters=70000" 2 [ "layer 3 [convolutional]"; "filters=70000" ] (infoEdit first "filters=70000\nsize=3\nstride=1")
        refused f "stride=5000" 2 [ "stride=5000" ] (infoEdit first "filters=8\nsize=3\nstride=5000")
        refused f "maxpool size=2000" 2 [ "[maxpool]"; "size=2000" ] (infoEdit "size=5" "size=2000")
        refused f "upsample stride=1000" 2 [ "[upsample]"; "too large" ] (infoEdit "[upsample]\nstride=2" "[upsample]\nstride=1000")
        refused f "an odd count of anchor values" 2 [ "odd count" ] (infoEdit "anchors=" "anchors=3, ")
        refused f "a negative anchor" 2 [ "anchor value -8 must be > 0" ] (infoEdit "anchors=8" "anchors=-8")
        refused f "a mask index past the anchors" 2 [ "mask index 9" ] (infoEdit "mask=6,7,8" "mask=6,7,9")
        refused f "classes=0" 2 [ "'classes' must be >= 1" ] (infoEdit "classes=5" "classes=0")
        refused f "a prediction conv of the wrong width" 2 [ "len(mask)*(classes+5)" ] (infoEdit "filters=30" "filters=31")
        refused f "an unknown section" 2 [ "unknown section [crop]" ] (infoEdit "[upsample]" "[crop]")
        refused f "activation=mish" 2 [ "unknown activation 'mish'" ] (infoEdit "activation=leaky" "activation=mish")
        refused f "an empty cfg" 2 [ "t.cfg"; "no sections" ] (infoText "")
        refused f "a binary cfg" 2 [ "b.cfg"; "binary" ] (fun ctx -> cli ctx [ "info"; "--cfg"; bytes ctx "b.cfg" [| 0uy; 1uy; 91uy |] ])
        refused f "a cfg that is a folder" 2 [ "is a folder" ] (fun ctx -> cli ctx [ "info"; "--cfg"; ctx.Dir ])
        refused f "only [net]" 2 [ "no layers after [net]" ] (infoText "[net]\nwidth=64\n")
        refused f "a route without entries" 2 [ "layers" ] (infoEdit "layers=-2" "layers=")
        refused f "a route to a later layer" 2 [ "not before this layer" ] (infoEdit "layers=-2" "layers=1000")
        refused f "a shortcut before the first layer" 2 [ "before the first layer" ] (infoEdit "from=-3" "from=-100")
        refused f "[net] channels=1 in train" 2 [ "channels=1"; "RGB" ] (fun ctx ->
            let cfg =
                WhyTests.editCfg ctx.Fixture.Cfg (Path.Combine(ctx.Dir, "c1.cfg")) "channels=3" "channels=1"

            cli ctx (WhyTests.trainArgs (dataset ctx) cfg [ "--output"; Path.Combine(ctx.Dir, "run") ]))
        refused f "a fourth [yolo] layer" 2 [ "fourth [yolo]" ] (fun ctx ->
            let t = File.ReadAllText(Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg"))
            let head = t.Substring(t.LastIndexOf "[route]")
            infoText (t + "\n" + head.Replace("layers=-1,15", "layers=-4")) ctx)
        refused
            f
            "over the parameter budget"
            2
            [ "parameters"; "above the limit" ]
            (infoEdit
                first
                "filters=40000\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n[convolutional]\nbatch_normalize=1\nfilters=40000\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n[convolutional]\nfilters=8\nsize=1\nstride=1")
        accepted f "CRLF line ends and a BOM" [ "Model summary" ] (fun ctx ->
            let t =
                File.ReadAllText(Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")).Replace("\n", "\r\n")

            cli ctx [ "info"; "--cfg"; text ctx "crlf.cfg" ("\uFEFF" + t) ])
        refused f "a shortcut adding a map of another size" 2 [ "[shortcut]"; "different sizes" ] (infoEdit "from=-3" "from=0")
        refused f "info --img-size 100" 2 [ "--img-size 100" ] (fun ctx -> cli ctx [ "info"; "--cfg"; ctx.Fixture.Cfg; "--img-size"; "100" ])
        refused f "info --img-size -32" 2 [ "--img-size -32" ] (fun ctx -> cli ctx [ "info"; "--cfg"; ctx.Fixture.Cfg; "--img-size"; "-32" ])
        refused f "yolo iou_loss=foo" 2 [ "unknown value 'foo'" ] (infoEdit "num=9" "num=9\niou_loss=foo")
        refused f "[net] steps=400,a" 2 [ "'a' is not an integer" ] (infoEdit "[net]" "[net]\nsteps=400,a")
    ]

/// A safetensors file in the case's folder.
let private st (ctx: Ctx) (header: string) (data: byte[]) =
    bytes
        ctx
        "w.safetensors"
        (Array.concat
            [
                BitConverter.GetBytes(uint64 (Encoding.UTF8.GetByteCount header))
                Encoding.UTF8.GetBytes header
                data
            ])

let private infoWeights (ctx: Ctx) (weights: string) =
    cli ctx [ "info"; "--cfg"; ctx.Fixture.Cfg; "--weights"; weights ]

let private evalWeights (ctx: Ctx) (weights: string) =
    cli
        ctx
        [
            "eval"
            "--cfg"
            ctx.Fixture.Cfg
            "--weights"
            weights
            "--data"
            dataset ctx
            "--img-size"
            "64"
        ]

/// A zip checkpoint with the given entries.
let private ckpt (ctx: Ctx) (entries: (string * byte[]) list) =
    let path = Path.Combine(ctx.Dir, "c.ckpt")

    (use zip = ZipFile.Open(path, ZipArchiveMode.Create)

     for name, content in entries do
         use e = zip.CreateEntry(name).Open()
         e.Write(content))

    path

let private weights =
    let f = "weights"

    [
        refused f "safetensors with an unknown dtype" 2 [ "w.safetensors"; "unknown dtype" ] (fun ctx ->
            infoWeights ctx (st ctx """{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}""" (Array.zeroCreate 4)))
        refused f "safetensors with a negative size" 2 [ "w.safetensors"; ">= 0" ] (fun ctx ->
            infoWeights ctx (st ctx """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""" (Array.zeroCreate 4)))
        refused f "safetensors with offsets reversed" 2 [ "begin <= end" ] (fun ctx ->
            infoWeights ctx (st ctx """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""" (Array.zeroCreate 4)))
        refused f "safetensors whose header is an array" 2 [ "not a JSON object" ] (fun ctx -> infoWeights ctx (st ctx "[]" [||]))
        refused f "safetensors claiming a 2^63-byte header" 2 [ "runs past the end" ] (fun ctx ->
            infoWeights ctx (bytes ctx "h.safetensors" (Array.append (BitConverter.GetBytes(1UL <<< 63)) "{}"B)))
        refused f "safetensors of another network in eval" 2 [ "does not fit the cfg" ] (fun ctx ->
            let other = Path.Combine(ctx.Dir, "o.safetensors")
            WhyTests.randomWeights (Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")) other
            evalWeights ctx other)
        refused f "safetensors with metadata only in eval" 2 [ "does not fit the cfg" ] (fun ctx ->
            evalWeights ctx (st ctx """{"__metadata__":{"a":"b"}}""" [||]))
        refused f "a .pt of garbage" 2 [ "not a PyTorch state dict" ] (fun ctx -> infoWeights ctx (bytes ctx "w.pt" "garbage!"B))
        refused f "an empty .pt" 2 [ "w.pt" ] (fun ctx -> infoWeights ctx (bytes ctx "w.pt" [||]))
        refused f "a 10-byte .weights" 2 [ "too short" ] (fun ctx -> infoWeights ctx (bytes ctx "w.weights" (Array.zeroCreate 10)))
        refused f "a .weights header cut in its 64-bit seen" 2 [ "too short" ] (fun ctx ->
            infoWeights
                ctx
                (bytes
                    ctx
                    "w.weights"
                    (Array.concat
                        [
                            BitConverter.GetBytes 0
                            BitConverter.GetBytes 2
                            BitConverter.GetBytes 0
                            Array.zeroCreate 6
                        ])))
        refused f "a .weights file cut in a layer" 2 [ "ran out at layer" ] (fun ctx ->
            infoWeights
                ctx
                (bytes
                    ctx
                    "w.weights"
                    (Array.append
                        (Array.concat
                            [
                                BitConverter.GetBytes 0
                                BitConverter.GetBytes 2
                                BitConverter.GetBytes 0
                                Array.zeroCreate 8
                            ])
                        (Array.zeroCreate 400))))
        refused f "a .weights file with surplus bytes" 2 [ "surplus" ] (fun ctx ->
            let path = Path.Combine(ctx.Dir, "w.weights")
            use m = DarkNet.FromCfgFile ctx.Fixture.Cfg
            DarknetWeights.Save(m, path)
            File.AppendAllBytes(path, Array.zeroCreate 64)
            infoWeights ctx path)
        refused f "a .ckpt of garbage" 2 [ "not a YoloSpp checkpoint" ] (fun ctx -> infoWeights ctx (bytes ctx "c.ckpt" "PK garbage"B))
        refused f "a .ckpt without meta.json, resumed" 2 [ "no meta.json" ] (fun ctx ->
            let c = ckpt ctx [ "model.safetensors", [||] ]
            cli ctx (train ctx (dataset ctx) [ "--weights"; c ]))
        refused f "a .ckpt whose meta.json is not JSON, resumed" 2 [ "meta.json" ] (fun ctx ->
            let c = ckpt ctx [ "meta.json", "{oops"B ]
            cli ctx (train ctx (dataset ctx) [ "--weights"; c ]))
        refused f "a .ckpt whose model.safetensors is cut short" 2 [ "c.ckpt"; "model.safetensors" ] (fun ctx ->
            let header = """{"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}"""

            let st =
                Array.concat
                    [
                        BitConverter.GetBytes(uint64 header.Length)
                        Encoding.UTF8.GetBytes header
                        Array.zeroCreate 40
                    ]

            infoWeights ctx (ckpt ctx [ "model.safetensors", st ]))
        refused f "weights that are a folder" 2 [ "is a folder" ] (fun ctx -> infoWeights ctx ctx.Dir)
        refused f "a .bin of garbage" 2 [ "w.bin"; "not a PyTorch state dict" ] (fun ctx -> infoWeights ctx (bytes ctx "w.bin" (Array.create 100 7uy)))
    ]

let private hypCases =
    let f = "hyp"

    let reference =
        lazy (File.ReadAllText(Path.Combine(TestUtil.repoRoot, "cfg", "hyp.yaml")))

    let hyp (content: string) (ctx: Ctx) =
        cli ctx [ "hyp"; text ctx "h.yaml" content ]

    [
        refused f "a list at the root" 2 [ "h.yaml"; "expected a mapping" ] (hyp "- 1\n- 2\n")
        refused f "a key holding a list" 2 [ "giou: expected a number" ] (fun ctx -> hyp (reference.Force().Replace("giou: 3.54", "giou: [1, 2]")) ctx)
        refused f "a NaN gain" 2 [ "must be finite" ] (fun ctx -> hyp (reference.Force().Replace("giou: 3.54", "giou: nan")) ctx)
        refused f "an empty file" 2 [ "h.yaml"; "empty file" ] (hyp "")
        refused f "a binary file" 2 [ "h.yaml"; "binary" ] (fun ctx -> cli ctx [ "hyp"; bytes ctx "h.yaml" [| 0uy; 58uy; 32uy |] ])
        refused f "an unclosed quote" 2 [ "h.yaml:" ] (hyp "giou: \"3.5\ncls: 1\n")
        refused f "a key given twice" 2 [ "h.yaml:" ] (fun ctx -> hyp (reference.Force() + "giou: 1\n") ctx)
        refused
            f
            "an alias bomb"
            2
            [ "h.yaml:" ]
            (hyp
                "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ngiou: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n")
        refused f "nested 1000 deep" 2 [ "nested more than 64" ] (hyp ("giou: " + String('[', 1000) + String(']', 1000) + "\n"))
        refused f "train with a --hyp that is not there" 2 [ "no-such.yaml"; "no such hyp file" ] (fun ctx ->
            let missing = Path.Combine(ctx.Dir, "no-such.yaml")

            WhyTests.trainArgs (dataset ctx) ctx.Fixture.Cfg []
            |> List.map (fun a -> if a.EndsWith "hyp.shapes.yaml" then missing else a)
            |> cli ctx)
    ]

/// Every case of this file.
let cases = labels @ images @ cfgs @ weights @ hypCases
