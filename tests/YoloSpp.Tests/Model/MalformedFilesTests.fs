/// Weights, checkpoint, hyp and COCO files that are malformed or hostile: each an error naming the file and the fault
/// (SafetensorsCheck, Checkpoint, DarknetWeights, Hyp's nesting limit), and COCO inputs pycocotools takes silently
/// reported by CocoLint.
module YoloSpp.Tests.Model.MalformedFilesTests

open System
open System.IO
open System.IO.Compression
open System.Text
open Expecto
open YoloSpp
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests

/// Header length, header text, data.
let private st (length: uint64) (header: string) (data: byte[]) =
    new MemoryStream(Array.concat [ BitConverter.GetBytes length; Encoding.UTF8.GetBytes header; data ])

let private sized (header: string) (data: byte[]) =
    st (uint64 (Encoding.UTF8.GetByteCount header)) header data

let private tensor (dtype: string) (shape: string) (offsets: string) =
    sprintf """{"w":{"dtype":"%s","shape":%s,"data_offsets":%s}}""" dtype shape offsets

let safetensors =
    testList
        "safetensors"
        [
            test "each broken layout is refused with its reason, before the reader sees it" {
                let cases =
                    [
                        "empty", new MemoryStream(), "too short"
                        "5 bytes", new MemoryStream(Array.zeroCreate 5), "too short"
                        "header past the end", st 1000UL "{}" [||], "runs past the end"
                        "header length 2^63", st (1UL <<< 63) "{}" [||], "runs past the end"
                        "not JSON", sized "hello" [||], "not JSON"
                        "a JSON array", sized "[1, 2]" [||], "not a JSON object"
                        "unknown dtype", sized (tensor "Q7" "[2]" "[0, 2]") (Array.zeroCreate 2), "unknown dtype"
                        "negative size", sized (tensor "F32" "[-2]" "[0, 8]") (Array.zeroCreate 8), "whole number >= 0"
                        "fractional size", sized (tensor "F32" "[2.5]" "[0, 8]") (Array.zeroCreate 8), "whole number >= 0"
                        "offsets reversed", sized (tensor "F32" "[2]" "[8, 0]") (Array.zeroCreate 8), "0 <= begin <= end"
                        "offsets past the data", sized (tensor "F32" "[2, 2]" "[0, 16]") (Array.zeroCreate 8), "truncated"
                        "size against offsets", sized (tensor "F32" "[3]" "[0, 8]") (Array.zeroCreate 8), "needs 12 bytes"
                        "[1e9, 1e9] of F64", sized (tensor "F64" "[1000000000, 1000000000]" "[0, 8]") (Array.zeroCreate 8), "needs"
                        "a shape that overflows", sized (tensor "F32" "[4294967296, 4294967296, 4]" "[0, 8]") (Array.zeroCreate 8), "more elements"
                        "no data_offsets", sized """{"w":{"dtype":"F32","shape":[2]}}""" [||], "data_offsets"
                        "a tensor that is a number", sized """{"w":3}""" [||], "not an object"
                        "nested 100 deep", sized (String('[', 100) + String(']', 100)) [||], "not JSON"
                    ]

                for name, stream, reason in cases do
                    use s = stream

                    let message =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> SafetensorsCheck.Check(s, "w.safetensors"))

                    Expect.stringStarts message "w.safetensors: " (name + ": names the file")
                    Expect.stringContains message reason name
            }
            test "a file the network wrote passes and loads; metadata is allowed" {
                Export.OnnxTests.withTempDir (fun dir ->
                    let path = Path.Combine(dir, "w.safetensors")
                    use m = DarkNet.FromCfgFile(TestUtil.goldenFile "tiny-spp.cfg")
                    ModelWeights.Save(m, path)
                    let state = SafetensorsCheck.Load path
                    Expect.equal state.Count (m.state_dict().Count) "every tensor"
                    use s = sized """{"__metadata__":{"format":"pt"}}""" [||]
                    SafetensorsCheck.Check(s, "meta.safetensors"))
            }
        ]

