/// What a cfg must satisfy to run, checked when it is read (before any tensor is allocated), beyond what `CfgParse.parse`
/// types: the Darknet [yolo] and [net] options the port reads past still hold values of their kind, `num` agrees with
/// the anchors, route and shortcut entries are not the ambiguous `-0`, widths and the parameter count stay within a
/// budget no YOLO network comes near, and the feature maps fit together (a route joins maps of one size, a shortcut
/// adds maps of one size) at some input size. Errors name the file, line, layer index and reason.
module internal YoloSpp.Model.CfgCheck

open System
open System.Globalization
open YoloSpp
open YoloSpp.Model.Cfg
open YoloSpp.Model.CfgGraph
open YoloSpp.Model.CfgParse

/// The widest layer accepted: no published YOLO layer needs more (YOLO9000's 9,418-class head has 28,269 filters);
/// beyond it a `filters` value is a typo, and such a layer takes minutes and gigabytes just to set up.
[<Literal>]
let MaxFilters = 65536

/// The largest kernel, stride or upsampling factor accepted (Darknet networks use 1 to 13).
[<Literal>]
let MaxWindow = 1024

/// The most parameters a network may have: 3.5 times the largest YOLO published (YOLOv4-P7's 287 M), 4 GB of
/// float32 weights before gradients and momentum.
[<Literal>]
let MaxParameters = 1_000_000_000L

/// The most elements one feature map of one image may hold (8 GB of float32; a larger one cannot be indexed by 32-bit
/// code). yolov3-spp's largest map at 1024 px has 33.5 million.
let maxMapElements = int64 Int32.MaxValue

/// Input sizes a cfg is tried at when read: it must fit together at one of them at least (a stride-64 network
/// fits at 512 but not at 416). The size actually used is checked again when the network first sees it.
let probeSizes = [ 320; 416; 512; 640; 1024 ]

type private Kind =
    | Number of low: float * high: float
    | Choice of string list
    | Ints
    | Numbers

/// [yolo] keys the port reads past (Darknet training options the reference ignores too), with what Darknet expects.
let private yoloKeys =
    Map.ofList
        [
            "jitter", Number(0.0, 1.0)
            "ignore_thresh", Number(0.0, 1.0)
            "truth_thresh", Number(0.0, 1.0)
            "iou_thresh", Number(0.0, 1.0)
            "random", Number(0.0, Double.MaxValue)
            "scale_x_y", Number(Double.Epsilon, Double.MaxValue)
            "cls_normalizer", Number(0.0, Double.MaxValue)
            "iou_normalizer", Number(0.0, Double.MaxValue)
            "beta_nms", Number(0.0, Double.MaxValue)
            "max_delta", Number(0.0, Double.MaxValue)
            "iou_loss", Choice [ "mse"; "iou"; "giou"; "diou"; "ciou" ]
            "nms_kind", Choice [ "greedynms"; "diounms"; "cornersnms"; "default" ]
        ]

/// [net] keys Darknet reads as numbers (the port takes these settings from its own options, but a value that is
/// not a number is a broken file).
let private netKeys =
    Map.ofList
        [
            for k in
                [
                    "learning_rate"
                    "momentum"
                    "decay"
                    "angle"
                    "saturation"
                    "exposure"
                    "hue"
                    "power"
                ] -> k, Number(Double.MinValue, Double.MaxValue)
            for k in [ "burn_in"; "max_batches"; "mosaic"; "letter_box" ] -> k, Number(0.0, Double.MaxValue)
            yield "steps", Ints
            yield "scales", Numbers
        ]

let private number (s: string) =
    match Double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture) with
    | true, v when Double.IsFinite v -> Some v
    | _ -> None

