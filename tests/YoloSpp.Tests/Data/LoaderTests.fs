/// The training loader: augmentation keeping boxes on their pixels (mosaic, affine, flip, letterbox), the image
/// cache, determinism, HSV, epoch coverage, prefetching and rect batches.
module YoloSpp.Tests.Data.LoaderTests

open System
open System.IO
open Expecto
open YoloSpp.Data
open YoloSpp.Data.Labels
open YoloSpp.Tests
open YoloSpp.Tests.Data.DataFixtures

let private isRed (img: RgbImage) x y =
    let o = (y * img.Width + x) * 3
    img.Pixels[o] > 150uy && img.Pixels[o + 1] < 100uy && img.Pixels[o + 2] < 100uy

/// Every box's interior is mostly red, and red pixels lie inside some box (2 px of slack for interpolation).
let private checkBoxesOnPixels (s: Sample) =
    let img = s.Image

    let boxes =
        s.Labels
        |> Seq.toArray
        |> Array.map (fun r ->
            (r.Cx - r.W / 2.0) * float img.Width,
            (r.Cy - r.H / 2.0) * float img.Height,
            (r.Cx + r.W / 2.0) * float img.Width,
            (r.Cy + r.H / 2.0) * float img.Height)

    for x1, y1, x2, y2 in boxes do
        let pts =
            [
                for y in int (ceil y1) .. int (floor y2) - 1 do
                    for x in int (ceil x1) .. int (floor x2) - 1 -> x, y
            ]

        if not pts.IsEmpty then
            let red = pts |> List.filter (fun (x, y) -> isRed img x y) |> List.length
            // the enclosing box of a rotated/sheared rectangle has empty corners; a sliver clipped at the border
            // can be mostly corner, so thin boxes get a lower bar
            let bar = if x2 - x1 >= 10.0 && y2 - y1 >= 10.0 then 0.6 else 0.3
            Expect.isGreaterThan (float red / float pts.Length) bar (sprintf "box (%.1f %.1f %.1f %.1f) interior mostly red" x1 y1 x2 y2)
    // objects cut by the border down to a sliver are dropped by the candidate rule (w, h > 4 px, area ratio
    // > 0.2), leaving red pixels near the edge; anywhere else red must lie in a box
    let edge = 8

    let outside =
        [
            for y in edge .. img.Height - 1 - edge do
                for x in edge .. img.Width - 1 - edge do
                    if
                        isRed img x y
                        && not (
                            boxes
                            |> Array.exists (fun (x1, y1, x2, y2) ->
                                float x >= x1 - 2.0
                                && float x <= x2 + 2.0
                                && float y >= y1 - 2.0
                                && float y <= y2 + 2.0)
                        )
                    then
                        yield x, y
        ]

    Expect.isLessThanOrEqual outside.Length 3 (sprintf "red pixels outside every box: %A" (List.truncate 5 outside))

let private hypNoColour (degrees, translate, scale, shear) =
    let yaml =
        YoloSpp.Training.Hyp.toYaml
            { YoloSpp.Training.Hyp.defaults with
                Degrees = degrees
                Translate = translate
                Scale = scale
                Shear = shear
                HsvH = 0.0
                HsvS = 0.0
                HsvV = 0.0
            }

    let f = Path.GetTempFileName()
    File.WriteAllText(f, yaml)

    try
        YoloSpp.HyperParameters.Load f
    finally
        File.Delete f

let private openSet (dir: string) (o: DataOptions) =
    YoloDataset.Open(Path.Combine(dir, "list.txt"), 1, o)