let checkpoints =
    testList
        "checkpoints and .weights"
        [
            test "a checkpoint whose meta.json holds damaged compressed data is an error naming the entry" {
                Export.OnnxTests.withTempDir (fun dir ->
                    let path = Path.Combine(dir, "bad.ckpt")

                    (use zip = ZipFile.Open(path, ZipArchiveMode.Create)
                     use e = zip.CreateEntry("meta.json", CompressionLevel.Optimal).Open()
                     e.Write(Encoding.UTF8.GetBytes(String('x', 5000))))
                    // flip bytes inside the deflate stream (after the 30-byte local header and the name)
                    let bytes = File.ReadAllBytes path

                    for i in 40..50 do
                        bytes[i] <- 0xFFuy

                    File.WriteAllBytes(path, bytes)

                    let message =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> CheckpointFile.ReadInfo path |> ignore)

                    Expect.stringContains message path "names the checkpoint"
                    Expect.stringContains message "meta.json" "and the entry")
            }
            test "a Darknet header cut inside its 64-bit 'seen' is an error, not an index exception" {
                Export.OnnxTests.withTempDir (fun dir ->
                    let path = Path.Combine(dir, "short.weights")
                    // version 0.2: seen is 8 bytes at 12, the file ends at 18
                    File.WriteAllBytes(
                        path,
                        Array.concat
                            [
                                BitConverter.GetBytes 0
                                BitConverter.GetBytes 2
                                BitConverter.GetBytes 0
                                Array.zeroCreate 6
                            ]
                    )

                    use m = DarkNet.FromCfgFile(TestUtil.goldenFile "tiny-spp.cfg")

                    let message =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> ModelWeights.Load(m, path) |> ignore)

                    Expect.stringContains message "too short" "says why")
            }
        ]

let hyp =
    testList
        "hyp nesting"
        [
            test "nesting beyond 64 levels is refused with its line; a value nested less deep is only 'expected a number'" {
                let deep = "giou: 1\ncls: " + String('[', 65) + String(']', 65) + "\n"

                match Hyp.parse "h.yaml" deep with
                | Error [ e ] -> Expect.equal (e.Line, e.Reason.Contains "nested more than 64") (2, true) (string e)
                | other -> failtestf "%A" other

                match Hyp.parse "h.yaml" ("giou: " + String('[', 60) + String(']', 60) + "\n") with
                | Error es -> Expect.exists es (fun e -> e.Reason.Contains "expected a number") "the usual error"
                | Ok _ -> failtest "a list is no number"
            }
        ]

let coco =
    let gt (annotations: string) (images: string) =
        CocoJson.parseGroundTruth
            "gt.json"
            (sprintf """{"images":[%s],"categories":[{"id":1,"name":"a"},{"id":2,"name":"b"}],"annotations":[%s]}""" images annotations)
        |> function
            | Ok g -> g
            | Error e -> failtest e

    let ann id image cat (w: float) =
        sprintf """{"id":%d,"image_id":%d,"category_id":%d,"bbox":[1,1,%g,5],"area":5,"iscrowd":0}""" id image cat w

    let img id =
        sprintf """{"id":%d,"width":100,"height":100}""" id

    testList
        "coco inputs"
        [
            test "clean inputs have no problems" {
                let g = gt (String.Join(",", [ ann 1 1 1 5.0; ann 2 1 2 5.0 ])) (img 1)
                Expect.isEmpty (CocoLint.groundTruth "gt.json" g) "ground truth"

                let d =
                    [|
                        {
                            ImageId = 1L
                            CategoryId = 1L
                            Bbox = { X = 1.0; Y = 1.0; W = 5.0; H = 5.0 }
                            Score = 0.9
                        }
                    |]

                Expect.isEmpty (CocoLint.detections "dt.json" g d) "detections"
            }
            test "each problem is named with its entry; many of a kind are capped with a count" {
                let anns =
                    [ ann 1 1 1 5.0; ann 1 1 1 5.0; ann 2 1 1 -3.0; ann 3 9 1 5.0; ann 4 1 7 5.0 ]

                let g = gt (String.Join(",", anns)) (String.Join(",", [ img 1; img 1 ]))
                let problems = CocoLint.groundTruth "gt.json" g

                for m in
                    [
                        "image id 1 is used twice"
                        "annotation id 1 is used twice"
                        "annotations[2] (id 2): bbox -3x5 has a negative size"
                        "annotations[3] (id 3): image_id 9 is not in images"
                        "annotations[4] (id 4): category_id 7 is not in categories"
                    ] do
                    Expect.exists problems (fun p -> p.StartsWith "gt.json: " && p.Contains m) m

                let many = gt (String.Join(",", [ for i in 1..12 -> ann i 5 1 5.0 ])) (img 1)
                let lines = CocoLint.groundTruth "gt.json" many
                Expect.equal lines.Length (CocoLint.ShownPerKind + 1) "five and a count"
                Expect.stringContains (List.last lines) "and 7 more" "the count"

                let d =
                    [|
                        {
                            ImageId = 1L
                            CategoryId = 5L
                            Bbox = { X = 1.0; Y = 1.0; W = -1.0; H = 5.0 }
                            Score = 0.9
                        }
                    |]

                let dp = CocoLint.detections "dt.json" many d
                Expect.exists dp (fun p -> p.Contains "category_id 5 is not a category") "unknown category"
                Expect.exists dp (fun p -> p.Contains "negative size") "negative detection"
            }
        ]

let tests = testList "malformed-files" [ safetensors; checkpoints; hyp; coco ]
