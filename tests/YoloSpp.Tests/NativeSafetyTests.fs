/// Native-memory safety and determinism: no Scalar or Tensor of the training and IoU paths is left to the
/// finalizer (a finalizer that frees a native object while libtorch reads it is the race that crashed the IoU
/// properties), results are bit-identical while another thread collects garbage non-stop, and two runs of the
/// same training steps are bit-identical.
module YoloSpp.Tests.NativeSafetyTests

open System
open System.Diagnostics.Tracing
open System.IO
open System.Threading
open Expecto
open FsCheck
open FsCheck.FSharp
open TorchSharp
open YoloSpp
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Data
open YoloSpp.Geometry
open YoloSpp.Tests

/// Counts the objects of each type that reach the finalizer, from the runtime's FinalizeObject events
/// (TypeID is the type's method table, i.e. Type.TypeHandle.Value).
type FinalizerMonitor() =
    inherit EventListener()
    let counts = Collections.Concurrent.ConcurrentDictionary<nativeint, int>()

    override this.OnEventSourceCreated(source) =
        if source.Name = "Microsoft-Windows-DotNETRuntime" then
            this.EnableEvents(source, EventLevel.Verbose, LanguagePrimitives.EnumOfValue<int64, EventKeywords> 1L) // GC keyword

    override _.OnEventWritten(e) =
        if e.EventName = "FinalizeObject" && e.Payload.Count > 0 then
            match e.Payload.[0] with
            | :? nativeint as typeId -> counts.AddOrUpdate(typeId, 1, fun _ c -> c + 1) |> ignore
            | _ -> ()

    member _.Count(t: Type) =
        match counts.TryGetValue t.TypeHandle.Value with
        | true, n -> n
        | _ -> 0

    member _.Clear() = counts.Clear()

/// Runs every pending finalizer; events reach listeners asynchronously, so it waits until the counts settle.
let private drain (m: FinalizerMonitor) =
    let mutable last = -1
    let mutable stable = 0

    while stable < 3 do
        GC.Collect()
        GC.WaitForPendingFinalizers()
        Thread.Sleep 200
        let now = m.Count typeof<Scalar> + m.Count typeof<torch.Tensor>
        if now = last then stable <- stable + 1 else stable <- 0
        last <- now

/// (Scalars, Tensors) that reached the finalizer while `f` ran.
let finalizedDuring (m: FinalizerMonitor) (f: unit -> unit) =
    drain m
    m.Clear()
    f ()
    drain m
    m.Count typeof<Scalar>, m.Count typeof<torch.Tensor>

/// Runs `f` while a background thread collects garbage and runs finalizers as fast as it can.
let private underGcStress (f: unit -> 'a) : 'a * int =
    let mutable stop = false
    let mutable collections = 0

    let t =
        Thread(
            (fun () ->
                while not (Volatile.Read &stop) do
                    GC.Collect()
                    GC.WaitForPendingFinalizers()
                    collections <- collections + 1),
            IsBackground = true
        )

    t.Start()

    try
        let r = f ()
        r, collections
    finally
        Volatile.Write(&stop, true)
        t.Join()

/// The IoU family, wh_iou and box_iou over 1,000 seeded box pairs (the properties' generator), as one array.
let private iouWorkload () =
    let pairs = Gen.sampleWithSeed (Rnd 42UL) 100 1000 Geometry.IouProperties.genPair
    use _ = torch.NewDisposeScope()

    let toT (f: Geometry.IouProperties.Box -> float[]) =
        torch.tensor(pairs |> Array.collect (fun (a, b) -> Array.append (f a) (f b)), dtype = torch.float64).view (-1L, 2L, 4L)

    let xywh = toT (fun b -> [| b.Cx; b.Cy; b.W; b.H |])
    let a, b = xywh.select (1L, 0L), xywh.select (1L, 1L)
    let xyxy = Boxes.xywh2xyxy a, Boxes.xywh2xyxy b

    [|
        for k in [ Boxes.Iou; Boxes.GIoU; Boxes.DIoU; Boxes.CIoU ] do
            yield! YoloSpp.Tests.Golden.Json.toArray (Boxes.bboxIou k Boxes.Xywh a b)
            yield! YoloSpp.Tests.Golden.Json.toArray (Boxes.bboxIou k Boxes.Xyxy (fst xyxy) (snd xyxy))
        yield! YoloSpp.Tests.Golden.Json.toArray (Boxes.whIou (a.narrow (1L, 2L, 2L)) (b.narrow (1L, 2L, 2L)))
        yield! YoloSpp.Tests.Golden.Json.toArray (Boxes.boxIou (fst xyxy) (snd xyxy))
    |]

/// A tiny shapes set (100 train images at 64 px) and the tiny cfg for its 5 classes, shared by the tests below.
let private fixture =
    lazy
        (let dir = TestUtil.fixtureDir "yolospp-safety-"

         let s =
             ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "data"), Train = 100, Val = 8, Size = 64, Seed = 7))

         let cfg = Path.Combine(dir, "tiny5.cfg")
         ModelCfg.WriteWithClasses(TestUtil.goldenFile "tiny-spp.cfg", cfg, 5)

         s.DataFile, cfg)

