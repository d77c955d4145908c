/// Golden kind `sgd` (this repository's own, see tests/golden/LOCAL-KINDS.md): the trainer's SGD against
/// torch.optim.SGD step by step, parameters and momentum buffers to abs 1e-6.
module YoloSpp.Tests.Golden.SgdCases

open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests.Golden.Json

let run (case: JsonElement) =
    use _ = torch.NewDisposeScope()
    let shapes = items (prop "shapes" case) |> Array.map shapeOf
    let flat (e: JsonElement) (s: int64[]) = tensorAs torch.float32 (Some s) e

    let ps =
        Array.map2 (fun e s -> new Modules.Parameter((flat e s).detach (), requires_grad = true)) (items (prop "initial" case)) shapes

    use sgd =
        new Sgd(
            ps,
            0.0,
            momentum = num "momentum" case,
            weightDecay = num "weight_decay" case,
            nesterov = (prop "nesterov" case).GetBoolean(),
            dampening = num "dampening" case
        )

    for k, step in Array.indexed (items (prop "steps" case)) do
        sgd.LearningRate <- num "lr" step

        for i, g in Array.indexed (items (prop "grads" step)) do
            ps.[i].grad <-
                (if g.ValueKind = JsonValueKind.Null then
                     null
                 else
                     flat g shapes.[i])

        sgd.Step()

        for i, e in Array.indexed (items (prop "params" step)) do
            close (sprintf "step %d param %d" k i) 1e-6 0.0 ps.[i] (flat e shapes.[i])

        for i, e in Array.indexed (items (prop "momentum_buffers" step)) do
            match sgd.MomentumBuffers.[i], e.ValueKind with
            | null, JsonValueKind.Null -> ()
            | null, _ -> failtestf "step %d: parameter %d has no momentum buffer, PyTorch has one" k i
            | _, JsonValueKind.Null -> failtestf "step %d: parameter %d has a momentum buffer, PyTorch has none" k i
            | b, _ -> close (sprintf "step %d momentum buffer %d" k i) 1e-6 0.0 b (flat e shapes.[i])
