/// Image files checked as yolov5's verify_image_label does (ImageDecode), and the label scan around them: restored
/// and truncated JPEGs, the pixel limit read from the header, sets without labels, missing label files, label
/// folders, corrupt images skipped, and a cache keyed by the labels' content.
module YoloSpp.Tests.Data.ImageCheckTests

open System
open System.Diagnostics
open System.IO
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Tests
open YoloSpp.Tests.Data.DataFixtures

/// A 96 × 80 JPEG of a colour ramp with noise (so that its blocks carry data), and its bytes.
let private jpeg (dir: string) =
    let rnd = Random 4
    let img = RgbImage.Filled(96, 80, 0uy)

    for i in 0 .. img.Pixels.Length - 1 do
        img.Pixels[i] <- byte ((i / 3 % 96) * 2 + rnd.Next 40)

    let path = Path.Combine(dir, "ramp.jpg")
    img.Save path
    path, File.ReadAllBytes path

/// Runs `f` with RgbImage.MaxPixels set to `limit`, then restores it.
let private withLimit (limit: int64) (f: unit -> unit) =
    let old = RgbImage.MaxPixels
    RgbImage.MaxPixels <- limit

    try
        f ()
    finally
        RgbImage.MaxPixels <- old

let decoding =
    testList
        "decode"
        [
            test "a JPEG whose only fault is a missing end marker decodes to the whole file's pixels, with a note" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let path, bytes = jpeg dir
                let whole = RgbImage.Load path
                File.WriteAllBytes(path, bytes[.. bytes.Length - 3])
                let mutable note: string = null
                let restored = RgbImage.LoadNoted(path, &note)
                Expect.sequenceEqual restored.Pixels whole.Pixels "the same pixels"
                Expect.stringContains note "end marker" "says what was restored"
            }
            test "a JPEG cut inside its data is refused naming the file, wherever the cut falls; never restored to other pixels" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let path, bytes = jpeg dir
                let whole = (RgbImage.Load path).Pixels

                for keep in [ bytes.Length / 3; bytes.Length / 2; bytes.Length * 9 / 10 ] do
                    File.WriteAllBytes(path, bytes[.. keep - 1])

                    let message =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> RgbImage.Load path |> ignore)

                    Expect.stringContains message path (sprintf "%d of %d bytes: names the file" keep bytes.Length)
                    Expect.stringContains message "truncated" "says why"
                // every other cut: refused, or (when it took only the end marker and padding bits) the whole image
                for cut in 2..7 .. bytes.Length - 700 do
                    File.WriteAllBytes(path, bytes[.. bytes.Length - 1 - cut])

                    try
                        Expect.sequenceEqual (RgbImage.Load path).Pixels whole (sprintf "cut %d: restored only to the whole image" cut)
                    with :? InvalidInputException ->
                        ()
            }
            test "a truncated PNG is refused too, and trailing bytes after a JPEG's end marker are fine" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let png = Path.Combine(dir, "a.png")
                redBoxImage png 64 48 (4, 4, 30, 30)
                let bytes = File.ReadAllBytes png
                File.WriteAllBytes(png, bytes[.. bytes.Length / 2])
                Expect.throwsT<InvalidInputException> (fun () -> RgbImage.Load png |> ignore) "truncated PNG"
                let path, jpg = jpeg dir
                File.WriteAllBytes(path, Array.append jpg "camera trailer"B)
                Expect.equal (RgbImage.Load path).Width 96 "decoded"
            }
            test "an image above the pixel limit is refused from its header in well under a second, naming the file" {
                let big = Robustness.WhyFixtures.hugePng.Force()
                let watch = Stopwatch.StartNew()

                let message =
                    TestUtil.throwsMessage<InvalidInputException> (fun () -> RgbImage.Load big |> ignore)

                Expect.isLessThan watch.Elapsed.TotalSeconds 1.0 "no pixel was decoded"
                Expect.stringContains message big "names the file"
                Expect.stringContains message "900,000,000 pixels" "the count"
                Expect.stringContains message "--max-pixels" "how to raise it"
                // a 12000 × 12000 image is within the default limit (its header is read, not its pixels) and above a lower one
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let png = Path.Combine(dir, "12k.png")
                Robustness.WhyFixtures.bigPng png 12000 12000
                Expect.equal (RgbImage.ReadSize png) (12000, 12000) "size from the header"
                withLimit 100_000_000L (fun () -> Expect.throwsT<InvalidInputException> (fun () -> RgbImage.ReadSize png |> ignore) "above 10^8")
            }
            test "the pixel limit refuses 0 and more than one array can hold" {
                for bad in [ 0L; -1L; 600_000_000L ] do
                    Expect.throwsT<ArgumentException> (fun () -> RgbImage.MaxPixels <- bad) (string bad)

                Expect.equal RgbImage.MaxPixels RgbImage.DefaultMaxPixels "unchanged"
            }
            test "a 10000x20 image loads at 64 px with a one-pixel short side" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let path = Path.Combine(dir, "thin.png")
                RgbImage.Filled(10000, 20, 7uy).Save path
                let mutable h0 = 0
                let mutable w0 = 0
                let img = RgbImage.LoadResized(path, 64, false, &h0, &w0)
                Expect.equal (img.Width, img.Height, w0, h0) (64, 1, 10000, 20) "64 × 1 from 10000 × 20"
            }
        ]

