/// The campaign's bad model and recipe files: cfgs, weights and hyp files, each through the runner (datasets: CampaignData).
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
open YoloSpp.Tests.Robustness.CampaignData

/// info on the shapes network with one edit of its text.
let private infoEdit (old: string) (replacement: string) (ctx: Ctx) =
    let cfg =
        WhyFixtures.editCfg (Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")) (Path.Combine(ctx.Dir, "e.cfg")) old replacement

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
                WhyFixtures.editCfg ctx.Fixture.Cfg (Path.Combine(ctx.Dir, "c1.cfg")) "channels=3" "channels=1"

            cli ctx (WhyFixtures.trainArgs (dataset ctx) cfg [ "--output"; Path.Combine(ctx.Dir, "run") ]))
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
            WhyFixtures.randomWeights (Path.Combine(TestUtil.repoRoot, "cfg", "shapes-spp.cfg")) other
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

            WhyFixtures.trainArgs (dataset ctx) ctx.Fixture.Cfg []
            |> List.map (fun a -> if a.EndsWith "hyp.shapes.yaml" then missing else a)
            |> cli ctx)
    ]

/// Every case of this file.
let cases = CampaignData.labels @ CampaignData.images @ cfgs @ weights @ hypCases
