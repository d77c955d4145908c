/// The trainer's validation loss (yolov5's val.py: the training loss on the validation batches in eval mode),
/// against the batches' losses computed independently.
module YoloSpp.Tests.Training.ValidationLossTests

open System
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Evaluation
open YoloSpp.Training
open YoloSpp.Tests

/// A tiny shapes set (12 train, 4 val images at 64 px) and the tiny cfg for it, in a temp folder removed after.
let private withTiny (f: string -> string -> string -> unit) =
    let dir = (Directory.CreateTempSubdirectory "yolospp-valloss-").FullName

    try
        f dir (tinyShapes dir 12 4 3) (tinyCfg dir)
    finally
        try
            Directory.Delete(dir, true)
        with _ ->
            ()

let tests =
    testList
        "validation loss"
        [
            test "the validation loss is the training loss of the validation batches in eval mode, the mean per batch" {
                withTiny (fun dir data cfg ->
                    let o = Tiny.Options(cfg, data, Path.Combine(dir, "run"))
                    let d = TrainSteps.Data o
                    use model = TrainSteps.Model(o, d, torch.CPU)
                    let loss = TrainSteps.Loss(model, d, torch.CPU)

                    let r =
                        Evaluator.EvaluateWithLoss(
                            model,
                            d.Valid,
                            torch.CPU,
                            EvaluationOptions(),
                            d.ClassNames,
                            (fun raw targets ->
                                let v = loss.Compute(raw, targets).ToValues()
                                struct (v.Box, v.Objectness, v.Class)),
                            Threading.CancellationToken.None
                        )

                    // independently: every validation batch through the network in eval mode and the loss
                    model.eval ()
                    let sums = Array.zeroCreate 3
                    let mutable batches = 0

                    for batch in YoloDataLoader(d.Valid).Epoch(0) do
                        use _ = batch
                        use _ = torch.no_grad ()
                        let v = loss.Compute(model.forward(batch.Images).Raw, batch.Targets).ToValues()
                        sums.[0] <- sums.[0] + v.Box
                        sums.[1] <- sums.[1] + v.Objectness
                        sums.[2] <- sums.[2] + v.Class
                        batches <- batches + 1

                    let l = r.Loss.Value
                    Expect.isGreaterThan batches 0 "validation batches"

                    for actual, expected, what in
                        [
                            l.Box, sums.[0] / float batches, "box"
                            l.Objectness, sums.[1] / float batches, "objectness"
                            l.Class, sums.[2] / float batches, "class"
                        ] do
                        Expect.floatClose Accuracy.veryHigh actual expected what

                    Expect.floatClose Accuracy.veryHigh l.Total (l.Box + l.Objectness + l.Class) "total")
            }
        ]
