/// The C# façade from F#: the README's example, argument errors, hyp errors through the shell.
module YoloSpp.Tests.FacadeTests

open System
open System.IO
open Expecto
open TorchSharp
open type TorchSharp.torch.TensorIndex
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Geometry
open YoloSpp.Training
open YoloSpp.Tests

let tests =
    testList
        "csharp"
        [
            test "the README's C# example computes a GIoU and a finite loss" {
                let struct (giou, loss) = QuickStart.Example.Run()
                Expect.floatClose Accuracy.veryHigh giou 0.1388888888888889 "GIoU of the README boxes"
                Expect.isTrue (Double.IsFinite loss && loss > 0.0) (sprintf "loss %g" loss)
            }
            test "BboxIou rejects a box without four numbers" {
                Expect.throwsT<ArgumentException> (fun () -> BoxOps.BboxIou([| 1.0; 2.0; 3.0 |], [| 1.0; 2.0; 3.0; 4.0 |]) |> ignore) "3 numbers"
            }
            test "HyperParameters.Load reports every problem with file and line" {
                let f =
                    Path.Combine(Path.GetTempPath(), sprintf "yolospp-hyp-%d.yaml" (Random.Shared.Next()))

                let hypText = File.ReadAllText(Path.Combine(TestUtil.repoRoot, "cfg", "hyp.yaml"))
                File.WriteAllText(f, hypText.Replace("lr0: 0.001", "lr0: x") + "bogus: 1\n")

                try
                    let msg =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> HyperParameters.Load f |> ignore)

                    Expect.stringContains msg (f + ":") "file"
                    Expect.stringContains msg "lr0: 'x' is not a number" "lr0"
                    Expect.stringContains msg "unknown key 'bogus'" "bogus"
                finally
                    File.Delete f
            }
        ]
