/// Golden kind `lr_schedule`: the cosine LambdaLR and the epoch-0 warmup factors, abs 1e-15. The lr values are
/// what an SGD optimizer driven by LambdaLR shows, so they are checked through TorchSharp's LambdaLR too.
module YoloSpp.Tests.Golden.ScheduleCases

open System.Text.Json
open TorchSharp
open Expecto
open YoloSpp.Training
open YoloSpp.Tests.Golden.Json

let private tol = 1e-15

let private near what (actual: float) (expected: float) =
    if abs (actual - expected) > tol then
        failtestf "%s: expected %.17g, got %.17g" what expected actual

/// An SGD optimizer over one dummy parameter, driven by LambdaLR(f); returns the lr after each of `steps` steps
/// (index 0 = before any step).
let private lambdaLrTrace (lr0: float) (momentum: float) (wd: float) (nesterov: bool) (f: int -> float) (steps: int) =
    use _ = torch.NewDisposeScope()
    let w = torch.nn.Parameter(torch.zeros (1L))

    let opt =
        torch.optim.SGD([| w |], lr0, momentum = momentum, weight_decay = wd, nesterov = nesterov)

    let sched = torch.optim.lr_scheduler.LambdaLR(opt, (fun e -> f e))

    [|
        for i in 0..steps do
            if i > 0 then
                opt.step () |> ignore
                sched.step ()

            yield opt.ParamGroups |> Seq.head |> (fun g -> g.LearningRate)
    |]

let run (case: JsonElement) =
    let lr0, lrf = num "lr0" case, num "lrf" case
    let momentum, wd = num "momentum" case, num "weight_decay" case
    let nesterov = (prop "nesterov" case).GetBoolean()

    match str "schedule" case with
    | "cosine" ->
        let epochs = int "epochs" case
        let rows = items (prop "cosine" case)

        let trace =
            lambdaLrTrace lr0 momentum wd nesterov (Schedule.cosine epochs lrf) epochs

        for r in rows do
            let e = int "epoch" r
            near (sprintf "lf(%d)" e) (Schedule.cosine epochs lrf e) (num "lf" r)
            near (sprintf "lr(%d)" e) trace.[e] (num "lr" r)
    | "warmup" ->
        let w = prop "warmup" case
        let iters, factor = int "warmup_iters" w, num "warmup_factor" w
        let f = Schedule.warmup iters factor

        for r in items (prop "factors" w) do
            let i = int "iter" r
            near (sprintf "factor(%d)" i) (f i) (num "factor" r)
            near (sprintf "lr(%d)" i) (lr0 * f i) (num "lr" r)

        match tryProp "lr_first_6_iters_stepped" w with
        | Some stepped ->
            let expected = items stepped |> Array.map number
            let trace = lambdaLrTrace lr0 momentum wd nesterov f (expected.Length - 1)

            expected
            |> Array.iteri (fun i e -> near (sprintf "stepped lr(%d)" i) trace.[i] e)
        | None -> ()
    | s -> failtestf "unknown schedule '%s'" s