/// A set made by makeDataset, its list and the scan of it.
let private scanOf (dir: string) =
    makeDataset dir |> ignore
    let list = Path.Combine(dir, "list.txt")
    list, LabelScan.Scan(list, 1)

let scanning =
    testList
        "scan"
        [
            test "a set without label files has NoLabels naming the folder it looked in" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                Directory.Delete(Path.Combine(dir, "labels"), true)
                let r = LabelScan.Scan(Path.Combine(dir, "list.txt"), 1)
                Expect.isEmpty r.Errors "a scan is not an error by itself"
                Expect.stringContains r.NoLabels (Path.Combine(dir, "labels")) "names the folder"
                Expect.stringContains r.NoLabels "'images' folder replaced by 'labels'" "and the rule"
            }
            test "a set whose label files are all empty has no labels either" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore

                for f in Directory.GetFiles(Path.Combine(dir, "labels")) do
                    File.WriteAllText(f, "")

                Expect.stringContains (LabelScan.Scan(Path.Combine(dir, "list.txt"), 1).NoLabels) "empty" "all empty"
            }
            test "a share of images without label files is a warning with the count and the first files" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let _, r = scanOf dir
                Expect.isNull r.NoLabels "labels found"
                let missing = Path.Combine(dir, "labels", "c.txt")
                Expect.sequenceEqual r.MissingLabels [ missing ] "the missing label file"
                Expect.exists r.Warnings (fun w -> w.Contains "1 of 3 images have no label file" && w.Contains missing) "warned"
            }
            test "a folder where a label file should be is an error naming it" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                Directory.CreateDirectory(Path.Combine(dir, "labels", "c.txt")) |> ignore
                let r = LabelScan.Scan(Path.Combine(dir, "list.txt"), 1)
                Expect.exists r.Errors (fun e -> e.File = Path.Combine(dir, "labels", "c.txt") && e.Reason.Contains "a folder") "named"
            }
            test "the cache sees a label edited without changing its size or time" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let list, first = scanOf dir
                Expect.isTrue (LabelScan.Scan(list, 1).FromCache) "cached"
                let label = Path.Combine(dir, "labels", "a.txt")
                let time = File.GetLastWriteTimeUtc label
                let text = File.ReadAllText label
                // the centre moves from 0.390625 to 0.290625: same length, same time
                File.WriteAllText(label, text.Replace("0.390625", "0.290625"))
                File.SetLastWriteTimeUtc(label, time)
                let r = LabelScan.Scan(list, 1)
                Expect.isFalse r.FromCache "rescanned"
                Expect.floatClose Accuracy.high r.Items[0].Labels[0].Cx 0.290625 "the new row"
                Expect.floatClose Accuracy.high first.Items[0].Labels[0].Cx 0.390625 "the old one before"
            }
            test "a corrupt image is skipped with a warning and counted; it stays skipped when read from the cache" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                makeDataset dir |> ignore
                let png = Path.Combine(dir, "images", "b.png")
                let bytes = File.ReadAllBytes png
                File.WriteAllBytes(png, bytes[.. bytes.Length / 2])
                let list = Path.Combine(dir, "list.txt")

                for pass in [ "scan"; "cache" ] do
                    let r = LabelScan.Scan(list, 1)
                    Expect.equal (r.FromCache, r.Items.Count, r.Skipped.Count) ((pass = "cache"), 2, 1) pass
                    Expect.stringContains r.Summary "skipped 1 corrupt" pass
                    Expect.exists r.Warnings (fun w -> w.StartsWith(png + ": truncated image")) pass

                let report = DatasetTools.CheckData(Path.Combine(dir, "set.data"))
                Expect.exists report.Errors (fun e -> e.StartsWith(png + ": truncated image")) "check-data reports it as an error"
            }
            test "an image above the pixel limit is an error of the scan, also when its size comes from the cache" {
                let dir, cleanup = tempDir ()
                use _ = cleanup
                let list, _ = scanOf dir

                withLimit 1000L (fun () ->
                    let r = LabelScan.Scan(list, 1)
                    Expect.equal r.Errors.Count 3 "every 64 × 48 image is above 1000 pixels"
                    Expect.stringContains (string r.Errors[0]) "above the limit of 1,000" "says why")
            }
        ]

let tests = testList "image-check" [ decoding; scanning ]
