/// Golden kind `adam` (this repository's own, see tests/golden/LOCAL-KINDS.md): the trainer's Adam and AdamW against
/// torch.optim.Adam / torch.optim.AdamW with yolov5's parameter groups, step by step: parameters and both moments to
/// abs 1e-6, per-parameter step counts exactly.
module YoloSpp.Tests.Golden.AdamCases

open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp.Training
open YoloSpp.Tests.Golden.Json
open YoloSpp.Tests.Golden.SgdCases

let run (case: JsonElement) =
    let decays = items (prop "decay" case) |> Array.map (fun d -> d.GetBoolean())

    replay
        case
        (fun ps ->
            new Adam(
                ps,
                0.0,
                beta1 = num "beta1" case,
                beta2 = num "beta2" case,
                eps = num "eps" case,
                weightDecay = num "weight_decay" case,
                decoupled = (prop "decoupled_weight_decay" case).GetBoolean(),
                decays = decays
            ))
        (fun adam k step shapes ->
            for i, e in Array.indexed (items (prop "exp_avg" step)) do
                stateClose "first moment" k i adam.ExpAvg.[i] e shapes.[i]

            for i, e in Array.indexed (items (prop "exp_avg_sq" step)) do
                stateClose "second moment" k i adam.ExpAvgSq.[i] e shapes.[i]

            let steps = items (prop "step" step) |> Array.map (fun s -> s.GetInt64())
            Expect.sequenceEqual adam.ParameterSteps steps (sprintf "step %d: per-parameter step counts" k))
