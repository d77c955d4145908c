/// Detections out: detect's sources (paths, folders, globs, lists, videos), yolov5's save options, the lazy C#
/// streams, and pseudo-labelling (detect --save-txt, then train on those labels).
module YoloSpp.Tests.Detection.DetectSourcesTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Model
open YoloSpp.Platform
open YoloSpp.Training
open YoloSpp.Tests
open YoloSpp.Tests.BuildTests

let private hasFfmpeg =
    lazy
        (try
            use p =
                Process.Start(ProcessStartInfo("ffmpeg", "-version", RedirectStandardOutput = true, RedirectStandardError = true))

            p.StandardOutput.ReadToEnd() |> ignore
            p.WaitForExit()
            p.ExitCode = 0
         with _ ->
             false)

let private requireFfmpeg () =
    if not hasFfmpeg.Value then
        skiptest "ffmpeg is not installed (apt-get install ffmpeg)"

let private ffmpeg (args: string list) =
    let code, out, err =
        runProcess "ffmpeg" ("-hide_banner" :: "-loglevel" :: "error" :: "-y" :: args) TestUtil.repoRoot

    Expect.equal code 0 (sprintf "ffmpeg %A: %s%s" args out err)

/// 60 shapes images of 96 px saved as PNG frames (lossless), a tiny-spp model with random weights.
type private Fixture =
    {
        Dir: string
        Frames: string[]
        Cfg: string
        Weights: string
        Names: string
        Data: string
    }

let private fixture =
    lazy
        (let dir = TestUtil.fixtureDir "yolospp-detect-src-"

         let s =
             ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "shapes"), Train = 8, Val = 60, Size = 96, Seed = 11))

         let frames = Directory.CreateDirectory(Path.Combine(dir, "frames")).FullName

         let pngs =
             Directory.GetFiles(Path.Combine(s.Directory, "images", "val"))
             |> Array.sort
             |> Array.mapi (fun i jpg ->
                 let png = Path.Combine(frames, sprintf "f%03d.png" i)
                 (RgbImage.Load jpg).Save png
                 png)

         let cfg = Path.Combine(dir, "tiny-spp-5.cfg")
         ModelCfg.WriteWithClasses(TestUtil.goldenFile "tiny-spp.cfg", cfg, 5)
         let weights = Path.Combine(dir, "random.safetensors")
         Backend.Initialize()
         TorchSharp.torch.manual_seed 1L |> ignore

         (use model = DarkNet.FromCfgFile cfg
          ModelWeights.Save(model, weights))

         {
             Dir = dir
             Frames = pngs
             Cfg = cfg
             Weights = weights
             Names = Path.Combine(s.Directory, "shapes.names")
             Data = s.DataFile
         })

/// The 60 frames as a 10 fps video that keeps every RGB value (libx264rgb at qp 0): decoded, its frames are the PNGs' pixels.
let private losslessVideo (f: Fixture) (video: string) =
    ffmpeg
        [
            "-framerate"
            "10"
            "-i"
            Path.Combine(f.Dir, "frames", "f%03d.png")
            "-c:v"
            "libx264rgb"
            "-qp"
            "0"
            video
        ]

let private detect (f: Fixture) (extra: string list) =
    yolospp (
        [
            "detect"
            "--cfg"
            f.Cfg
            "--weights"
            f.Weights
            "--names"
            f.Names
            "--img-size"
            "64"
            "--conf"
            "0.001"
        ]
        @ extra
    )

