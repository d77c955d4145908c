/// Golden kind `darknet_grad`: one training step's gradients through a whole network (train-mode BatchNorm,
/// compute_loss, backward). Loss parts to rel 1e-4 + abs 1e-6; per parameter either the float64 stats of the
/// reference's float32 gradient (sum and l2 within 2e-3·l2 + 1e-7, the first 16 values within 2e-3·max_abs + 1e-7)
/// or, with `grads_file`, the full gradient against a float64 reference by relative L2 (`rel_l2_tol`).
module YoloSpp.Tests.Golden.DarknetGradCases

open System
open System.IO
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

/// float32 little-endian values of a companion file.
let private readF32 (path: string) =
    let bytes = File.ReadAllBytes path

    if bytes.Length % 4 <> 0 then
        failtestf "%s: %d bytes is not a whole number of float32 values" path bytes.Length

    Runtime.InteropServices.MemoryMarshal.Cast<byte, float32>(ReadOnlySpan bytes).ToArray()

let private within what (tol: float) (actual: float) (expected: float) =
    if not (abs (actual - expected) <= tol) then
        failtestf "%s: expected %.9g, got %.9g (|err| %.3g > %.3g)" what expected actual (abs (actual - expected)) tol

let run (folder: string) (case: JsonElement) =
    use _ = torch.NewDisposeScope()
    let nc = int "nc" case
    use model = DarkNet.FromCfgFile(Path.Combine(folder, str "cfg" case))

    DarknetWeights.Load(model, Path.Combine(folder, str "weights_file" case))
    |> ignore

    let shape = shapeOf (prop "input_shape" case)

    let x =
        match tryProp "input" case, tryProp "input_file" case with
        | Some e, _ -> tensorAs torch.float32 (Some shape) e
        | None, Some f ->
            let data = readF32 (Path.Combine(folder, f.GetString()))
            let n = Array.fold (*) 1L shape

            if int64 data.Length <> n then
                failtestf "%s: %d values for input shape %A" (f.GetString()) data.Length shape

            torch.tensor(data).view (shape)
        | None, None -> failtest "neither 'input' nor 'input_file'"

    let targets =
        tensorAs torch.float32 (Some [| (items (prop "targets" case)).LongLength; 6L |]) (prop "targets" case)

    let lossHyp = lossHypOf (prop "hyp" case)

    let gr =
        match tryProp "gr" case with
        | Some g -> number g
        | None -> 1.0

    Expect.equal model.NumClasses nc "nc of the cfg"
    model.train () |> ignore
    model.zero_grad ()
    let raw = model.forward(x).Raw

    let parts =
        Loss.computeLoss
            lossHyp
            gr
            {
                AnchorVecs = model.AnchorVecs
                Nc = nc
            }
            raw
            targets

    parts.Total.backward ()
    let fullGradients = (tryProp "grads_file" case).IsSome
    let loss = prop "loss" case

    for name, t in [ "box", parts.Box; "obj", parts.Obj; "cls", parts.Cls; "total", parts.Total ] do
        let e = num name loss
        let a = t.to_type(torch.float64).item<float> ()
        let tol = (if fullGradients then 0.0 else 1e-6) + 1e-4 * abs e
        within (sprintf "loss %s" name) tol a e

    let ours = model.named_parameters () |> Seq.map (fun struct (n, p) -> n, p) |> dict
    let grads = items (prop "grads" case)
    Expect.sequenceEqual (ours.Keys |> Seq.sort) (grads |> Array.map (str "name") |> Array.sort) "parameter names"

    let gradOf (name: string) =
        let p = ours.[name]

        if isNull p.grad then
            failtestf "%s has no gradient" name

        p.grad.to_type(torch.float64).contiguous().flatten().data<float>().ToArray()

    match tryProp "grads_file" case with
    | Some f ->
        let all = readF32 (Path.Combine(folder, f.GetString()))
        let relTol = num "rel_l2_tol" case
        let mutable offset = 0
        let report = Collections.Generic.List<string>()

        for g in grads do
            let name = str "name" g
            let n = shapeOf (prop "shape" g) |> Array.fold (*) 1L |> int32

            if offset + n > all.Length then
                failtestf "%s: the grads file ends before %s" (f.GetString()) name

            let a = gradOf name

            if a.Length <> n then
                failtestf "%s: %d gradient values, expected %d" name a.Length n

            let mutable d2 = 0.0
            let mutable r2 = 0.0

            for i in 0 .. n - 1 do
                let r = float all.[offset + i]
                d2 <- d2 + (a.[i] - r) * (a.[i] - r)
                r2 <- r2 + r * r

            let rel = sqrt d2 / sqrt r2

            if not (rel <= relTol) then
                report.Add(sprintf "%s: relative L2 error %.4f > %.4f" name rel relTol)

            offset <- offset + n

        if offset <> all.Length then
            failtestf "%s holds %d values, the parameters %d" (f.GetString()) all.Length offset

        if report.Count > 0 then
            failtestf "%d of %d gradients off:\n%s" report.Count grads.Length (String.Join("\n", report))
    | None ->
        for g in grads do
            let name = str "name" g
            let a = gradOf name
            let l2, maxAbs = num "l2" g, num "max_abs" g
            let tol = 2e-3 * l2 + 1e-7
            within (sprintf "%s sum" name) tol (Array.sum a) (num "sum" g)
            within (sprintf "%s l2" name) tol (sqrt (Array.sumBy (fun v -> v * v) a)) l2

            items (prop "head" g)
            |> Array.iteri (fun i e -> within (sprintf "%s[%d]" name i) (2e-3 * maxAbs + 1e-7) a.[i] (number e))
