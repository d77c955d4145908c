/// Fine-tuning: a backbone-only Darknet .weights file, freezing modules (--freeze N / backbone), a new run from a
/// checkpoint's weights on a dataset with other classes (--fine-tune), and where weight decay applies
/// (--decay-groups) with both optimizers, on tiny runs.
module YoloSpp.Tests.Training.FineTuneTests

open System
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Training
open YoloSpp.Tests

let private withDir = YoloSpp.Tests.Robustness.WhyFixtures.withDir

/// The module index of a state-dict name (module_list.N.…).
let private moduleOf (name: string) = int (name.Split('.').[1])

/// Every state entry of a network as float64 arrays, by name.
let private state (m: DarkNet) =
    m.state_dict ()
    |> Seq.map (fun kv -> kv.Key, kv.Value.to_type(torch.ScalarType.Float64).cpu().data<float>().ToArray())
    |> Map.ofSeq

/// The parameters (not the buffers: frozen BatchNorm layers still update their running statistics, as torch's) of
/// a checkpoint's model, by name.
let private parameters (cfg: string) (ckpt: string) =
    use m = DarkNet.FromCfgFile cfg
    CheckpointFile.LoadModel(ckpt, m) |> ignore

    m.named_parameters ()
    |> Seq.map (fun struct (name, p) -> name, p.detach().to_type(torch.ScalarType.Float64).data<float>().ToArray())
    |> Map.ofSeq

/// A shapes set with the other class set (cross, arrow, hexagon, diamond) in dir/sym; returns its .data file.
let private symbols (dir: string) =
    ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "sym"), Train = 12, Val = 4, Size = 64, Seed = 4, Classes = ShapesClasses.Symbols)).DataFile

