/// The options of `yolospp train` and scripts/train.fsx: the reference's train.py arguments (kebab-case), defaulting
/// to the shapes demo, and their translation into the library's `TrainOptions`.
module YoloSpp.App.TrainArguments

open System
open Argu
open YoloSpp
open YoloSpp.Data
open YoloSpp.Model
open YoloSpp.Training

/// The defaults of `yolospp train` and scripts/train.fsx: the shapes demo preset of the library.
let demo = TrainOptions.ShapesDemo

let private onOff (b: bool) = if b then "true" else "false"

/// `--bf16 [auto|on|off]`: bfloat16 on (`--bf16` alone is `on`), off, or decided by the machine.
type Bf16Setting =
    | Auto
    | On
    | Off

type TrainArgs =
    | Cfg of path: string
    | Data of path: string
    | Hyp of path: string
    | Optimizer of name: string
    | Decay_Groups of string
    | Weights of path: string
    | Epochs of int
    | Batch_Size of int
    | Img_Size of int
    | Savebest of bool
    | Notest
    | Freeze_Layers
    | Freeze of modules: string
    | Fine_Tune
    | Device of string
    | Multi_Scale of bool
    | Warmup of bool
    | Augment of bool
    | Rect
    | Single_Cls
    | Cache_Images
    | Mosaic of bool
    | Amp of bool
    | Bf16 of Bf16Setting option
    | Result_Name of string
    | Output of dir: string
    | Seed of int
    | Accumulate of int
    | Time_Limit of minutes: float
    | Sync_Bn of bool
    | Ema of bool
    | Patience of epochs: int
    | Autoanchor
    | Exist_Ok
    | Allow_Cfg_Change
    | Max_Pixels of int64

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Cfg _ ->
                "Darknet cfg file, or a built-in network: shapes-spp (the demo's small SPP network, the default) or yolov3-spp (the reference's); a name takes the data's class count"
            | Data _ -> sprintf "dataset .data file (default %s, generated with `yolospp shapes` when absent)" demo.Data
            | Hyp _ ->
                "hyperparameters: a hyp.yaml file, or built in: shapes (the demo's, for training from scratch; the default) or reference (the reference's cfg/hyp.yaml, for fine-tuning)"
            | Optimizer _ -> "sgd, adam or adamw (default: the one the hyp names, sgd when it names none: shapes trains with adam, reference with sgd)"
            | Decay_Groups _ ->
                "where weight decay applies: all (every parameter, the reference's SGD) or weights (convolution weights only, none on BatchNorm weights and biases: yolov5's groups); default: all with sgd, weights with adam and adamw"
            | Weights _ -> "start from weights: a .ckpt resumes exactly; .weights/.pt/.safetensors load the tensors whose sizes match"
            | Epochs _ -> sprintf "epochs to train (default %d; below a resumed checkpoint's epoch: that many more)" demo.Epochs
            | Batch_Size _ -> sprintf "images per batch (default %d)" demo.BatchSize
            | Img_Size _ -> sprintf "train and test image size, a multiple of %d (default %d)" DarkNet.GridStride demo.ImageSize
            | Savebest _ -> sprintf "keep only the best checkpoint besides last.ckpt (default %s); false keeps one per epoch" (onOff demo.SaveBest)
            | Notest -> "evaluate only after the last epoch"
            | Freeze_Layers -> "train only the three prediction convs"
            | Freeze _ ->
                "freeze modules 0..N-1 (yolov5's --freeze N), or backbone (the network's backbone: Darknet-53's 75 modules in yolov3-spp, 27 in shapes-spp); 0 freezes nothing (default: the reference's rule, which freezes Darknet-53 when starting yolov3-spp from pretrained weights)"
            | Fine_Tune ->
                "with a .ckpt as --weights: start a new run from its weights (epoch 0, a new optimizer; other data and classes allowed) instead of resuming it"
            | Device _ -> sprintf "%s (CUDA when available, else the CPU; the default), cpu, cuda or cuda:N" demo.Device
            | Multi_Scale _ -> sprintf "multi-scale batches in [img/1.5, img/0.667] (default %s for the demo; the reference: true)" (onOff demo.MultiScale)
            | Warmup _ -> sprintf "epoch-0 LR warmup (default %s)" (onOff demo.Warmup)
            | Augment _ -> sprintf "augment training images (default %s)" (onOff demo.Augment)
            | Rect -> "rectangular training batches (no shuffle, no mosaic)"
            | Single_Cls -> "train as one class: every label becomes class 0 (the cfg must have classes=1)"
            | Cache_Images -> "keep decoded, resized images in memory after their first load (faster later epochs)"
            | Mosaic _ -> sprintf "mosaic augmentation (default %s for the demo; the reference: true)" (onOff demo.Mosaic)
            | Amp _ ->
                sprintf
                    "mixed precision on CUDA: float16 convolutions, float32 master weights, dynamic loss scaling (default %s, as the reference; no effect on the CPU)"
                    (onOff demo.Amp)
            | Bf16 _ ->
                "bfloat16 convolutions with float32 master weights, as PyTorch's autocast: on (--bf16 alone), off (the default), or auto: on when the CPU computes bfloat16 natively (oneDNN avx512_core_bf16 or AMX; for a CUDA run the GPU, compute capability >= 8.0) and the network's bfloat16 convolutions pass the check against float64, else float32 (the run says which)"
            | Result_Name _ -> sprintf "results file name in the output folder (default %s)" demo.ResultName
            | Output _ ->
                sprintf
                    "output folder for checkpoints, results, plot, TensorBoard (default %s; resuming a .ckpt: its folder); a folder holding a previous run gives way to <folder>2, <folder>3, ..."
                    TrainOptions.DefaultOutputDir
            | Exist_Ok -> "reuse --output even when it holds a previous run (its files are replaced); a folder in use by a live run is still refused"
            | Allow_Cfg_Change -> "resume a .ckpt with a cfg that differs from the one it was trained with (refused otherwise)"
            | Max_Pixels _ ->
                sprintf "refuse images with more pixels than this, from their header (default %s, PIL's limit)" (RgbImage.DefaultMaxPixels.ToString("N0"))
            | Seed _ -> sprintf "random seed (default %d)" demo.Seed
            | Accumulate _ ->
                sprintf
                    "batches per optimizer step (default %s; the reference: max(round(64 / batch), 1), e.g. 4 for batch 16)"
                    (match Option.ofNullable demo.Accumulate with
                     | Some n -> string n
                     | None -> "max(round(64 / batch), 1)")
            | Time_Limit _ -> "stop training after this many minutes, > 0 (the current epoch is evaluated and saved)"
            | Sync_Bn _ -> "under mpirun: BatchNorm statistics over every rank's batch (default: on unless --freeze-layers, as train_multi_GPU.py)"
            | Ema _ ->
                sprintf
                    "keep yolov5's moving average of the weights (decay 0.9999, ramp 2000 steps) and evaluate and save it (default %s; false: the reference)"
                    (onOff demo.Ema)
            | Patience _ -> "stop after this many evaluated epochs without a better mAP@0.5:0.95 (yolov5's --patience; default: never)"
            | Autoanchor ->
                "when the anchor check at the start finds a best possible recall <= 0.98, train with anchors evolved from the labels (written to autoanchor.cfg)"

