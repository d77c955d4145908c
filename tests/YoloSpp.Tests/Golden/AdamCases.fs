/// Golden kind `adam` (this repository's own, see tests/golden/LOCAL-KINDS.md): the trainer's Adam and AdamW against
/// torch.optim.Adam / torch.optim.AdamW with yolov5's parameter groups, step by step: parameters and both moments to
/// abs 1e-6, per-parameter step counts exactly.
module YoloSpp.Tests.Golden.AdamCases

open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp.Training
open YoloSpp.Tests.Golden.Json

let run (case: JsonElement) =
    use _ = torch.NewDisposeScope()
    let shapes = items (prop "shapes" case) |> Array.map shapeOf
    let flat (e: JsonElement) (s: int64[]) = tensorAs torch.float32 (Some s) e
    let decays = items (prop "decay" case) |> Array.map (fun d -> d.GetBoolean())

    let ps =
        Array.map2 (fun e s -> new Modules.Parameter((flat e s).detach (), requires_grad = true)) (items (prop "initial" case)) shapes

    use adam =
        new Adam(
            ps,
            0.0,
            beta1 = num "beta1" case,
            beta2 = num "beta2" case,
            eps = num "eps" case,
            weightDecay = num "weight_decay" case,
            decoupled = (prop "decoupled_weight_decay" case).GetBoolean(),
            decays = decays
        )

    let moment (what: string) (k: int) (i: int) (mine: torch.Tensor) (e: JsonElement) =
        match mine, e.ValueKind with
        | null, JsonValueKind.Null -> ()
        | null, _ -> failtestf "step %d: parameter %d has no %s, PyTorch has one" k i what
        | _, JsonValueKind.Null -> failtestf "step %d: parameter %d has a %s, PyTorch has none" k i what
        | m, _ -> close (sprintf "step %d %s %d" k what i) 1e-6 0.0 m (flat e shapes.[i])

    for k, step in Array.indexed (items (prop "steps" case)) do
        adam.LearningRate <- num "lr" step

        for i, g in Array.indexed (items (prop "grads" step)) do
            ps.[i].grad <-
                (if g.ValueKind = JsonValueKind.Null then
                     null
                 else
                     flat g shapes.[i])

        adam.Step()

        for i, e in Array.indexed (items (prop "params" step)) do
            close (sprintf "step %d param %d" k i) 1e-6 0.0 ps.[i] (flat e shapes.[i])

        for i, e in Array.indexed (items (prop "exp_avg" step)) do
            moment "first moment" k i adam.ExpAvg.[i] e

        for i, e in Array.indexed (items (prop "exp_avg_sq" step)) do
            moment "second moment" k i adam.ExpAvgSq.[i] e

        let steps = items (prop "step" step) |> Array.map (fun s -> s.GetInt64())
        Expect.sequenceEqual adam.ParameterSteps steps (sprintf "step %d: per-parameter step counts" k)