let augmentTests =
    testList
        "augment"
        [
            test "--cache-images: the same samples, and later epochs read no file" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                let o cache =
                    DataOptions(ImageSize = 64, Augment = true, Seed = 3, CacheImages = cache, Hyp = hypNoColour (5.0, 0.1, 0.1, 2.0))

                let plain, cached = openSet dir (o false), openSet dir (o true)

                let pixels (ds: YoloDataset) epoch =
                    [ for i in 0 .. ds.Count - 1 -> (ds.GetItem(i, epoch)).Image.Pixels ]

                Expect.equal (pixels cached 0) (pixels plain 0) "epoch 0: the same bytes"
                // the cache holds every image now: their files are no longer needed
                for f in Directory.GetFiles(Path.Combine(dir, "images")) do
                    File.Delete f

                Expect.equal (pixels cached 1).Length cached.Count "epoch 1 from memory"
                Expect.throws (fun () -> pixels plain 1 |> ignore) "without the cache the files are read again"
            }
            test "--single-cls: every label is class 0 after the class range was checked" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                File.WriteAllText(Path.Combine(dir, "labels", "a.txt"), "2 0.5 0.5 0.2 0.2\n0 0.3 0.3 0.1 0.1\n")

                let ds =
                    YoloDataset.Open(Path.Combine(dir, "list.txt"), 3, DataOptions(ImageSize = 64, SingleClass = true))

                Expect.equal ds.NumClasses 1 "one class"

                Expect.isTrue
                    (ds.Items
                     |> Seq.forall (fun it -> it.Labels |> Seq.forall (fun l -> l.Class = 0)))
                    "all class 0"

                Expect.equal ds.Items[0].Labels.Count 2 "rows kept"

                Expect.throws
                    (fun () ->
                        YoloDataset.Open(Path.Combine(dir, "list.txt"), 2, DataOptions(SingleClass = true))
                        |> ignore)
                    "class 2 of 2 classes is still an error"
            }
            test "mosaic + random affine keep every box on its red pixels" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                let ds =
                    openSet dir (DataOptions(ImageSize = 64, Augment = true, Hyp = hypNoColour (10.0, 0.1, 0.2, 5.0)))

                for seed in 0..5 do
                    for i in 0 .. ds.Count - 1 do
                        let s =
                            (openSet dir (DataOptions(ImageSize = 64, Augment = true, Seed = seed, Hyp = hypNoColour (10.0, 0.1, 0.2, 5.0)))).GetItem(i)

                        Expect.equal (s.Image.Width, s.Image.Height) (64, 64) "mosaic output is img_size square"
                        checkBoxesOnPixels s

                ignore ds
            }
            test "letterbox + affine + flip (no mosaic) keep boxes on their pixels" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                let mutable flipped = 0

                for seed in 0..7 do
                    let ds =
                        openSet dir (DataOptions(ImageSize = 64, Augment = true, Mosaic = false, Seed = seed, Hyp = hypNoColour (8.0, 0.05, 0.1, 3.0)))

                    for i in 0 .. ds.Count - 1 do
                        let s = ds.GetItem(i)
                        checkBoxesOnPixels s

                        if i = 0 && s.Labels.Count = 1 && s.Labels[0].Cx > 0.5 then
                            flipped <- flipped + 1

                Expect.isGreaterThan flipped 0 "some seeds flip image a (its box starts on the left)"
            }
            test "evaluation letterbox: boxes on pixels, pad 114, shape maps back to the original" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                let ds = openSet dir (DataOptions(ImageSize = 64))
                let s = ds.GetItem(0)
                Expect.equal (s.Image.Width, s.Image.Height) (64, 64) "square letterbox"
                Expect.equal s.Image.Pixels[0] 114uy "pad colour"
                checkBoxesOnPixels s
                let sh = s.Shape.Value
                Expect.equal (sh.Height0, sh.Width0, sh.PadH) (48, 64, 8.0) "original size and pad"
                let y1 = (s.Labels[0].Cy - s.Labels[0].H / 2.0) * 64.0
                Expect.floatClose Accuracy.medium ((y1 - sh.PadH) / sh.RatioH) 8.0 "y1 maps back to the original pixel"
            }
            test "the same seed gives the same bytes; another seed differs" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                let get seed =
                    (openSet dir (DataOptions(ImageSize = 64, Augment = true, Seed = seed, Hyp = hypNoColour (10.0, 0.1, 0.2, 5.0)))).GetItem(1, 3)

                let a, b, c = get 7, get 7, get 8
                Expect.sequenceEqual a.Image.Pixels b.Image.Pixels "same pixels"
                Expect.sequenceEqual a.Labels b.Labels "same labels"
                Expect.isFalse (a.Image.Pixels.AsSpan().SequenceEqual(c.Image.Pixels)) "another seed, other pixels"
            }
        ]

