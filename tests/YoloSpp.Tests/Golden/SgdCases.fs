/// Golden kind `sgd` (this repository's own, see tests/golden/LOCAL-KINDS.md): the trainer's SGD against
/// torch.optim.SGD step by step (one param group, or yolov5's groups), parameters and momentum buffers to abs 1e-6.
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

/// A case's tensor of shape `s`, as float32.
let private flat (e: JsonElement) (s: int64[]) = tensorAs torch.float32 (Some s) e

/// Shared by the optimizer kinds (`sgd`, `adam`): the case's parameters (`initial`, `shapes`), then for each of its
/// `steps` the LR and gradients set, one step, the parameters compared to abs 1e-6, and `after` given the step's index,
/// its JSON and the parameter shapes to check the optimizer's own state.
let replay<'o when 'o :> IOptimizer> (case: JsonElement) (make: Modules.Parameter[] -> 'o) (after: 'o -> int -> JsonElement -> int64[][] -> unit) =
    use _ = torch.NewDisposeScope()
    let shapes = items (prop "shapes" case) |> Array.map shapeOf

    let ps =
        Array.map2 (fun e s -> new Modules.Parameter((flat e s).detach (), requires_grad = true)) (items (prop "initial" case)) shapes

    use optimizer = make ps

    for k, step in Array.indexed (items (prop "steps" case)) do
        optimizer.LearningRate <- num "lr" step

        for i, g in Array.indexed (items (prop "grads" step)) do
            ps.[i].grad <-
                (if g.ValueKind = JsonValueKind.Null then
                     null
                 else
                     flat g shapes.[i])

        optimizer.Step()

        for i, e in Array.indexed (items (prop "params" step)) do
            close (sprintf "step %d param %d" k i) 1e-6 0.0 ps.[i] (flat e shapes.[i])

        after optimizer k step shapes

/// One state tensor of parameter `i` after step `k` against PyTorch's (null where PyTorch has none), to abs 1e-6.
let stateClose (what: string) (k: int) (i: int) (mine: torch.Tensor) (e: JsonElement) (shape: int64[]) =
    match mine, e.ValueKind with
    | null, JsonValueKind.Null -> ()
    | null, _ -> failtestf "step %d: parameter %d has no %s, PyTorch has one" k i what
    | _, JsonValueKind.Null -> failtestf "step %d: parameter %d has a %s, PyTorch has none" k i what
    | m, _ -> close (sprintf "step %d %s %d" k what i) 1e-6 0.0 m (flat e shape)

/// A case with `decay` (per parameter, whether it is in a decayed param group: yolov5's groups) steps only those
/// with weight decay; without it every parameter decays (the reference's one group).
let run (case: JsonElement) =
    let decays =
        tryProp "decay" case
        |> Option.map (fun d -> items d |> Array.map (fun e -> e.GetBoolean()))
        |> Option.toObj

    replay
        case
        (fun ps ->
            new Sgd(
                ps,
                0.0,
                momentum = num "momentum" case,
                weightDecay = num "weight_decay" case,
                nesterov = (prop "nesterov" case).GetBoolean(),
                dampening = num "dampening" case,
                decays = decays
            ))
        (fun sgd k step shapes ->
            for i, e in Array.indexed (items (prop "momentum_buffers" step)) do
                stateClose "momentum buffer" k i sgd.MomentumBuffers.[i] e shapes.[i])