let private kindError (key: string) (value: string) (kind: Kind) =
    let items () =
        value.Split ',' |> Array.map (fun s -> s.Trim())

    match kind with
    | Number(lo, hi) ->
        match number value with
        | None -> Some(sprintf "bad number for '%s': '%s' is not a number" key value)
        | Some v when v < lo || v > hi ->
            let range =
                if hi = Double.MaxValue then
                    sprintf ">= %g" lo
                else
                    sprintf "in [%g, %g]" lo hi

            Some(sprintf "'%s' = %s must be %s" key value range)
        | Some _ -> None
    | Choice options when not (List.contains (value.Trim().ToLowerInvariant()) options) ->
        Some(sprintf "unknown value '%s' for '%s' (Darknet knows: %s)" value key (String.Join(", ", options)))
    | Choice _ -> None
    | Ints ->
        items ()
        |> Array.tryFind (fun s -> not (fst (Int32.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture))))
        |> Option.map (sprintf "bad number for '%s': '%s' is not an integer" key)
    | Numbers ->
        items ()
        |> Array.tryFind (number >> Option.isNone)
        |> Option.map (sprintf "bad number for '%s': '%s' is not a number" key)

/// A module's header as messages name it: "layer 12 [route]".
let private name (m: ModuleDef) =
    sprintf "layer %d [%s]" m.Index (Summary.typeName m.Layer)

/// A problem of `shapesAt` as a message: "layer 12 [route] joins ...".
let problemText (m: ModuleDef, why: string) = sprintf "%s %s" (name m) why

/// Checks of each section's keys: the ignored [yolo] and [net] options, `num`, `-0` entries, widths and windows.
let private keyErrors (file: string) (text: string) (cfg: NetCfg) : SourceError list =
    let sections, _ = lex file text
    let mods = Array.ofList cfg.Modules

    let err line reason =
        {
            File = file
            Line = line
            Reason = reason
        }

    [
        for sec in sections do
            let kinds =
                match sec.Name with
                | "yolo" -> yoloKeys
                | "net" -> netKeys
                | _ -> Map.empty

            for e in sec.Entries do
                match kinds.TryFind e.Key with
                | Some kind ->
                    match kindError e.Key e.Value kind with
                    | Some why -> yield err e.Line why
                    | None -> ()
                | None -> ()
                // Python reads -0 as 0: the first layer, not this one; whoever writes it meant something else
                if
                    (e.Key = "from" || e.Key = "layers")
                    && e.Value.Split ',' |> Array.exists (fun s -> s.Trim() = "-0")
                then
                    yield
                        err
                            e.Line
                            (sprintf
                                "[%s] %s entry -0: relative 0 would be this layer itself, which it cannot read, and the reference reads -0 as absolute layer 0 (write 0 if the first layer is meant)"
                                sec.Name
                                e.Key)
        // the reference assigns the yolo layers strides 32, 16, 8 in order: a fourth has none
        match mods |> Array.filter (fun m -> m.Layer.IsYolo) with
        | yolos when yolos.Length > 3 ->
            yield err yolos.[3].Line (sprintf "%s: a fourth [yolo] layer (the reference assigns strides 32, 16, 8 only)" (name yolos.[3]))
        | _ -> ()

        for m in mods do
            match m.Layer with
            | Yolo y ->
                let sec = sections |> List.find (fun s -> s.Line = m.Line)

                match sec.Entries |> List.tryFind (fun e -> e.Key = "num") with
                | Some e ->
                    match Int32.TryParse(e.Value, NumberStyles.None, CultureInfo.InvariantCulture) with
                    | true, n when n = y.Anchors.Length -> ()
                    | true, n ->
                        yield err e.Line (sprintf "%s: num=%d but 'anchors' lists %d w,h pairs (Darknet's num is the anchor count)" (name m) n y.Anchors.Length)
                    | _ -> yield err e.Line (sprintf "bad number for 'num': '%s' is not a positive integer" e.Value)
                | None -> ()
            | Convolutional c when c.Filters > MaxFilters ->
                yield err m.Line (sprintf "%s: filters=%d is wider than any YOLO layer (at most %d): a typo?" (name m) c.Filters MaxFilters)
            | Convolutional c when c.Size > MaxWindow || c.Stride > MaxWindow ->
                yield err m.Line (sprintf "%s: size=%d, stride=%d: at most %d each" (name m) c.Size c.Stride MaxWindow)
            | MaxPool p when p.Size > MaxWindow || p.Stride > MaxWindow ->
                yield err m.Line (sprintf "%s: size=%d, stride=%d: at most %d each" (name m) p.Size p.Stride MaxWindow)
            | Upsample u when u.Stride > MaxWindow -> yield err m.Line (sprintf "%s: stride=%d: at most %d" (name m) u.Stride MaxWindow)
            | _ -> ()
    ]