let private expansionTests =
    testList
        "sources"
        [
            test "files, folders, globs and lists expand in a fixed order; each bad source is named" {
                let f = fixture.Force()
                let dir = Directory.CreateDirectory(Path.Combine(f.Dir, "expand")).FullName
                let sub = Directory.CreateDirectory(Path.Combine(dir, "a", "b")).FullName

                for name in [ "z.jpg"; "y.png"; "clip.mp4"; "notes.md" ] do
                    File.WriteAllText(Path.Combine(dir, "a", name), "x")

                File.WriteAllText(Path.Combine(sub, "deep.jpg"), "x")
                let list = Path.Combine(dir, "list.txt")

                File.WriteAllText(
                    list,
                    "# images\na/z.jpg\n\nmissing.jpg\na/notes.md\n"
                    + Path.Combine(sub, "deep.jpg")
                    + "\n"
                )

                let a = Path.Combine(dir, "a")

                let e =
                    DetectSources.Expand(
                        [
                            a
                            Path.Combine(dir, "a", "*.jpg")
                            list
                            Path.Combine(dir, "none")
                            Path.Combine(dir, "*.gif")
                        ]
                    )

                let files =
                    e.Files
                    |> Seq.map (fun s -> Path.GetRelativePath(dir, s.Path), s.Kind)
                    |> Seq.toList

                Expect.equal
                    files
                    [
                        "a/clip.mp4", SourceKind.Video
                        "a/y.png", SourceKind.Image
                        "a/z.jpg", SourceKind.Image
                        "a/b/deep.jpg", SourceKind.Image
                    ]
                    "the folder's media sorted, each file once; the list's new entry after"

                let problems = e.Problems |> Seq.map string |> Seq.toList
                Expect.equal problems.Length 4 (sprintf "%A" problems)
                Expect.stringContains problems[0] (list + ":4: no such file") "a list's missing entry: list and line"
                Expect.stringContains problems[1] (list + ":5:") "a list's non-image entry"
                Expect.stringContains problems[2] "none: no such file or folder" "a missing path"
                Expect.stringContains problems[3] "*.gif: the pattern matches no image or video" "an empty glob"
                let r = DetectSources.Expand([ a ], recursive = true)
                Expect.equal r.Files.Count 4 "--recursive reads a/b too"
            }
            test "detect: several sources, a quoted glob, a list; one bad source is skipped and counted, exit 0" {
                let f = fixture.Force()
                let out = Path.Combine(f.Dir, "multi")
                let list = Path.Combine(f.Dir, "two.txt")
                File.WriteAllText(list, String.Join("\n", f.Frames[2..3]))

                let code, stdout, err =
                    detect
                        f
                        [
                            "--source"
                            f.Frames[0]
                            Path.Combine(f.Dir, "frames", "f05*.png")
                            list
                            Path.Combine(f.Dir, "nothing.jpg")
                            "--out"
                            out
                        ]

                Expect.equal code 0 err
                Expect.stringContains err "nothing.jpg: no such file or folder" "named"
                Expect.stringContains stdout "13 images" stdout
                Expect.stringContains stdout "1 sources skipped" stdout

                let images =
                    use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "detections.json")))

                    [
                        for e in doc.RootElement.EnumerateArray() -> Path.GetFileName(e.GetProperty("image").GetString())
                    ]

                Expect.equal
                    images
                    ([ "f000.png" ]
                     @ [ for i in 50..59 -> sprintf "f%03d.png" i ]
                     @ [ "f002.png"; "f003.png" ])
                    "sources in order, each one's files sorted"

                let code, _, err =
                    detect f [ "--source"; Path.Combine(f.Dir, "nothing.jpg"); "--out"; out ]

                Expect.equal code 2 "nothing readable: exit 2"
                Expect.stringContains err "no such file or folder" err
            }
            test "--save-txt/--save-conf/--save-json/--save-crop, --classes, --max-det, --agnostic-nms" {
                let f = fixture.Force()
                let out = Path.Combine(f.Dir, "saves")

                let code, _, err =
                    detect
                        f
                        [
                            "--source"
                            f.Frames[0]
                            f.Frames[1]
                            "--out"
                            out
                            "--save-txt"
                            "--save-conf"
                            "--save-json"
                            "--save-crop"
                            "--classes"
                            "1"
                            "3"
                            "--max-det"
                            "7"
                            "--agnostic-nms"
                        ]

                Expect.equal code 0 err
                let rows = File.ReadAllLines(Path.Combine(out, "labels", "f000.txt"))
                Expect.isTrue (rows.Length > 0 && rows.Length <= 7) (sprintf "1..7 rows: %d" rows.Length)

                for row in rows do
                    let p = row.Split ' '
                    Expect.equal p.Length 6 "class, box, score"
                    Expect.contains [ "1"; "3" ] p[0] "only --classes"

                    for v in p[1..] do
                        let x = Double.Parse(v, Globalization.CultureInfo.InvariantCulture)
                        Expect.isTrue (x >= 0.0 && x <= 1.0) "normalised"

                use doc =
                    JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "predictions.json")))

                let first = doc.RootElement[0]
                Expect.equal (first.GetProperty("image_id").GetString()) "f000" "image id: the file name"
                Expect.contains [ 2; 4 ] (first.GetProperty("category_id").GetInt32()) "category = class + 1"
                Expect.equal (first.GetProperty("bbox").GetArrayLength()) 4 "xywh"

                let crops =
                    Directory.GetFiles(Path.Combine(out, "crops"), "*.jpg", SearchOption.AllDirectories)

                Expect.equal crops.Length (rows.Length + File.ReadAllLines(Path.Combine(out, "labels", "f001.txt")).Length) "one crop per box"
            }
        ]

