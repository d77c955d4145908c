/// The module graph of a parsed cfg, as the reference's create_modules walks it: which modules a route or shortcut
/// reads, every module's output channels, the kept outputs (routs) and the yolo heads.
module YoloSpp.Model.CfgGraph

open YoloSpp.Model.Cfg

/// The absolute module index of a route/shortcut entry `l` written at module `index`: negative entries are
/// relative (index + l), non-negative ones absolute, as the reference's create_modules.
let internal resolveIndex (index: int) (l: int) : int = if l < 0 then index + l else l

/// The absolute indices of the modules a route or shortcut reads besides its input ([] for other layers).
let references (m: ModuleDef) : int list =
    match m.Layer with
    | Route r -> r.Layers |> List.map (resolveIndex m.Index)
    | Shortcut s -> s.From |> List.map (resolveIndex m.Index)
    | _ -> []

/// Output channels of every module of a parsed cfg: conv = filters; route = sum over its layers; shortcut, maxpool,
/// upsample and yolo keep their input's (the first module's input has `Net.Channels`).
/// The reference's route sum reads output_filters[l + 1 if l > 0 else l], which gives the image's 3 channels for an
/// absolute 0; here absolute 0 is module 0.
let outputChannels (cfg: NetCfg) : int list =
    let mods = Array.ofList cfg.Modules
    let out = Array.zeroCreate mods.Length

    for i in 0 .. mods.Length - 1 do
        let input = if i = 0 then cfg.Net.Channels else out.[i - 1]

        out.[i] <-
            match mods.[i].Layer with
            | Convolutional c -> c.Filters
            | Route _ -> references mods.[i] |> List.sumBy (fun j -> out.[j])
            | _ -> input

    List.ofArray out

/// The reference's `routs`, sorted: modules whose outputs later modules read (each route layer and shortcut from,
/// resolved) plus every conv without BN (the reference marks these yolo prediction convs as kept outputs).
let routs (cfg: NetCfg) : int list =
    cfg.Modules
    |> List.collect (fun m ->
        match m.Layer with
        | Convolutional c when not c.BatchNormalize -> [ m.Index ]
        | _ -> references m)
    |> List.distinct
    |> List.sort

/// Indices of the `[yolo]` modules, in order (the reference gives them strides 32, 16, 8 in this order).
let yoloLayers (cfg: NetCfg) : int list =
    cfg.Modules
    |> List.choose (fun m ->
        match m.Layer with
        | Yolo _ -> Some m.Index
        | _ -> None)

/// A yolo layer's anchors in pixels: anchors[mask].
let maskedAnchors (y: YoloCfg) : (float * float) list =
    y.Mask |> List.map (fun i -> y.Anchors.[i])

/// The modules of the cfg's backbone, counted from module 0: up to the last shortcut before the first route or
/// yolo layer (where the head starts reading earlier outputs); yolov3-spp's is Darknet-53's 75 modules, shapes-spp's
/// its first 27. None when the cfg has no shortcut before its head (no residual backbone to name).
let internal backboneModules (cfg: NetCfg) : int option =
    cfg.Modules
    |> List.takeWhile (fun m ->
        match m.Layer with
        | Route _
        | Yolo _ -> false
        | _ -> true)
    |> List.filter (fun m ->
        match m.Layer with
        | Shortcut _ -> true
        | _ -> false)
    |> List.tryLast
    |> Option.map (fun m -> m.Index + 1)
