/// The trainer's Adam and AdamW on combinations of their options (the golden covers yolov5's groups with the demo's
/// betas): three steps against torch.optim.Adam's and AdamW's formulas written out in float64, the gradients left as
/// they were; the parameter groups of the trainer; the optimizer named by a hyp file and chosen by the options.
module YoloSpp.Tests.Training.AdamTests

open System
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Training

/// torch.optim.Adam's (or with `decoupled` AdamW's) step t for one parameter in float64.
let private referenceStep (p: float[]) (g: float[]) (m: float[]) (v: float[]) (t: int) lr b1 b2 eps wd decoupled =
    let p =
        if decoupled then
            Array.map (fun x -> x * (1.0 - lr * wd)) p
        else
            p

    let d =
        if decoupled then
            g
        else
            Array.map2 (fun gi pi -> gi + wd * pi) g p

    let m = Array.map2 (fun mi di -> b1 * mi + (1.0 - b1) * di) m d
    let v = Array.map2 (fun vi di -> b2 * vi + (1.0 - b2) * di * di) v d
    let stepSize = lr / (1.0 - b1 ** float t)
    let root = sqrt (1.0 - b2 ** float t)

    let p =
        Array.init p.Length (fun i -> p.[i] - stepSize * m.[i] / (sqrt v.[i] / root + eps))

    p, m, v

let private combinations =
    [
        // beta1, beta2, eps, weight decay, decoupled
        0.9, 0.999, 1e-8, 0.0, false
        0.937, 0.999, 1e-8, 5e-4, false
        0.937, 0.999, 1e-8, 5e-4, true
        0.5, 0.9, 1e-3, 0.1, false
        0.5, 0.9, 1e-3, 0.1, true
    ]

let private values (t: torch.Tensor) =
    t.detach().to_type(torch.float64).data<float>().ToArray()

let tests =
    testList
        "adam"
        [
            for b1, b2, eps, wd, decoupled in combinations do
                yield
                    test (
                        sprintf
                            "beta1 %g, beta2 %g, eps %g, weight decay %g, %s: 3 steps as torch.optim, gradients untouched"
                            b1
                            b2
                            eps
                            wd
                            (if decoupled then "AdamW" else "Adam")
                    ) {
                        use _ = torch.NewDisposeScope()
                        let gen = new torch.Generator(11UL)
                        // odd sizes: vectorised kernels and their scalar tails
                        let shapes = [| [| 3L; 5L |]; [| 17L |]; [| 2L; 3L; 3L; 3L |] |]

                        let ps =
                            shapes
                            |> Array.map (fun s -> new Modules.Parameter(torch.randn (s, generator = gen), requires_grad = true))

                        // the 1-d parameter does not decay, as a bias or a BatchNorm weight in the trainer's groups
                        let decays = ps |> Array.map Adam.DecaysByDefault
                        Expect.equal decays [| true; false; true |] "decay on parameters of more than one dimension"

                        use adam =
                            new Adam(ps, 0.01, beta1 = b1, beta2 = b2, eps = eps, weightDecay = wd, decoupled = decoupled, decays = decays)

                        Expect.equal
                            adam.Kind
                            (if decoupled then
                                 OptimizerKind.AdamW
                             else
                                 OptimizerKind.Adam)
                            "kind"

                        let mutable expected = ps |> Array.map values
                        let ms = ps |> Array.map (fun p -> Array.zeroCreate<float> (int (p.numel ())))
                        let vs = ps |> Array.map (fun p -> Array.zeroCreate<float> (int (p.numel ())))

                        for step in 1..3 do
                            for p in ps do
                                p.grad <- torch.randn (p.shape, generator = gen)

                            let grads = ps |> Array.map (fun p -> p.grad.clone ())
                            adam.Step()

                            for k in 0 .. ps.Length - 1 do
                                Expect.isTrue (ps.[k].grad.equal(grads.[k]).all().ToBoolean()) (sprintf "step %d: gradient %d unchanged" step k)
                                let wdK = if decays.[k] then wd else 0.0

                                let p, m, v =
                                    referenceStep expected.[k] (values grads.[k]) ms.[k] vs.[k] step 0.01 b1 b2 eps wdK decoupled

                                expected.[k] <- p
                                ms.[k] <- m
                                vs.[k] <- v
                                let actual = values ps.[k]

                                for i in 0 .. p.Length - 1 do
                                    Expect.floatClose { absolute = 1e-6; relative = 1e-6 } actual.[i] p.[i] (sprintf "step %d, parameter %d, value %d" step k i)

                            Expect.equal adam.Steps (int64 step) "steps"
                    }
            yield
                test "a parameter without a gradient keeps its value, moments and step count" {
                    use _ = torch.NewDisposeScope()
                    let a = new Modules.Parameter(torch.ones [| 4L |], requires_grad = true)
                    let b = new Modules.Parameter(torch.ones [| 4L |], requires_grad = true)
                    use adam = new Adam([ a; b ], 0.1, weightDecay = 0.5)
                    a.grad <- torch.ones [| 4L |]
                    adam.Step()
                    Expect.isNull adam.ExpAvg.[1] "no moment before a gradient"
                    Expect.equal (values b) [| 1.0; 1.0; 1.0; 1.0 |] "no decay without a gradient (torch skips the parameter)"
                    Expect.sequenceEqual adam.ParameterSteps [ 1L; 0L ] "per-parameter steps"
                }
            yield
                test "out-of-range settings are refused naming them" {
                    let p = [ new Modules.Parameter(torch.ones [| 2L |]) ]

                    for make, name in
                        [
                            (fun () -> new Adam(p, -1.0) |> ignore), "lr"
                            (fun () -> new Adam(p, 0.1, beta1 = 1.0) |> ignore), "beta1"
                            (fun () -> new Adam(p, 0.1, beta2 = -0.1) |> ignore), "beta2"
                            (fun () -> new Adam(p, 0.1, weightDecay = -1.0) |> ignore), "weightDecay"
                            (fun () -> new Adam(p, 0.1, decays = [ true; false ]) |> ignore), "decays"
                        ] do
                        let e = Expect.throwsC make id
                        Expect.stringContains e.Message name name
                }
            yield
                test "the hyp file names the optimizer: the shapes recipe Adam, the reference's SGD, a bad name its line" {
                    Expect.equal HyperParameters.Shapes.Optimizer OptimizerKind.Adam "shapes"
                    Expect.equal HyperParameters.Reference.Optimizer OptimizerKind.Sgd "reference: no key is SGD"

                    match Hyp.parse "h.yaml" ((Hyp.toYaml Hyp.defaults).Replace("optimizer: sgd", "optimizer: AdamW")) with
                    | Ok h -> Expect.equal h.Optimizer OptimizerChoice.AdamW "case-insensitive"
                    | Error e -> failtestf "%A" e

                    match Hyp.parse "h.yaml" ((Hyp.toYaml Hyp.defaults).Replace("optimizer: sgd", "optimizer: lbfgs")) with
                    | Ok _ -> failtest "lbfgs accepted"
                    | Error [ e ] ->
                        Expect.equal e.Line 21 "the optimizer's line"
                        Expect.stringContains e.Reason "sgd, adam, adamw" "the choices"
                    | Error e -> failtestf "%A" e
                }
        ]
