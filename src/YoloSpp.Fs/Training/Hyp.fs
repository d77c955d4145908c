/// Training hyperparameters: the reference's hyp.yaml as a typed record, read with line-numbered errors.
module YoloSpp.Training.Hyp

open YoloSpp
open System
open System.Globalization
open System.IO
open YamlDotNet.RepresentationModel

/// The reference's hyp.yaml keys, plus `gr` (objectness-target GIoU ratio, the reference's fixed model.gr),
/// `gr_ramp` (iterations over which gr ramps linearly from 0 to its value; 0 = fixed, the reference) and `optimizer`
/// (sgd, adam or adamw; as ultralytics' default.yaml, the recipe names its optimizer; absent = sgd, the reference).
type Hyp =
    {
        /// GIoU box loss gain
        Giou: float
        /// class loss gain (COCO-tuned; see adjustForDataset)
        Cls: float
        /// class BCE positive weight
        ClsPw: float
        /// objectness loss gain (tuned for 320 px; see adjustForDataset)
        Obj: float
        /// objectness BCE positive weight
        ObjPw: float
        /// IoU training threshold for anchor matching
        IouT: float
        /// initial learning rate
        Lr0: float
        /// final OneCycle/cosine learning rate fraction (lr0 * lrf)
        Lrf: float
        /// SGD momentum
        Momentum: float
        /// optimizer weight decay
        WeightDecay: float
        /// focal loss gamma (0 = off)
        FlGamma: float
        /// HSV hue augmentation (fraction)
        HsvH: float
        /// HSV saturation augmentation (fraction)
        HsvS: float
        /// HSV value augmentation (fraction)
        HsvV: float
        /// image rotation (+/- degrees)
        Degrees: float
        /// image translation (+/- fraction)
        Translate: float
        /// image scale (+/- gain)
        Scale: float
        /// image shear (+/- degrees)
        Shear: float
        /// objectness target GIoU ratio (model.gr in the reference, 1.0)
        Gr: float
        /// iterations of a linear 0 -> gr ramp at the start of training (0 = none, the reference)
        GrRamp: float
        /// the optimizer (SGD, the reference's, unless the file says otherwise)
        Optimizer: OptimizerChoice
    }

/// The reference's cfg/hyp.yaml values (gr 1.0 fixed).
let defaults =
    {
        Giou = 3.54
        Cls = 37.4
        ClsPw = 1.0
        Obj = 64.3
        ObjPw = 1.0
        IouT = 0.20
        Lr0 = 0.001
        Lrf = 0.01
        Momentum = 0.937
        WeightDecay = 0.0005
        FlGamma = 0.0
        HsvH = 0.0138
        HsvS = 0.678
        HsvV = 0.36
        Degrees = 0.0
        Translate = 0.0
        Scale = 0.0
        Shear = 0.0
        Gr = 1.0
        GrRamp = 0.0
        Optimizer = OptimizerChoice.Sgd
    }

type private Field =
    {
        Key: string
        Required: bool
        Set: Hyp -> float -> Hyp
        Get: Hyp -> float
    }

let private fields =
    let f key req set get =
        {
            Key = key
            Required = req
            Set = set
            Get = get
        }

    [
        f "giou" true (fun h v -> { h with Giou = v }) (fun h -> h.Giou)
        f "cls" true (fun h v -> { h with Cls = v }) (fun h -> h.Cls)
        f "cls_pw" true (fun h v -> { h with ClsPw = v }) (fun h -> h.ClsPw)
        f "obj" true (fun h v -> { h with Obj = v }) (fun h -> h.Obj)
        f "obj_pw" true (fun h v -> { h with ObjPw = v }) (fun h -> h.ObjPw)
        f "iou_t" true (fun h v -> { h with IouT = v }) (fun h -> h.IouT)
        f "lr0" true (fun h v -> { h with Lr0 = v }) (fun h -> h.Lr0)
        f "lrf" true (fun h v -> { h with Lrf = v }) (fun h -> h.Lrf)
        f "momentum" true (fun h v -> { h with Momentum = v }) (fun h -> h.Momentum)
        f "weight_decay" true (fun h v -> { h with WeightDecay = v }) (fun h -> h.WeightDecay)
        f "fl_gamma" true (fun h v -> { h with FlGamma = v }) (fun h -> h.FlGamma)
        f "hsv_h" true (fun h v -> { h with HsvH = v }) (fun h -> h.HsvH)
        f "hsv_s" true (fun h v -> { h with HsvS = v }) (fun h -> h.HsvS)
        f "hsv_v" true (fun h v -> { h with HsvV = v }) (fun h -> h.HsvV)
        f "degrees" true (fun h v -> { h with Degrees = v }) (fun h -> h.Degrees)
        f "translate" true (fun h v -> { h with Translate = v }) (fun h -> h.Translate)
        f "scale" true (fun h v -> { h with Scale = v }) (fun h -> h.Scale)
        f "shear" true (fun h v -> { h with Shear = v }) (fun h -> h.Shear)
        f "gr" false (fun h v -> { h with Gr = v }) (fun h -> h.Gr)
        f "gr_ramp" false (fun h v -> { h with GrRamp = v }) (fun h -> h.GrRamp)
    ]