/// The options that contradict each other or are out of range before they reach the library (which checks the
/// rest in `TrainOptions.Validate`): an ArgumentException naming them.
let private checkArgs (a: ParseResults<TrainArgs>) =
    // the reference turns mosaic off for rect batches without a word; asked for both, say so
    if a.Contains Rect && a.TryGetResult Mosaic = Some true then
        raise (ArgumentException "--rect and --mosaic true conflict: rectangular batches take whole images, so mosaic is off with --rect (drop one)")

    match a.TryGetResult Time_Limit with
    | Some m when not (Double.IsFinite m) || m <= 0.0 || m > TimeSpan.MaxValue.TotalMinutes / 2.0 ->
        raise (ArgumentException(sprintf "--time-limit %g must be a number of minutes > 0" m))
    | _ -> ()

/// Training options from parsed arguments: the demo preset with what was given.
let toOptions (a: ParseResults<TrainArgs>) : TrainOptions =
    checkArgs a

    TrainOptions(
        Cfg = a.GetResult(Cfg, demo.Cfg),
        Data = a.GetResult(Data, demo.Data),
        Hyp = a.GetResult(Hyp, demo.Hyp),
        Optimizer =
            (match a.TryGetResult Optimizer with
             | Some name ->
                 match YoloSpp.Training.Hyp.tryParseOptimizer name with
                 | Some kind -> Nullable(enum<YoloSpp.OptimizerKind> (int kind))
                 | None -> raise (ArgumentException(sprintf "--optimizer %s: expected sgd, adam or adamw" name))
             | None -> demo.Optimizer),
        DecayGroups =
            (match a.TryGetResult Decay_Groups with
             | Some "all" -> Nullable DecayGroups.All
             | Some "weights" -> Nullable DecayGroups.Weights
             | Some other -> raise (ArgumentException(sprintf "--decay-groups %s: expected all or weights" other))
             | None -> demo.DecayGroups),
        Weights = (a.TryGetResult Weights |> Option.toObj),
        Epochs = a.GetResult(Epochs, demo.Epochs),
        BatchSize = a.GetResult(Batch_Size, demo.BatchSize),
        ImageSize = a.GetResult(Img_Size, demo.ImageSize),
        SaveBest = a.GetResult(Savebest, demo.SaveBest),
        NoTest = (a.Contains Notest || demo.NoTest),
        FreezeLayers = (a.Contains Freeze_Layers || demo.FreezeLayers),
        FreezeBackbone = demo.FreezeBackbone,
        Freeze =
            (match a.TryGetResult Freeze with
             | Some "backbone" -> Nullable TrainOptions.Backbone
             | Some n ->
                 match Int32.TryParse n with
                 | true, v when v >= 0 -> Nullable v
                 | _ -> raise (ArgumentException(sprintf "--freeze %s: expected a module count >= 0 or backbone" n))
             | None -> demo.Freeze),
        FineTune = (a.Contains Fine_Tune || demo.FineTune),
        Device = a.GetResult(Device, demo.Device),
        MultiScale = a.GetResult(Multi_Scale, demo.MultiScale),
        Warmup = a.GetResult(Warmup, demo.Warmup),
        Augment = a.GetResult(Augment, demo.Augment),
        Rect = (a.Contains Rect || demo.Rect),
        SingleClass = (a.Contains Single_Cls || demo.SingleClass),
        CacheImages = (a.Contains Cache_Images || demo.CacheImages),
        Mosaic = a.GetResult(Mosaic, demo.Mosaic),
        Amp = a.GetResult(Amp, demo.Amp),
        Bf16 =
            (match a.TryGetResult Bf16 with
             | Some(None | Some On) -> true
             | Some(Some(Auto | Off)) -> false
             | None -> demo.Bf16),
        Bf16Auto =
            (match a.TryGetResult Bf16 with
             | Some(Some Auto) -> true
             | Some _ -> false
             | None -> demo.Bf16Auto),
        ResultName = a.GetResult(Result_Name, demo.ResultName),
        OutputDir = (a.TryGetResult Output |> Option.toObj),
        ExistOk = a.Contains Exist_Ok,
        AllowCfgChange = a.Contains Allow_Cfg_Change,
        Seed = a.GetResult(Seed, demo.Seed),
        Accumulate =
            (match a.TryGetResult Accumulate with
             | Some n -> Nullable n
             | None -> demo.Accumulate),
        TimeLimit =
            (a.TryGetResult Time_Limit
             |> Option.map TimeSpan.FromMinutes
             |> Option.toNullable),
        EvalBatchSize = demo.EvalBatchSize,
        SyncBatchNorm =
            (match a.TryGetResult Sync_Bn with
             | Some b -> Nullable b
             | None -> demo.SyncBatchNorm),
        Ema = a.GetResult(Ema, demo.Ema),
        Patience =
            (match a.TryGetResult Patience with
             | Some n -> Nullable n
             | None -> demo.Patience),
        AutoAnchor = (a.Contains Autoanchor || demo.AutoAnchor)
    )

/// Sets the process-wide image size limit (`RgbImage.MaxPixels`) from --max-pixels, when given.
let applyImageLimit (a: ParseResults<TrainArgs>) =
    a.TryGetResult Max_Pixels |> Option.iter (fun n -> RgbImage.MaxPixels <- n)
