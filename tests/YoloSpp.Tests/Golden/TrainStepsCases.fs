/// Golden kind `train_steps` (this repository's own, see tests/golden/LOCAL-KINDS.md): the reference's training loop
/// step by step on fixed batches — the same initial weights for the same seed, then per step the forward pass in train
/// mode, compute_loss, backward and the SGD step with the warmup's learning rate — losses and final checksums.
module YoloSpp.Tests.Golden.TrainStepsCases

open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests.Golden.Json

/// Σ x and Σ x² over tensors, in float64.
let private checksums (tensors: torch.Tensor seq) =
    tensors
    |> Seq.fold
        (fun (s, q) (t: torch.Tensor) ->
            use d = t.detach().to_type (torch.float64)
            s + d.sum().ToDouble(), q + (d * d).sum().ToDouble())
        (0.0, 0.0)

let private expectChecksums what rel (actual: float * float) (e: JsonElement) =
    closeScalar (what + " sum") rel 1e-9 (fst actual) (num "sum" e)
    closeScalar (what + " sum of squares") rel 1e-9 (snd actual) (num "sum_sq" e)

/// The case's image formula, a hash of the flat index i of (b, c, y, x) and the step s:
/// h = (2654435761·i + 40503·s) mod 2³², h ^= h >> 15, h = 2246822519·h mod 2³², h ^= h >> 13, pixel = h mod 256, / 255.
let private image (bs: int) (size: int) (step: int) =
    let data =
        Array.init (bs * 3 * size * size) (fun i ->
            let mutable h = (2654435761UL * uint64 i + 40503UL * uint64 step) % 4294967296UL
            h <- h ^^^ (h >>> 15)
            h <- (2246822519UL * h) % 4294967296UL
            h <- h ^^^ (h >>> 13)
            float32 (h % 256UL) / 255.0f)

    torch.tensor(data).view (int64 bs, 3L, int64 size, int64 size)

let run (folder: string) (case: JsonElement) =
    use _ = torch.NewDisposeScope()
    let size, bs = int "img_size" case, int "batch_size" case
    let hyp = prop "hyp" case
    torch.manual_seed (int64 (int "seed" case)) |> ignore
    use model = DarkNet.FromCfgFile(Path.Combine(folder, str "cfg" case))
    // the reference draws the same initial weights for the same seed
    expectChecksums "initial state dict" 1e-6 (checksums (model.state_dict().Values)) (prop "initial" case)
    let ps = model.parameters () |> Seq.toArray

    use sgd =
        new Sgd(ps, num "lr0" hyp, momentum = num "momentum" hyp, weightDecay = num "weight_decay" hyp, nesterov = true, dampening = 0.0)

    let lossHyp = lossHypOf hyp

    let spec: Loss.YoloSpec =
        {
            AnchorVecs = model.AnchorVecs
            Nc = model.NumClasses
        }

    let steps = items (prop "steps" case)
    model.train ()

    for k, step in Array.indexed steps do
        use _ = torch.NewDisposeScope()
        sgd.LearningRate <- num "lr" step
        let rows = items (prop "targets" step)

        let targets =
            tensorAs torch.float32 (Some [| rows.LongLength; 6L |]) (prop "targets" step)

        let out = model.forward (image bs size k)
        let parts = Loss.computeLoss lossHyp (num "model_gr" case) spec out.Raw targets
        // float32 kernels of two libtorch versions (and thread counts) round differently
        let rel = 1e-4
        let value (t: torch.Tensor) = t.to_type(torch.float64).ToDouble()
        closeScalar (sprintf "step %d box" k) rel 1e-9 (value parts.Box) (num "box" step)
        closeScalar (sprintf "step %d obj" k) rel 1e-9 (value parts.Obj) (num "obj" step)
        closeScalar (sprintf "step %d cls" k) rel 1e-9 (value parts.Cls) (num "cls" step)
        closeScalar (sprintf "step %d total" k) rel 1e-9 (value parts.Total) (num "total" step)
        parts.Total.backward ()
        sgd.Step()
        sgd.ZeroGrad()

    let final = prop "final" case
    expectChecksums "final parameters" 1e-4 (checksums [ for p in ps -> p :> torch.Tensor ]) (prop "parameters" final)

    let bns =
        model.modules ()
        |> Seq.choose (function
            | :? BatchNorm2d as b -> Some b
            | _ -> None)
        |> Seq.toArray

    expectChecksums "final running_mean" 1e-4 (checksums [ for b in bns -> b.running_mean ]) (prop "running_mean" final)
    expectChecksums "final running_var" 1e-4 (checksums [ for b in bns -> b.running_var ]) (prop "running_var" final)
    model.eval ()

    let detections =
        use _ = torch.no_grad ()
        (model.forward (image bs size 0)).Detections

    expectChecksums "eval output" 1e-4 (checksums [ detections ]) (prop "eval_output" final)