/// The parameters (and buffers) of each conv of a cfg: weights, and a bias or BatchNorm's four vectors.
let parameterCounts (cfg: NetCfg) : (ModuleDef * int64) list =
    let channels = Array.ofList (outputChannels cfg)

    cfg.Modules
    |> List.choose (fun m ->
        match m.Layer with
        | Convolutional c ->
            let input =
                if m.Index = 0 then
                    cfg.Net.Channels
                else
                    channels.[m.Index - 1]

            let weights = int64 input * int64 c.Filters * int64 c.Size * int64 c.Size
            Some(m, weights + (if c.BatchNormalize then 4L else 1L) * int64 c.Filters)
        | _ -> None)

let private budgetErrors (file: string) (cfg: NetCfg) : SourceError list =
    let counts = parameterCounts cfg
    let total = counts |> List.sumBy snd

    if total <= MaxParameters then
        []
    else
        let m, largest = counts |> List.maxBy snd

        [
            {
                File = file
                Line = m.Line
                Reason =
                    sprintf
                        "the network would have %s parameters (%.1f GB as float32), above the limit of %s; the largest layer is %s with %s: check its filters and size"
                        (total.ToString("N0", CultureInfo.InvariantCulture))
                        (float total * 4.0 / 1e9)
                        (MaxParameters.ToString("N0", CultureInfo.InvariantCulture))
                        (name m)
                        (largest.ToString("N0", CultureInfo.InvariantCulture))
            }
        ]

/// The output [channels; h; w] of every module at an input of h × w, and the problems found on the way: a map of size
/// 0 or below, a route or shortcut over maps of different sizes, a map beyond `maxMapElements`. Each problem is the
/// module and why. Shortcuts over different channel counts are not problems (the reference adds the channels they share).
let shapesAt (cfg: NetCfg) (h: int, w: int) : (ModuleDef * string) list =
    let mods = Array.ofList cfg.Modules
    let shapes = Array.zeroCreate<int64[]> mods.Length
    let problems = ResizeArray<ModuleDef * string>()
    let size (s: int64[]) = sprintf "%dx%d" s.[2] s.[1]

    let out (n: int64) (k: int) (stride: int) (pad: int) =
        (n + 2L * int64 pad - int64 k) / int64 stride + 1L

    let mutable input = [| int64 cfg.Net.Channels; int64 h; int64 w |]
    let mutable broken = false

    for i in 0 .. mods.Length - 1 do
        let m = mods.[i]

        let output =
            if broken then
                input
            else
                match m.Layer with
                | Convolutional c ->
                    let pad = if c.Pad then c.Size / 2 else 0

                    [|
                        int64 c.Filters
                        out input.[1] c.Size c.Stride pad
                        out input.[2] c.Size c.Stride pad
                    |]
                | MaxPool p when p.Size = 2 && p.Stride = 1 -> input
                | MaxPool p ->
                    let pad = (p.Size - 1) / 2

                    [|
                        input.[0]
                        out input.[1] p.Size p.Stride pad
                        out input.[2] p.Size p.Stride pad
                    |]
                | Upsample u -> [| input.[0]; input.[1] * int64 u.Stride; input.[2] * int64 u.Stride |]
                | Route _ ->
                    let parts = references m |> List.map (fun j -> j, shapes.[j])
                    let j0, first = List.head parts

                    for j, s in List.tail parts do
                        if s.[1] <> first.[1] || s.[2] <> first.[2] then
                            problems.Add(
                                m,
                                sprintf
                                    "joins layer %d (%s) and layer %d (%s), maps of different sizes: a route concatenates maps of one size"
                                    j0
                                    (size first)
                                    j
                                    (size s)
                            )

                    [| parts |> List.sumBy (fun (_, s) -> s.[0]); first.[1]; first.[2] |]
                | Shortcut _ ->
                    for j in references m do
                        let s = shapes.[j]

                        if s.[1] <> input.[1] || s.[2] <> input.[2] then
                            problems.Add(
                                m,
                                sprintf
                                    "adds layer %d (%s) to its input (%s), maps of different sizes: a shortcut adds maps of one size"
                                    j
                                    (size s)
                                    (size input)
                            )

                    input
                | Yolo _ -> input

        if not broken then
            if output.[1] <= 0L || output.[2] <= 0L then
                problems.Add(m, sprintf "its output would be %dx%d: the map before it is too small for it" output.[2] output.[1])
                broken <- true
            elif output.[0] * output.[1] * output.[2] > maxMapElements then
                problems.Add(m, sprintf "its output %dx%dx%d is too large for one image" output.[0] output.[2] output.[1])
                broken <- true
            elif problems.Count > 0 then
                broken <- true

        shapes.[i] <- output
        input <- output

    List.ofSeq problems