/// The keys a hyp file must contain.
let internal requiredKeys =
    fields |> List.filter (fun f -> f.Required) |> List.map (fun f -> f.Key)

/// The key naming the optimizer (the only key whose value is a word).
[<Literal>]
let OptimizerKey = "optimizer"

/// The keys a hyp file may contain.
let internal knownKeys = (fields |> List.map (fun f -> f.Key)) @ [ OptimizerKey ]

/// The optimizer's name as a hyp file writes it.
let optimizerName (o: OptimizerChoice) =
    match o with
    | OptimizerChoice.Adam -> "adam"
    | OptimizerChoice.AdamW -> "adamw"
    | _ -> "sgd"

/// An optimizer by name (sgd, adam, adamw; case-insensitive).
let tryParseOptimizer (name: string) : OptimizerChoice option =
    match (if isNull name then "" else name.Trim().ToLowerInvariant()) with
    | "sgd" -> Some OptimizerChoice.Sgd
    | "adam" -> Some OptimizerChoice.Adam
    | "adamw" -> Some OptimizerChoice.AdamW
    | _ -> None

let private domainError (key: string) (v: float) =
    match key with
    | "lr0" when v <= 0.0 -> Some "must be > 0"
    | "lrf" when v <= 0.0 || v > 1.0 -> Some "must be in (0, 1]"
    | "momentum" when v < 0.0 || v >= 1.0 -> Some "must be in [0, 1)"
    | "iou_t" when v < 0.0 || v >= 1.0 -> Some "must be in [0, 1)"
    | "gr" when v < 0.0 || v > 1.0 -> Some "must be in [0, 1]"
    | ("hsv_h" | "hsv_s" | "hsv_v") when v < 0.0 || v > 1.0 -> Some "must be in [0, 1]"
    | "giou"
    | "cls"
    | "obj"
    | "cls_pw"
    | "obj_pw"
    | "fl_gamma"
    | "weight_decay"
    | "degrees"
    | "translate"
    | "scale"
    | "shear"
    | "gr_ramp" when v < 0.0 -> Some "must be >= 0"
    | _ when Double.IsNaN v || Double.IsInfinity v -> Some "must be finite"
    | _ -> None

/// The deepest nesting of mappings and sequences read: a hyp file is one flat mapping, and YamlDotNet builds its
/// document tree recursively, so a file nested tens of thousands deep would overflow the stack.
[<Literal>]
let MaxDepth = 64

/// The first line where `text` nests deeper than `MaxDepth`, found with YamlDotNet's event parser (which keeps its
/// state on the heap), or None.
let private tooDeep (text: string) : int option =
    let parser = YamlDotNet.Core.Parser(new StringReader(text))
    let mutable depth = 0
    let mutable deep = None

    while deep.IsNone && parser.MoveNext() do
        match parser.Current with
        | :? YamlDotNet.Core.Events.MappingStart
        | :? YamlDotNet.Core.Events.SequenceStart ->
            depth <- depth + 1

            if depth > MaxDepth then
                deep <- Some(int parser.Current.Start.Line)
        | :? YamlDotNet.Core.Events.MappingEnd
        | :? YamlDotNet.Core.Events.SequenceEnd -> depth <- depth - 1
        | _ -> ()

    deep