let loaderTests =
    testList
        "loader"
        [
            test "without shuffle every image comes once per epoch, in order; tensors have the collate shapes" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                let loader =
                    YoloDataLoader(openSet dir (DataOptions(ImageSize = 64, BatchSize = 2)))

                let seen = ResizeArray()

                for b in loader do
                    use b = b
                    seen.AddRange b.Indices
                    Expect.equal b.Images.shape [| int64 b.Indices.Count; 3L; 64L; 64L |] "images [bs,3,H,W]"
                    Expect.equal b.Targets.shape[1] 6L "targets [n,6]"
                    Expect.isTrue (b.Images.max().item<float32> () <= 1.0f) "0..1"

                Expect.sequenceEqual seen [ 0; 1; 2 ] "each once, in order"
            }
            test "with shuffle and mosaic an epoch is a permutation, and deterministic" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                let epoch () =
                    let loader =
                        YoloDataLoader(openSet dir (DataOptions(ImageSize = 64, BatchSize = 2, Augment = true, Shuffle = true, Seed = 3)))

                    [
                        for b in loader.Epoch 2 do
                            use b = b
                            yield List.ofSeq b.Indices, b.Images.sum().item<float32> (), b.Targets.shape[0]
                    ]

                let a = epoch ()
                Expect.sequenceEqual (a |> List.collect (fun (i, _, _) -> i) |> List.sort) [ 0; 1; 2 ] "permutation"
                Expect.equal (epoch ()) a "same seed, same batches"
            }
            test "a consumer that stops after one batch does not leave the prefetching producer blocked" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                let loader =
                    YoloDataLoader(openSet dir (DataOptions(ImageSize = 64, BatchSize = 1, Prefetch = 1)))

                let first = loader |> Seq.head
                use _ = first
                Expect.equal (List.ofSeq first.Indices) [ 0 ] "first batch"
            }
            test "rect batches take the reference's per-batch shape" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                let loader =
                    YoloDataLoader(openSet dir (DataOptions(ImageSize = 128, BatchSize = 2, Rect = true)))

                let shapes =
                    [
                        for b in loader do
                            use b = b in yield b.Images.shape[2], b.Images.shape[3]
                    ]
                // sorted h/w: 0.75, 0.75 (→ [0.75, 1]: ceil(0.75 * 4) * 32 = 96 × 128), then 1.333 (→ [1, 0.75]: 128 × 96)
                Expect.equal shapes [ 96L, 128L; 128L, 96L ] "shapes"

                Expect.sequenceEqual
                    (loader.Dataset.Items |> Seq.map (fun it -> Path.GetFileName it.ImagePath))
                    [ "a.png"; "c.png"; "b.png" ]
                    "sorted by aspect"
            }
        ]

let hsvTests =
    testList
        "hsv"
        [
            test "the augment_hsv pixel loop gives the bytes of FromRgb, the tables and ToRgb for every sampled colour and gain" {
                let colours =
                    [|
                        for r in 0..5..255 do
                            for g in 0..3..255 do
                                for b in 0..7..255 do
                                    yield! [| byte r; byte g; byte b |]
                    |]

                for gains in
                    [
                        (1.0, 1.0, 1.0)
                        (1.0138, 0.322, 1.36)
                        (0.9862, 1.678, 0.64)
                        (1.005, 1.2, 0.9)
                    ] do
                    let lh, ls, lv = YoloSpp.Data.Augment.hsvLuts gains
                    let fast = Array.copy colours
                    YoloSpp.Data.Hsv.Apply(fast, lh, ls, lv)

                    for i in 0..3 .. colours.Length - 3 do
                        let struct (h, s, v) =
                            YoloSpp.Data.Hsv.FromRgb(int colours.[i], int colours.[i + 1], int colours.[i + 2])

                        let struct (r, g, b) = YoloSpp.Data.Hsv.ToRgb(lh.[int h], ls.[int s], lv.[int v])

                        if (fast.[i], fast.[i + 1], fast.[i + 2]) <> (r, g, b) then
                            failtestf
                                "gains %A, colour %A: %A, expected %A"
                                gains
                                (colours.[i], colours.[i + 1], colours.[i + 2])
                                (fast.[i], fast.[i + 1], fast.[i + 2])
                                (r, g, b)
            }
            test "unit gains leave colours within the 8-bit HSV round trip error (hue in 2-degree steps: at most 8)" {
                let lh, ls, lv = YoloSpp.Data.Augment.hsvLuts (1.0, 1.0, 1.0)
                let rnd = Random 4
                let px = Array.init (3 * 5000) (fun _ -> byte (rnd.Next 256))
                let out = Array.copy px
                YoloSpp.Data.Hsv.Apply(out, lh, ls, lv)

                let worst =
                    Array.map2 (fun (a: byte) (b: byte) -> abs (int a - int b)) px out |> Array.max

                Expect.isLessThanOrEqual worst 8 "8-bit HSV quantisation only"
            }
        ]