let private shapeErrors (file: string) (cfg: NetCfg) : SourceError list =
    let at = probeSizes |> List.map (fun s -> s, shapesAt cfg (s, s))

    if at |> List.exists (fun (_, p) -> p.IsEmpty) then
        []
    else
        let s, problems = at |> List.find (fun (s, _) -> s = 416)

        [
            for m, why in problems ->
                {
                    File = file
                    Line = m.Line
                    Reason = sprintf "%s %s (at a %dx%d input; no input size from %d to %d fits)" (name m) why s s (List.head probeSizes) (List.last probeSizes)
                }
        ]

/// Parses a cfg and checks that it can run (see the module's summary); every problem with its file:line.
let parse (file: string) (text: string) : Result<NetCfg, SourceError list> =
    CfgParse.parse file text
    |> Result.bind (fun cfg ->
        match keyErrors file text cfg with
        | [] ->
            match budgetErrors file cfg @ shapeErrors file cfg with
            | [] -> Ok cfg
            | errors -> Error errors
        | errors -> Error(errors |> List.sortBy (fun e -> e.Line)))

/// The first difference between the network a checkpoint was trained with and the one a cfg now builds (the input
/// channels and the layers; [net] sizes and comments do not change the network), or None when they are the same.
let difference (trained: NetCfg) (current: NetCfg) : string option =
    // the layer's keys as the cfg writer spells them, in its fixed order
    let body (m: ModuleDef) =
        let lines =
            (CfgWrite.toText { Net = current.Net; Modules = [ m ] }).Split('\n', StringSplitOptions.RemoveEmptyEntries)

        lines.[(lines |> Array.findIndexBack (fun l -> l.StartsWith "[")) + 1 ..]

    let a, b = Array.ofList trained.Modules, Array.ofList current.Modules

    if trained.Net.Channels <> current.Net.Channels then
        Some(sprintf "[net] channels=%d in the checkpoint, %d now" trained.Net.Channels current.Net.Channels)
    else
        match Seq.zip a b |> Seq.tryFind (fun (x, y) -> x.Layer <> y.Layer) with
        | Some(x, y) when Summary.typeName x.Layer <> Summary.typeName y.Layer ->
            Some(sprintf "layer %d is [%s] in the checkpoint, [%s] now" x.Index (Summary.typeName x.Layer) (Summary.typeName y.Layer))
        | Some(x, y) ->
            let was, now = body x, body y

            let diffs =
                Array.zip was now
                |> Array.filter (fun (p, q) -> p <> q)
                |> Array.map (fun (p, q) -> sprintf "%s in the checkpoint, %s now" p q)

            Some(sprintf "%s: %s" (name y) (String.Join("; ", diffs)))
        | None when a.Length <> b.Length -> Some(sprintf "%d layers in the checkpoint, %d now" a.Length b.Length)
        | None -> None
