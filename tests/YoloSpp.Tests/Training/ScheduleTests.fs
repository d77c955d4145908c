/// The schedules of train.py: accumulation, warmup length, cosine.
module YoloSpp.Tests.Training.ScheduleTests

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
        "schedule"
        [
            test "accumulate = max(round(64 / batch), 1) with Python's half-to-even rounding" {
                Expect.equal ([ 1; 3; 4; 16; 64; 128; 256 ] |> List.map Schedule.accumulate) [ 64; 21; 16; 4; 1; 1; 1 ] "accumulate"
            }
            test "warmup lasts min(1000, batches - 1) iterations" {
                Expect.equal (Schedule.warmupIterations 50) 49 "short epoch"
                Expect.equal (Schedule.warmupIterations 5000) 1000 "long epoch"
            }
            test "cosine goes from 1 to lrf" {
                Expect.floatClose Accuracy.veryHigh (Schedule.cosine 30 0.01 0) 1.0 "start"
                Expect.floatClose Accuracy.veryHigh (Schedule.cosine 30 0.01 30) 0.01 "end"
            }
        ]