let private videoTests =
    testList
        "video"
        [
            test "a 60-frame video gives, frame for frame, the detections of its frames as images (lossless codec)" {
                requireFfmpeg ()
                let f = fixture.Force()
                let video = Path.Combine(f.Dir, "clip.mp4")
                losslessVideo f video

                let out = Path.Combine(f.Dir, "video-out")

                let code, stdout, err =
                    detect f [ "--source"; Path.Combine(f.Dir, "frames"); video; "--out"; out; "--save-txt" ]

                Expect.equal code 0 err
                Expect.stringContains stdout "60 images, 60 frames of 1 videos" stdout
                let labels = Path.Combine(out, "labels")

                for i in 0..59 do
                    let still = File.ReadAllText(Path.Combine(labels, sprintf "f%03d.txt" i))
                    let frame = File.ReadAllText(Path.Combine(labels, sprintf "clip_%d.txt" i))
                    Expect.equal frame still (sprintf "frame %d" i)

                Expect.isTrue (File.ReadAllText(Path.Combine(labels, "f000.txt")).Length > 0) "boxes to compare"
                let info = VideoFile.Probe(Path.Combine(out, "clip.mp4"))
                Expect.equal (info.Width, info.Height) (96, 96) "the annotated video's size"
                Expect.equal info.FrameCount (Nullable 60L) "every frame written"
                // every 5th frame
                let out5 = Path.Combine(f.Dir, "video-out5")

                let code, _, err =
                    detect f [ "--source"; video; "--out"; out5; "--save-txt"; "--vid-stride"; "5" ]

                Expect.equal code 0 err

                let written =
                    Directory.GetFiles(Path.Combine(out5, "labels"))
                    |> Array.map Path.GetFileName
                    |> Array.sort

                Expect.equal written ([| for i in 0..5..55 -> sprintf "clip_%d.txt" i |] |> Array.sort) "frames 0, 5, ..., 55"

                for i in 0..5..55 do
                    Expect.equal
                        (File.ReadAllText(Path.Combine(out5, "labels", sprintf "clip_%d.txt" i)))
                        (File.ReadAllText(Path.Combine(labels, sprintf "f%03d.txt" i)))
                        (sprintf "strided frame %d" i)
            }
            test "not a video: named, skipped; a video file that is text exits 2" {
                requireFfmpeg ()
                let f = fixture.Force()
                let fake = Path.Combine(f.Dir, "fake.mp4")
                File.WriteAllText(fake, "hello, not a video")

                let code, _, err =
                    detect f [ "--source"; fake; "--out"; Path.Combine(f.Dir, "fake-out") ]

                Expect.equal code 2 err
                Expect.stringContains err (fake + ": not a readable video") err
                Expect.isFalse (err.Contains "   at ") "no stack trace"
            }
            test "C#: Detect(IEnumerable) and DetectVideo stream lazily; leaving early stops ffmpeg" {
                requireFfmpeg ()
                let f = fixture.Force()
                let video = Path.Combine(f.Dir, "api.mp4")

                losslessVideo f video

                use detector =
                    Detector.Load(f.Cfg, f.Weights, f.Names, DetectorOptions(ImageSize = Nullable 64, ConfThreshold = 0.001))

                let stream =
                    detector.Detect([ f.Frames[0]; video; Path.Combine(f.Dir, "gone.png") ])

                let items =
                    Threading.Tasks.TaskAsyncEnumerableExtensions.ToBlockingEnumerable stream
                    |> Seq.map (fun i -> i.Path, i.Kind, i.Frame, i.Ok, (if i.Ok then i.Result.Detections.Count else -1))
                    |> Seq.toArray

                Expect.equal items.Length 62 "a problem, an image, 60 frames"
                let _, _, _, ok0, _ = items[0]
                Expect.isFalse ok0 "the missing file first, as an error item"
                let _, _, _, _, stillCount = items[1]
                let _, kind, frame, _, frameCount = items[2]
                Expect.equal (kind, frame) (Nullable SourceKind.Video, 0) "the first frame"
                Expect.equal frameCount stillCount "frame 0 = the image"
                // the decoded pixels are the PNGs' (every 5th frame, read slowly: none lost at the end)
                let strided =
                    VideoFile.Frames(video, VideoFile.Probe video, 5)
                    |> Threading.Tasks.TaskAsyncEnumerableExtensions.ToBlockingEnumerable
                    |> Seq.map (fun (struct (k: int, image: RgbImage)) ->
                        Threading.Thread.Sleep 20
                        k, image.Pixels)
                    |> Seq.toArray

                Expect.equal (Array.map fst strided) [| 0..5..55 |] "frames 0, 5, ..., 55"

                for k, pixels in strided do
                    Expect.isTrue (pixels = (RgbImage.Load f.Frames[k]).Pixels) (sprintf "frame %d: the PNG's pixels" k)

                // leave after three frames: ffmpeg must not outlive the loop
                let e = detector.DetectVideo(video).GetAsyncEnumerator()

                for _ in 1..3 do
                    Expect.isTrue (e.MoveNextAsync().AsTask().Result) "a frame"

                e.DisposeAsync().AsTask().Wait()
                Threading.Thread.Sleep 200

                let decoding =
                    Process.GetProcessesByName "ffmpeg"
                    |> Array.filter (fun p ->
                        try
                            File.ReadAllText(sprintf "/proc/%d/cmdline" p.Id).Contains video
                        with _ ->
                            false)

                Expect.isEmpty decoding "no ffmpeg left decoding the video"
            }
        ]

