/// The trainer's SGD on every combination of its options (the golden covers the reference's: Nesterov with weight
/// decay, in one group and in yolov5's groups): three steps against torch.optim.SGD's formulas written out in
/// float64, and the gradients left as they were.
module YoloSpp.Tests.Training.SgdTests

open Expecto
open TorchSharp
open YoloSpp.Training

/// torch.optim.SGD's step for one parameter in float64: d = g + wd·p; buf = d on the first step, else
/// momentum·buf + (1 − dampening)·d; d = d + momentum·buf (Nesterov) or buf; p − lr·d.
let private referenceStep (p: float[]) (g: float[]) (buf: float[] option) lr momentum wd dampening nesterov =
    let d = Array.map2 (fun gi pi -> gi + wd * pi) g p

    let d, buf =
        if momentum = 0.0 then
            d, buf
        else
            let b =
                match buf with
                | None -> Array.copy d
                | Some b -> Array.map2 (fun bi di -> momentum * bi + (1.0 - dampening) * di) b d

            (if nesterov then
                 Array.map2 (fun di bi -> di + momentum * bi) d b
             else
                 b),
            Some b

    Array.map2 (fun pi di -> pi - lr * di) p d, buf

let private combinations =
    [
        // momentum, weight decay, dampening, Nesterov, yolov5's groups (no decay on 1-D parameters)
        0.0, 0.0, 0.0, false, false
        0.0, 5e-4, 0.0, false, false
        0.0, 5e-2, 0.0, false, true
        0.9, 0.0, 0.0, false, false
        0.9, 5e-4, 0.1, false, false
        0.9, 5e-2, 0.1, false, true
        0.937, 0.0, 0.0, true, false
        0.937, 5e-4, 0.0, true, false
        0.937, 5e-2, 0.0, true, true
    ]

let tests =
    testList
        "sgd"
        [
            for momentum, wd, dampening, nesterov, groups in combinations ->
                test (
                    sprintf
                        "momentum %g, weight decay %g%s, dampening %g, nesterov %b: 3 steps as torch.optim.SGD, gradients untouched"
                        momentum
                        wd
                        (if groups then " (yolov5's groups)" else "")
                        dampening
                        nesterov
                ) {
                    use _ = torch.NewDisposeScope()
                    let gen = new torch.Generator(7UL)
                    // odd sizes: vectorised kernels and their scalar tails
                    let shapes = [| [| 3L; 5L |]; [| 17L |]; [| 2L; 3L; 3L; 3L |] |]

                    let ps =
                        shapes
                        |> Array.map (fun s -> new Modules.Parameter(torch.randn (s, generator = gen), requires_grad = true))

                    let decays = ps |> Array.map (fun p -> not groups || Adam.DecaysByDefault p)

                    use sgd =
                        new Sgd(ps, 0.05, momentum = momentum, weightDecay = wd, nesterov = nesterov, dampening = dampening, decays = decays)

                    let values (t: torch.Tensor) =
                        t.detach().to_type(torch.float64).data<float>().ToArray()

                    let mutable expected = ps |> Array.map values
                    let mutable buffers: float[] option[] = Array.create ps.Length None

                    for step in 1..3 do
                        for p in ps do
                            p.grad <- torch.randn (p.shape, generator = gen)

                        let grads = ps |> Array.map (fun p -> p.grad.clone ())
                        sgd.Step()

                        for k in 0 .. ps.Length - 1 do
                            Expect.isTrue (ps.[k].grad.equal(grads.[k]).all().ToBoolean()) (sprintf "step %d: gradient %d unchanged" step k)

                            let p, b =
                                referenceStep expected.[k] (values grads.[k]) buffers.[k] 0.05 momentum (if decays.[k] then wd else 0.0) dampening nesterov

                            expected.[k] <- p
                            buffers.[k] <- b
                            let actual = values ps.[k]

                            for i in 0 .. p.Length - 1 do
                                Expect.floatClose { absolute = 1e-6; relative = 1e-6 } actual.[i] p.[i] (sprintf "step %d, parameter %d, value %d" step k i)
                }
        ]