/// What 50 training steps produce: the epoch's mean losses, then every parameter and momentum buffer, as bits.
type private Run = { Losses: int64[]; Weights: byte[] }

/// 50 steps of the reference's train_one_epoch (mosaic, HSV, affine, flips from the parallel loader; multi-scale
/// batches; SGD nesterov), from a seeded model. `window` wraps the steps alone, not the construction of the
/// model (TorchSharp's module constructors leave emptied tensor shells to the finalizer).
let private trainStepsIn (window: (unit -> unit) -> unit) : Run =
    let data, cfg = fixture.Force()
    let files = DataFiles.Load data

    let hyp =
        HyperParameters.Load(Path.Combine(TestUtil.repoRoot, "cfg", "hyp.shapes.yaml")).AdjustedFor(5, 64)

    let ds =
        YoloDataset.Open(files.Train, 5, DataOptions(ImageSize = 96, BatchSize = 2, Augment = true, Mosaic = true, Hyp = hyp, Shuffle = true, Seed = 1))

    let loader = YoloDataLoader(ds)
    torch.manual_seed 3L |> ignore
    use model = DarkNet.FromCfgFile cfg

    let trainable =
        model.parameters () |> Seq.filter (fun p -> p.requires_grad) |> Seq.toArray

    use sgd =
        new Sgd(trainable, hyp.Lr0, momentum = hyp.Momentum, weightDecay = hyp.WeightDecay, nesterov = true)

    let loss = YoloLoss.For(model, hyp)

    let settings =
        EpochSettings(1, 3, hyp, 1, false, Nullable(Engine.MultiScaleGrid 64), 96, Random 5, Nullable())

    let mutable outcome = Unchecked.defaultof<EpochOutcome>
    window (fun () -> outcome <- Engine.TrainOneEpoch(model, sgd, loader, loss, LossScaler(false), torch.CPU, settings))
    Expect.equal outcome.Batches 50 "50 steps"
    use _ = torch.NewDisposeScope()

    let tensors =
        Seq.append (trainable |> Seq.cast<torch.Tensor>) (sgd.MomentumBuffers |> Seq.filter (isNull >> not))

    let m = outcome.MeanLosses

    {
        Losses =
            [| m.Box; m.Objectness; m.Class; m.Total |]
            |> Array.map BitConverter.DoubleToInt64Bits
        Weights =
            tensors
            |> Seq.collect (fun t -> t.cpu().contiguous().bytes.ToArray())
            |> Seq.toArray
    }

let private trainSteps () = trainStepsIn (fun f -> f ())

let private sameBits what (a: Run) (b: Run) =
    Expect.sequenceEqual b.Losses a.Losses (sprintf "%s: mean losses bit for bit" what)
    Expect.isTrue (a.Weights = b.Weights) (sprintf "%s: weights and momentum buffers bit for bit" what)

