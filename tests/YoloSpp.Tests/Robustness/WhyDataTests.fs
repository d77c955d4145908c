/// Robustness cases about datasets and run folders: no labels, corrupt images, runs that would replace another's,
/// a stale label cache.
module YoloSpp.Tests.Robustness.WhyDataTests

open System
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Text
open Expecto
open YoloSpp
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Tests
open YoloSpp.Platform
open YoloSpp.Tests.Robustness.WhyFixtures

let labels =
    testList
        "no labels"
        [
            test "a dataset under a parent folder named images finds its labels (the last images folder becomes labels)" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "images", "proj"))
                    let code, out, err = run d [ "check-data"; "--data"; data ]
                    Expect.equal code 0 err
                    Expect.stringContains out "missing 0" (sprintf "every label found:\n%s" out)
                    Expect.isFalse (out.Contains "found 0,") "labels found")
            }
            test "train on a set without a labels folder exits 2 naming where it looked, as the reference's 'No labels found'" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let labels = Path.Combine(d, "ds", "labels")
                    Directory.Delete(labels, true)
                    let out = Path.Combine(d, "run")
                    let r = run d (trainArgs data (tinyCfg d) [ "--output"; out ])
                    expectRefused r [ "no labels"; Path.Combine(labels, "train") ] "train without labels"
                    Expect.isFalse (File.Exists(Path.Combine(out, "last.ckpt"))) "nothing trained"
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ "no labels" ] "check-data without labels")
            }
            test "a folder where a label file should be is an error naming it" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let _, label = firstTrain data
                    File.Delete label
                    Directory.CreateDirectory label |> ignore
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ label ] "check-data")
            }
        ]

let images =
    testList
        "corrupt images"
        [
            test "check-data names a truncated JPEG and one with a corrupt header, and exits 2" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    truncate image 0.43
                    let other = Path.Combine(Path.GetDirectoryName image, "000001.jpg")
                    let bytes = File.ReadAllBytes other
                    // overwrite the quantisation and Huffman tables: the header is still found, the data is not decodable
                    Array.fill bytes 20 200 0x5Auy
                    File.WriteAllBytes(other, bytes)
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ image; other ] "check-data")
            }
            test "train skips a truncated JPEG with a warning naming it instead of training on its black rows" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    truncate image 0.43

                    let code, out, err =
                        run d (trainArgs data (tinyCfg d) [ "--output"; Path.Combine(d, "run"); "--notest" ])

                    Expect.equal code 0 (out + err)
                    Expect.stringContains out (image + ": truncated image") "warned, naming the image"
                    Expect.stringContains out "skipped 1 corrupt" "counted in the summary")
            }
            test "detect on a truncated JPEG exits 2 naming it and draws no black picture" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let image, _ = firstTrain data
                    truncate image 0.43
                    let cfg = tinyCfg d
                    let weights = Path.Combine(d, "w.safetensors")
                    randomWeights cfg weights
                    let out = Path.Combine(d, "det")
                    let names = Path.Combine(Path.GetDirectoryName data, "shapes.names")

                    let r =
                        run
                            d
                            [
                                "detect"
                                "--cfg"
                                cfg
                                "--weights"
                                weights
                                "--names"
                                names
                                "--source"
                                image
                                "--out"
                                out
                                "--img-size"
                                "64"
                            ]

                    expectRefused r [ image; "truncated" ] "detect"
                    Expect.isFalse (File.Exists(Path.Combine(out, "000000.jpg"))) "no annotated picture")
            }
        ]

let runs =
    testList
        "runs replaced"
        [
            test "a second train into the same --output writes to <output>2, saying so, and leaves the first run's files" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let out = Path.Combine(d, "run")
                    let code, _, err = run d (trainArgs data cfg [ "--output"; out; "--notest" ])
                    Expect.equal code 0 err
                    let first = File.ReadAllBytes(Path.Combine(out, "last.ckpt"))

                    let code, stdout, err =
                        run d (trainArgs data cfg [ "--output"; out; "--notest"; "--seed"; "7" ])

                    Expect.equal code 0 err
                    Expect.stringContains stdout (out + "2") "says where it writes"
                    Expect.isTrue (File.Exists(Path.Combine(out + "2", "last.ckpt"))) "the second run's checkpoint"
                    Expect.isTrue (File.ReadAllBytes(Path.Combine(out, "last.ckpt")) = first) "the first run's checkpoint unchanged")
            }
            test "the default runs/train gives way to runs/train2 too" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d

                    for _ in 1..2 do
                        let code, _, err = run d (trainArgs data cfg [ "--notest" ])
                        Expect.equal code 0 err

                    Expect.isTrue (File.Exists(Path.Combine(d, "runs", "train", "last.ckpt"))) "first run"
                    Expect.isTrue (File.Exists(Path.Combine(d, "runs", "train2", "last.ckpt"))) "second run")
            }
            test "two runs started together into one folder both keep their checkpoints" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let out = Path.Combine(d, "run")

                    let start seed =
                        let psi =
                            ProcessStartInfo(
                                "dotnet",
                                BuildTests.cliDll
                                :: trainArgs data cfg [ "--output"; out; "--notest"; "--seed"; string seed ],
                                WorkingDirectory = d,
                                RedirectStandardOutput = true,
                                RedirectStandardError = true
                            )

                        let p = Process.Start psi
                        let o, e = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
                        p, o, e

                    let a, b = start 1, start 2

                    for p, o, e in [ a; b ] do
                        p.WaitForExit()
                        Expect.equal p.ExitCode 0 (o.Result + e.Result)

                    let ckpts =
                        [ out; out + "2" ]
                        |> List.map (fun f -> Path.Combine(f, "last.ckpt"))
                        |> List.filter File.Exists

                    Expect.equal ckpts.Length 2 "one checkpoint per run, in two folders")
            }
            test "a temp checkpoint a killed process left is removed when its folder is resumed" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let cfg = tinyCfg d
                    let out = Path.Combine(d, "run")
                    let code, _, err = run d (trainArgs data cfg [ "--output"; out; "--notest" ])
                    Expect.equal code 0 err
                    // what AtomicFile leaves when its process is killed inside the write
                    let temp =
                        Path.Combine(out, sprintf ".last.ckpt.%d.%s.tmp" (deadPid ()) (Guid.NewGuid().ToString "N"))

                    File.WriteAllBytes(temp, Array.zeroCreate 4096)

                    let code, _, err =
                        run d (trainArgs data cfg [ "--notest"; "--weights"; Path.Combine(out, "last.ckpt"); "--epochs"; "2" ])

                    Expect.equal code 0 err
                    Expect.isFalse (File.Exists temp) "the dead process's temp file is gone")
            }
        ]

let cache =
    testList
        "stale label cache"
        [
            test "a label edited without changing its size and time is read again" {
                withDir (fun d ->
                    let data = shapes (Path.Combine(d, "ds"))
                    let code, _, err = run d [ "check-data"; "--data"; data ]
                    Expect.equal code 0 err
                    let _, label = firstLabelled data
                    let time = File.GetLastWriteTimeUtc label
                    let text = File.ReadAllText label
                    // the first row's class becomes 9 (out of range for 5 classes): same size, same time
                    File.WriteAllText(label, "9" + text.Substring 1)
                    File.SetLastWriteTimeUtc(label, time)
                    expectRefused (run d [ "check-data"; "--data"; data ]) [ label + ":1"; "class 9" ] "the edit is seen")
            }
        ]
