/// The tests' one builder of small training runs: a tiny shapes set, the tiny cfg for its classes, and the options
/// of a run that trains in seconds (64 px, batch 4, fixed size, no mosaic, no warmup, one batch per step, the CPU).
[<AutoOpen>]
module YoloSpp.Tests.TinyRuns

open System
open System.IO
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Training

/// A generated shapes set at 64 px in dir/data (`train` and `val` images, seed `seed`); returns its .data file.
let tinyShapes (dir: string) (train: int) (valid: int) (seed: int) : string =
    ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "data"), Train = train, Val = valid, Size = 64, Seed = seed)).DataFile

/// The tiny cfg (tests/golden/tiny-spp.cfg) rewritten for 5 classes as dir/tiny5.cfg; returns its path.
let tinyCfg (dir: string) : string =
    let cfg = Path.Combine(dir, "tiny5.cfg")
    ModelCfg.WriteWithClasses(TestUtil.goldenFile "tiny-spp.cfg", cfg, 5)
    cfg

/// Builds the options of a small run; every argument not given keeps the tiny setting.
type Tiny =
    static member Options
        (
            cfg: string,
            data: string,
            output: string,
            ?epochs: int,
            ?hyp: string,
            ?weights: string,
            ?batchSize: int,
            ?singleClass: bool,
            ?freezeLayers: bool,
            ?noTest: bool,
            ?bf16: bool,
            ?amp: bool,
            ?optimizer: YoloSpp.OptimizerKind,
            ?existOk: bool,
            ?seed: int,
            ?ema: bool,
            ?patience: int,
            ?autoAnchor: bool,
            ?freeze: int,
            ?fineTune: bool,
            ?decayGroups: YoloSpp.DecayGroups
        ) : TrainOptions =
        TrainOptions(
            Cfg = cfg,
            Data = data,
            Hyp = defaultArg hyp "shapes",
            Weights = Option.toObj weights,
            Epochs = defaultArg epochs 2,
            BatchSize = defaultArg batchSize 4,
            ImageSize = 64,
            MultiScale = false,
            Mosaic = false,
            Warmup = false,
            Device = "cpu",
            OutputDir = output,
            Accumulate = Nullable 1,
            SingleClass = defaultArg singleClass false,
            FreezeLayers = defaultArg freezeLayers false,
            NoTest = defaultArg noTest false,
            Bf16 = defaultArg bf16 false,
            Amp = defaultArg amp false,
            Optimizer = Option.toNullable optimizer,
            ExistOk = defaultArg existOk false,
            Seed = defaultArg seed 0,
            Ema = defaultArg ema false,
            Patience = Option.toNullable patience,
            AutoAnchor = defaultArg autoAnchor false,
            Freeze = Option.toNullable freeze,
            FineTune = defaultArg fineTune false,
            DecayGroups = Option.toNullable decayGroups
        )