let tests =
    testList
        "native-safety"
        [
            test "the finalizer monitor sees Scalars left to the finalizer (the checks below can fail)" {
                use m = new FinalizerMonitor()

                let scalars, _ =
                    finalizedDuring m (fun () ->
                        for i in 1..50 do
                            (float i).ToScalar() |> ignore)

                Expect.isGreaterThanOrEqual scalars 50 "the 50 Scalars left behind are seen"
            }
            test "no Scalar or Tensor reaches the finalizer during 50 training steps" {
                use m = new FinalizerMonitor()
                let mutable counts = (-1, -1)
                trainStepsIn (fun steps -> counts <- finalizedDuring m steps) |> ignore
                let scalars, tensors = counts
                Expect.equal scalars 0 "Scalars finalized (each one a temporary a GC could free mid-call)"
                Expect.equal tensors 0 "Tensors finalized"
            }
            test "no Scalar or Tensor reaches the finalizer during the IoU family, wh_iou and box_iou" {
                use m = new FinalizerMonitor()
                let scalars, tensors = finalizedDuring m (fun () -> iouWorkload () |> ignore)
                Expect.equal scalars 0 "Scalars finalized"
                Expect.equal tensors 0 "Tensors finalized"
            }
            test "no Scalar reaches the finalizer during evaluation and the loss with focal BCE" {
                let data, cfg = fixture.Force()
                let files = DataFiles.Load data
                let hyp = HyperParameters.Default.AdjustedFor(5, 64)

                let valid =
                    YoloDataset.Open(files.Valid, 5, DataOptions(ImageSize = 64, BatchSize = 4, Rect = true, Hyp = hyp))

                use model = DarkNet.FromCfgFile cfg
                use m = new FinalizerMonitor()

                let scalars, tensors =
                    finalizedDuring m (fun () ->
                        Evaluator.Evaluate(model, valid, torch.CPU, EvaluationOptions(), files.Names)
                        |> ignore

                        use _ = torch.NewDisposeScope()
                        model.train () |> ignore
                        let raw = model.forward(torch.rand (2L, 3L, 64L, 64L)).Raw

                        let targets =
                            torch.tensor([| 0f; 1f; 0.5f; 0.5f; 0.2f; 0.3f; 1f; 4f; 0.3f; 0.6f; 0.1f; 0.1f |]).view (2L, 6L)

                        let focal =
                            { hyp.LossHyperParameters with
                                FlGamma = 1.5
                            }

                        (YoloSpp.Training.Loss.computeLoss
                            focal
                            0.5
                            {
                                AnchorVecs = model.AnchorVecs
                                Nc = 5
                            }
                            raw
                            targets)
                            .Total.backward ())

                Expect.equal scalars 0 "Scalars finalized"
                Expect.equal tensors 0 "Tensors finalized"
            }
            test "no Scalar or Tensor reaches the finalizer during Adam steps, the trainer's evaluation with its loss and pictures, and BatchPlot" {
                let data, cfg = fixture.Force()
                let files = DataFiles.Load data
                let hyp = HyperParameters.Shapes.AdjustedFor(5, 64)

                let valid =
                    YoloDataset.Open(files.Valid, 5, DataOptions(ImageSize = 64, BatchSize = 4, Rect = true, Hyp = hyp))

                let dir = TestUtil.fixtureDir "yolospp-native-plots-"
                torch.manual_seed 4L |> ignore
                use model = DarkNet.FromCfgFile cfg

                use adam =
                    new Adam(model.parameters () |> Seq.filter (fun p -> p.requires_grad), 0.001, beta1 = 0.937, weightDecay = 5e-4)

                let loss = YoloLoss.For(model, hyp)

                let targets =
                    torch.tensor([| 0f; 1f; 0.5f; 0.5f; 0.2f; 0.3f; 1f; 4f; 0.3f; 0.6f; 0.1f; 0.1f |]).view (2L, 6L)

                use images = torch.rand (2L, 3L, 64L, 64L)
                use m = new FinalizerMonitor()

                let scalars, tensors =
                    finalizedDuring m (fun () ->
                        for _ in 1..3 do
                            use _ = torch.NewDisposeScope()
                            model.train () |> ignore
                            loss.Compute(model.forward(images).Raw, targets).Total.backward ()
                            adam.Step()
                            adam.ZeroGrad()

                        Evaluator.EvaluateWithLoss(
                            model,
                            valid,
                            torch.CPU,
                            EvaluationOptions(PlotDirectory = dir),
                            files.Names,
                            (fun raw t ->
                                use _ = torch.NewDisposeScope()
                                let v = loss.Compute(raw, t).ToValues()
                                struct (v.Box, v.Objectness, v.Class)),
                            Threading.CancellationToken.None
                        )
                        |> ignore

                        BatchPlot.Save(images, targets, null, files.Names, Path.Combine(dir, "batch.jpg")))

                Expect.equal scalars 0 "Scalars finalized (each one a temporary a GC could free mid-call)"
                Expect.equal tensors 0 "Tensors finalized"
            }
            test "GC stress: the IoU properties hold and the IoU family is bit-identical while another thread collects non-stop" {
                let plain = iouWorkload ()

                let (stressed, props), collections =
                    underGcStress (fun () ->
                        let values = iouWorkload ()

                        let config =
                            Config.QuickThrowOnFailure.WithMaxTest(100).WithReplay(Some { Rnd = Rnd 7UL; Size = None })

                        for _, p in Geometry.IouProperties.properties do
                            Check.One(config, p)

                        values, Geometry.IouProperties.properties.Length)

                Expect.isGreaterThan collections 0 "the stress thread ran"
                Expect.isGreaterThan props 0 "properties checked"
                Expect.isTrue (Array.map BitConverter.DoubleToInt64Bits plain = Array.map BitConverter.DoubleToInt64Bits stressed) "bit-identical"
            }
            test "GC stress: 50 training steps give bit-identical losses and weights while another thread collects non-stop" {
                let plain = trainSteps ()
                let stressed, collections = underGcStress trainSteps
                Expect.isGreaterThan collections 0 "the stress thread ran"
                sameBits "under GC stress" plain stressed
            }
            test "determinism: the same 50 training steps twice give bit-identical losses and weights" { sameBits "second run" (trainSteps ()) (trainSteps ()) }
        ]