/// Parses hyp.yaml text (a flat mapping of key: number). `file` only names the source in errors.
let parse (file: string) (text: string) : Result<Hyp, SourceError list> =
    let err line reason =
        {
            File = file
            Line = line
            Reason = reason
        }

    try
        match tooDeep text with
        | Some line ->
            Error
                [
                    err line (sprintf "nested more than %d levels deep: a hyp file is one flat mapping of key: number" MaxDepth)
                ]
        | None ->

            let stream = YamlStream()
            stream.Load(new StringReader(text))

            match stream.Documents |> Seq.tryHead with
            | None -> Error [ err 0 "empty file: expected a mapping of hyperparameters" ]
            | Some doc ->
                match doc.RootNode with
                | :? YamlMappingNode as map ->
                    let mutable h = defaults
                    let errors = ResizeArray()
                    let seen = Collections.Generic.HashSet<string>()

                    for KeyValue(k, v) in map.Children do
                        let line = int k.Start.Line
                        let key = (k :?> YamlScalarNode).Value

                        match fields |> List.tryFind (fun f -> f.Key = key) with
                        | None when key = OptimizerKey ->
                            match v with
                            | :? YamlScalarNode as s ->
                                match tryParseOptimizer s.Value with
                                | Some o -> h <- { h with Optimizer = o }
                                | None -> errors.Add(err line (sprintf "optimizer: '%s' is not one of sgd, adam, adamw" s.Value))
                            | _ -> errors.Add(err line "optimizer: expected sgd, adam or adamw")
                        | None -> errors.Add(err line (sprintf "unknown key '%s' (known: %s)" key (String.Join(", ", knownKeys))))
                        | Some f ->
                            seen.Add key |> ignore

                            match v with
                            | :? YamlScalarNode as s ->
                                match Double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture) with
                                | true, x ->
                                    match domainError key x with
                                    | Some why -> errors.Add(err line (sprintf "%s = %s %s" key s.Value why))
                                    | None -> h <- f.Set h x
                                | _ -> errors.Add(err line (sprintf "%s: '%s' is not a number" key s.Value))
                            | _ -> errors.Add(err line (sprintf "%s: expected a number" key))

                    for key in requiredKeys do
                        if not (seen.Contains key) then
                            errors.Add(err 0 (sprintf "missing key '%s'" key))

                    if errors.Count = 0 then Ok h else Error(List.ofSeq errors)
                | node -> Error [ err (int node.Start.Line) "expected a mapping of key: number" ]
    with :? YamlDotNet.Core.YamlException as e ->
        Error [ err (int e.Start.Line) e.Message ]

/// Writes a hyp record as yaml text (every key, including the optional ones).
let toYaml (h: Hyp) : string =
    fields
    |> List.map (fun f -> sprintf "%s: %s" f.Key ((f.Get h).ToString("R", CultureInfo.InvariantCulture)))
    |> fun lines -> lines @ [ sprintf "%s: %s" OptimizerKey (optimizerName h.Optimizer) ]
    |> String.concat "\n"
    |> fun s -> s + "\n"

/// The reference train.py's dataset adjustments, explicit: cls *= nc / 80 (COCO-tuned), obj *= imgSize / 320.
let adjustForDataset (nc: int) (imgSize: int) (h: Hyp) : Hyp =
    { h with
        Cls = h.Cls * float nc / 80.0
        Obj = h.Obj * float imgSize / 320.0
    }

/// The reference train_multi_GPU.py's scaling for several processes: lr0 *= max(1, worldSize · batch / 64). One
/// process is train.py, which does not scale, so worldSize 1 leaves the hyperparameters as they are.
let adjustForWorld (worldSize: int) (batchSize: int) (h: Hyp) : Hyp =
    if worldSize <= 1 then
        h
    else
        { h with
            Lr0 = h.Lr0 * max 1.0 (float (worldSize * batchSize) / 64.0)
        }

/// The objectness-target GIoU ratio at a global iteration: gr, or a linear ramp from 0 over `gr_ramp` iterations.
let grAt (iteration: int) (h: Hyp) : float =
    if h.GrRamp <= 0.0 then
        h.Gr
    else
        h.Gr * min 1.0 (float iteration / h.GrRamp)

/// The loss's view of a hyp record.
let toLossHyp (h: Hyp) : Loss.LossHyp =
    {
        Giou = h.Giou
        Obj = h.Obj
        Cls = h.Cls
        ClsPw = h.ClsPw
        ObjPw = h.ObjPw
        IouT = h.IouT
        FlGamma = h.FlGamma
    }