let private pseudoLabelTests =
    testList
        "pseudo-labels"
        [
            test "detect --save-txt on images, the labels beside them, then train on those labels" {
                let f = fixture.Force()
                let dir = Directory.CreateDirectory(Path.Combine(f.Dir, "pseudo")).FullName
                let images = Directory.CreateDirectory(Path.Combine(dir, "images")).FullName

                for png in f.Frames[0..11] do
                    File.Copy(png, Path.Combine(images, Path.GetFileName png))

                let out = Path.Combine(dir, "det")

                let code, _, err =
                    detect f [ "--source"; images; "--out"; out; "--save-txt"; "--max-det"; "5" ]

                Expect.equal code 0 err
                // the label rule: images/x.png -> labels/x.txt
                Directory.Move(Path.Combine(out, "labels"), Path.Combine(dir, "labels"))
                let data = Path.Combine(dir, "pseudo.yaml")
                File.WriteAllText(data, sprintf "train: images\nval: images\nnames: [%s]\n" (String.Join(", ", File.ReadAllLines f.Names)))
                let scan = DatasetTools.ScanLabels(images, 5, false)
                Expect.isEmpty scan.Errors "the pseudo-labels are valid label files"
                Expect.isTrue (scan.Found > 0) "some images got labels"

                let r =
                    Trainer(Tiny.Options(f.Cfg, data, Path.Combine(dir, "run"), epochs = 1, noTest = true)).Run()

                Expect.equal r.EpochsDone 1 "trained on the pseudo-labels"
            }
        ]

let tests =
    testList "detections out" [ expansionTests; videoTests; pseudoLabelTests ]