let tests =
    testList
        "fine-tuning"
        [
            test "the backbone: Darknet-53's 75 modules in yolov3-spp, 27 in shapes-spp, up to the last shortcut before the head" {
                Expect.equal (ModelCfg.Topology("yolov3-spp", 80).BackboneModules) (Nullable 75) "yolov3-spp"
                Expect.equal (ModelCfg.Topology("shapes-spp", 5).BackboneModules) (Nullable 27) "shapes-spp"
                let tiny = ModelCfg.Load(TestUtil.goldenFile "tiny-spp.cfg")
                let n = tiny.BackboneModules.Value
                Expect.equal (tiny.Core.Modules.[n - 1].Layer.GetType().Name) "Shortcut" "ends with a shortcut"

                Expect.isFalse
                    (tiny.Core.Modules
                     |> List.take n
                     |> List.exists (fun m -> m.Layer.IsRoute || m.Layer.IsYolo))
                    "no route or yolo layer inside"
            }

            test "a Darknet .weights file holding only the backbone fills those modules; the others keep their values and are reported" {
                withDir (fun dir ->
                    let cfg = TinyRuns.tinyCfg dir
                    torch.manual_seed 1L |> ignore
                    use source = DarkNet.FromCfgFile cfg
                    let n = source.Config.BackboneModules.Value
                    let backbone = Path.Combine(dir, "backbone.weights")
                    DarknetWeights.Save(source, backbone, cutoff = Nullable n)
                    torch.manual_seed 2L |> ignore
                    use target = DarkNet.FromCfgFile cfg
                    let before = state target
                    let report = ModelWeights.Load(target, backbone)
                    let after = state target
                    let from = state source

                    for KeyValue(name, values) in after do
                        if name.EndsWith "num_batches_tracked" then
                            ()
                        elif moduleOf name < n then
                            Expect.equal values from.[name] (sprintf "%s from the file" name)
                        else
                            Expect.equal values before.[name] (sprintf "%s kept" name)

                    Expect.isTrue (report.Loaded |> Seq.forall (fun k -> moduleOf k < n)) "loaded: the backbone's tensors"
                    Expect.isTrue (report.Skipped |> Seq.forall (fun struct (k, _) -> moduleOf k >= n)) "skipped: the rest"
                    Expect.isNonEmpty report.Skipped "the head is reported"
                    Expect.stringContains (string report) (sprintf "absent: the file holds modules 0..%d" (n - 1)) "says why"
                    // inference needs every tensor
                    let e =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> ModelWeights.LoadExact(target, backbone) |> ignore)

                    Expect.stringContains e "does not fit the cfg" "refused for inference"
                    // Darknet's partial files are named NAME.conv.N: a whole network's file under that name gives N modules
                    let partial = Path.Combine(dir, sprintf "tiny.conv.%d" n)
                    DarknetWeights.Save(source, partial)
                    use third = DarkNet.FromCfgFile cfg
                    let r3 = ModelWeights.Load(third, partial)
                    Expect.equal (Set.ofSeq r3.Loaded) (Set.ofSeq report.Loaded) "the cutoff of the name"
                    // a file that ends inside a convolution is damaged, not a backbone
                    let cut = Path.Combine(dir, "cut.weights")
                    let bytes = File.ReadAllBytes backbone
                    File.WriteAllBytes(cut, bytes.[.. bytes.Length - 9])

                    let e2 =
                        TestUtil.throwsMessage<InvalidInputException> (fun () -> ModelWeights.Load(third, cut) |> ignore)

                    Expect.stringContains e2 "ran out at layer" "names the layer")
            }

            test "--freeze N freezes modules 0..N-1, --freeze backbone the backbone, 0 nothing; too many is refused" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 8 4 3
                    let cfg = TinyRuns.tinyCfg dir

                    let frozen (freeze: int) =
                        let o = Tiny.Options(cfg, data, Path.Combine(dir, "run"), freeze = freeze)
                        let d = TrainSteps.Data o
                        use m = TrainSteps.Model(o, d, torch.CPU)

                        m.named_parameters ()
                        |> Seq.filter (fun struct (_, p) -> not p.requires_grad)
                        |> Seq.map (fun struct (name, _) -> moduleOf name)
                        |> Set.ofSeq,
                        m.named_parameters ()
                        |> Seq.map (fun struct (name, _) -> moduleOf name)
                        |> Set.ofSeq

                    let n = ModelCfg.Load(cfg).BackboneModules.Value
                    let f, all = frozen TrainOptions.Backbone
                    Expect.equal f (all |> Set.filter (fun i -> i < n)) "the backbone's modules, all of them"
                    let f3, _ = frozen 3
                    Expect.equal f3 (all |> Set.filter (fun i -> i < 3)) "modules 0..2"
                    let f0, _ = frozen 0
                    Expect.isEmpty f0 "nothing"

                    let e = TestUtil.throwsMessage<ArgumentException> (fun () -> frozen 1000 |> ignore)

                    Expect.stringContains e "--freeze 1000" "names the option"

                    Expect.throwsT<ArgumentException> (fun () -> Tiny.Options(cfg, data, dir, freeze = -2).Validate()) "a count below 0")
            }

            test "--fine-tune: a new run from a checkpoint's weights on other classes; the frozen backbone stays the checkpoint's" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 12 4 3
                    let cfg = TinyRuns.tinyCfg dir
                    let sym = symbols dir
                    let cfg4 = Path.Combine(dir, "tiny4.cfg")
                    ModelCfg.WriteWithClasses(TestUtil.goldenFile "tiny-spp.cfg", cfg4, 4)

                    let first =
                        Trainer(Tiny.Options(cfg, data, Path.Combine(dir, "first"), epochs = 1)).Run()
                    // without --fine-tune a checkpoint resumes, and another class count is refused, pointing to it
                    let e =
                        TestUtil.throwsMessage<InvalidInputException> (fun () ->
                            Trainer(Tiny.Options(cfg4, sym, Path.Combine(dir, "resumed"), weights = first.LastCheckpoint)).Run()
                            |> ignore)

                    Expect.stringContains e "--fine-tune" "says how to train on other classes"

                    let tuned (name: string) (freeze: int) =
                        Trainer(Tiny.Options(cfg4, sym, Path.Combine(dir, name), epochs = 2, weights = first.LastCheckpoint, fineTune = true, freeze = freeze))
                            .Run()

                    let frozen = tuned "frozen" TrainOptions.Backbone
                    Expect.equal frozen.EpochsDone 2 "two epochs"
                    Expect.equal (CheckpointFile.ReadInfo frozen.LastCheckpoint).Epoch 1 "counted from 0: a new run"
                    Expect.equal (CheckpointFile.ReadInfo frozen.LastCheckpoint).ClassNames.Count 4 "the new classes"
                    Expect.equal frozen.OutputDir (Path.Combine(dir, "frozen")) "its own folder"
                    Expect.equal (File.ReadAllLines(Path.Combine(dir, "first", "results.txt")).Length) 1 "the first run untouched"
                    let n = ModelCfg.Load(cfg).BackboneModules.Value
                    let start = parameters cfg first.LastCheckpoint
                    let afterFrozen = parameters cfg4 frozen.LastCheckpoint
                    let backbone = start |> Map.filter (fun k _ -> moduleOf k < n)
                    Expect.isNonEmpty backbone "the backbone has parameters"

                    for KeyValue(k, v) in backbone do
                        Expect.equal afterFrozen.[k] v (sprintf "%s: the checkpoint's, frozen" k)

                    let head =
                        start
                        |> Map.filter (fun k v -> moduleOf k >= n && afterFrozen.[k].Length = v.Length)

                    Expect.isTrue (head |> Map.exists (fun k v -> afterFrozen.[k] <> v)) "the head trained"
                    let all = tuned "all" 0
                    let afterAll = parameters cfg4 all.LastCheckpoint
                    Expect.isTrue (backbone |> Map.exists (fun k v -> afterAll.[k] <> v)) "unfrozen, the backbone trains too"

                    Expect.throwsT<ArgumentException> (fun () -> Tiny.Options(cfg4, sym, dir, fineTune = true).Validate()) "--fine-tune without weights")
            }

            test "--decay-groups: SGD decays every parameter and Adam the convolution weights unless told; a resume keeps its groups" {
                withDir (fun dir ->
                    let data = TinyRuns.tinyShapes dir 8 4 3
                    let cfg = TinyRuns.tinyCfg dir

                    let decays (optimizer: OptimizerKind) (groups: DecayGroups option) =
                        let o =
                            match groups with
                            | Some g -> Tiny.Options(cfg, data, Path.Combine(dir, "run"), optimizer = optimizer, decayGroups = g)
                            | None -> Tiny.Options(cfg, data, Path.Combine(dir, "run"), optimizer = optimizer)

                        let d = TrainSteps.Data o
                        use m = TrainSteps.Model(o, d, torch.CPU)
                        use opt = TrainSteps.Optimizer(o, m, d)

                        let flags =
                            match opt with
                            | :? Sgd as s -> Array.ofSeq s.Decays
                            | :? Adam as a -> Array.ofSeq a.Decays
                            | other -> failtestf "unexpected %s" (other.GetType().Name)

                        flags, opt.Parameters |> Seq.map (fun p -> p.dim () > 1L) |> Array.ofSeq

                    let sgd, multi = decays OptimizerKind.Sgd None
                    Expect.isTrue (Array.forall id sgd) "SGD: every parameter (the reference's)"
                    Expect.exists multi not "the network has 1-D parameters"
                    let sgdW, _ = decays OptimizerKind.Sgd (Some DecayGroups.Weights)
                    Expect.equal sgdW multi "SGD with yolov5's groups"
                    let adam, _ = decays OptimizerKind.Adam None
                    Expect.equal adam multi "Adam: yolov5's groups"
                    let adamAll, _ = decays OptimizerKind.AdamW (Some DecayGroups.All)
                    Expect.isTrue (Array.forall id adamAll) "AdamW told to decay all"
                    // a checkpoint remembers its groups
                    let first =
                        Trainer(Tiny.Options(cfg, data, Path.Combine(dir, "first"), epochs = 1, optimizer = OptimizerKind.Sgd)).Run()

                    let e =
                        TestUtil.throwsMessage<InvalidInputException> (fun () ->
                            Trainer(
                                Tiny.Options(
                                    cfg,
                                    data,
                                    Path.Combine(dir, "first"),
                                    epochs = 2,
                                    optimizer = OptimizerKind.Sgd,
                                    weights = first.LastCheckpoint,
                                    decayGroups = DecayGroups.Weights
                                )
                            )
                                .Run()
                            |> ignore)

                    Expect.stringContains e "resume with --decay-groups all" "names the groups it was trained with"
                    let code, _, err = BuildTests.yolospp [ "train"; "--decay-groups"; "bn" ]
                    Expect.equal code 2 "a bad value is a usage error"
                    Expect.stringContains err "--decay-groups bn: expected all or weights" "names it")
            }
        ]
