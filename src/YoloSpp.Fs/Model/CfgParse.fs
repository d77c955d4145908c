/// Reads Darknet .cfg text as the reference's parse_model_cfg does: `[section]` headers, `key=value` lines, `#`/`;`
/// comments, typed into the layer records of `Cfg`. Pure: text in, `Result` with line-numbered errors out.
module YoloSpp.Model.CfgParse

open System
open System.Globalization
open YoloSpp
open YoloSpp.Model.Cfg
open YoloSpp.Model.CfgGraph

// ---- lexing: lines to sections ----

type internal Entry =
    {
        Key: string
        Value: string
        Line: int
    }

/// A section as written; `Bad` marks a malformed header (already reported) so its keys raise nothing more.
type internal Section =
    {
        Name: string
        Line: int
        Bad: bool
        Entries: Entry list
    }

let private stripComment (s: string) =
    match s.IndexOfAny [| '#'; ';' |] with
    | -1 -> s
    | i -> s.Substring(0, i)

/// Splits text into sections. Comments (`#`/`;`, whole-line or trailing) and blank lines are skipped; surrounding
/// spaces are trimmed (the reference strips lines, keys and values).
let internal lex (file: string) (text: string) : Section list * SourceError list =
    let errors = ResizeArray<SourceError>()

    let fail line reason =
        errors.Add
            {
                File = file
                Line = line
                Reason = reason
            }

    let sections = ResizeArray<Section>()
    let lines = text.TrimStart('\uFEFF').Split('\n')

    for i in 0 .. lines.Length - 1 do
        let n = i + 1
        let line = (stripComment lines.[i]).Trim()

        if line = "" then
            ()
        elif line.StartsWith "[" then
            let inner = line.TrimStart('[').TrimEnd(']').Trim()
            let ok = line.EndsWith "]" && inner <> "" && inner.IndexOfAny [| '['; ']' |] < 0

            if not ok then
                fail n (sprintf "malformed section header '%s': expected [name]" line)

            sections.Add
                {
                    Name = inner
                    Line = n
                    Bad = not ok
                    Entries = []
                }
        else
            match line.IndexOf '=' with
            | -1 -> fail n (sprintf "expected 'key=value' or a [section] header, got '%s'" line)
            | eq ->
                let key = line.Substring(0, eq).Trim()
                let value = line.Substring(eq + 1).Trim()

                if key = "" then
                    fail n (sprintf "missing key before '=' in '%s'" line)
                elif sections.Count = 0 then
                    fail n (sprintf "key '%s' appears before the first section header" key)
                else
                    let s = sections.[sections.Count - 1]

                    match s.Entries |> List.tryFind (fun e -> e.Key = key) with
                    | Some first when not s.Bad -> fail n (sprintf "duplicate key '%s' in [%s] (first given at line %d)" key s.Name first.Line)
                    | _ ->
                        let e = { Key = key; Value = value; Line = n }
                        sections.[sections.Count - 1] <- { s with Entries = s.Entries @ [ e ] }

    List.ofSeq sections, List.ofSeq errors

// ---- typing: a section to a layer ----

/// Keys each layer section may hold. The reference asserts on keys it does not know; the [yolo] keys after the
/// first three are Darknet training options the reference's model accepts and ignores.
let internal supportedKeys: Map<string, string list> =
    Map.ofList
        [
            "convolutional", [ "batch_normalize"; "filters"; "size"; "stride"; "pad"; "activation" ]
            "shortcut", [ "from"; "activation" ]
            "route", [ "layers" ]
            "maxpool", [ "size"; "stride" ]
            "upsample", [ "stride" ]
            "yolo",
            [
                "mask"
                "anchors"
                "classes"
                "num"
                "jitter"
                "ignore_thresh"
                "truth_thresh"
                "random"
                "scale_x_y"
                "iou_thresh"
                "cls_normalizer"
                "iou_normalizer"
                "iou_loss"
                "nms_kind"
                "beta_nms"
                "max_delta"
            ]
        ]

type private Read<'a> =
    | Absent
    | Bad
    | Got of 'a

let private parseInt (key: string) (s: string) =
    match Int32.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) with
    | true, v -> Ok v
    | _ -> Error(sprintf "bad number for '%s': '%s' is not an integer" key s)

let private parseFloat (key: string) (s: string) =
    match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
    | true, v when Double.IsFinite v -> Ok v
    | _ -> Error(sprintf "bad number for '%s': '%s' is not a number" key s)

let private check (ok: 'a -> bool) (why: 'a -> string) (r: Result<'a, string>) =
    r |> Result.bind (fun v -> if ok v then Ok v else Error(why v))

let private positive key s =
    parseInt key s
    |> check (fun v -> v > 0) (sprintf "'%s' must be > 0, got %d" key)

let private flag key s =
    parseInt key s
    |> check (fun v -> v = 0 || v = 1) (sprintf "'%s' must be 0 or 1, got %d" key)
    |> Result.map ((=) 1)

let private activation key (s: string) =
    match s with
    | "leaky" -> Ok Leaky
    | "linear" -> Ok Linear
    | _ -> Error(sprintf "unknown activation '%s' for '%s' (supported: leaky, linear)" s key)

/// A comma list; each element is trimmed (the reference splits on ',' and int()/float() ignore spaces).
let private list (parse: string -> Result<'a, string>) (s: string) =
    let rec go acc =
        function
        | [] -> Ok(List.rev acc)
        | (x: string) :: rest ->
            match parse (x.Trim()) with
            | Ok v -> go (v :: acc) rest
            | Error e -> Error e

    go [] (List.ofArray (s.Split ','))

/// Reads one section's keys, recording each problem; a layer comes out only when every key read cleanly.
type private Reader(file: string, sec: Section, errors: ResizeArray<SourceError>) =
    member _.Fail(line, reason) =
        errors.Add
            {
                File = file
                Line = line
                Reason = reason
            }

    member _.Entry(key) =
        sec.Entries |> List.tryFind (fun e -> e.Key = key)

    member r.Get<'a>(key: string, parse: string -> Result<'a, string>) : Read<'a> =
        match r.Entry key with
        | None -> Absent
        | Some e ->
            match parse e.Value with
            | Ok v -> Got v
            | Error why ->
                r.Fail(e.Line, why)
                Bad

    /// A key without default: its absence is reported at the section's header line.
    member r.Required<'a>(key: string, parse: string -> Result<'a, string>) : 'a option =
        match r.Get(key, parse) with
        | Got v -> Some v
        | Absent ->
            r.Fail(sec.Line, sprintf "missing required key '%s' in [%s]" key sec.Name)
            None
        | Bad -> None

    member r.Default<'a>(key: string, value: 'a, parse: string -> Result<'a, string>) : 'a option =
        match r.Get(key, parse) with
        | Got v -> Some v
        | Absent -> Some value
        | Bad -> None

let private typeLayer (r: Reader) (sec: Section) : Layer option =
    match sec.Name with
    | "convolutional" ->
        // Darknet's defaults (batch_normalize 0, stride 1, pad 0); activation is required because Darknet's
        // default, logistic, is not an activation the reference builds.
        let bn = r.Default("batch_normalize", false, flag "batch_normalize")
        let filters = r.Required("filters", positive "filters")
        let size = r.Required("size", positive "size")
        let stride = r.Default("stride", 1, positive "stride")
        let pad = r.Default("pad", false, flag "pad")
        let act = r.Required("activation", activation "activation")

        match bn, filters, size, stride, pad, act with
        | Some bn, Some f, Some k, Some s, Some p, Some a ->
            Some(
                Convolutional
                    {
                        BatchNormalize = bn
                        Filters = f
                        Size = k
                        Stride = s
                        Pad = p
                        Activation = a
                    }
            )
        | _ -> None
    | "shortcut" ->
        let from = r.Required("from", list (parseInt "from"))
        // The reference's WeightedFeatureFusion applies no activation; accepting leaky would silently differ.
        let linearOnly s =
            activation "activation" s
            |> check ((=) Linear) (fun _ -> sprintf "[shortcut] activation must be linear (the reference applies none), got '%s'" s)

        let act = r.Default("activation", Linear, linearOnly)

        match from, act with
        | Some f, Some a -> Some(Shortcut { From = f; Activation = a })
        | _ -> None
    | "route" ->
        r.Required("layers", list (parseInt "layers"))
        |> Option.map (fun l -> Route { Layers = l })
    | "maxpool" ->
        // Darknet: stride defaults to 1 and size to the stride.
        match r.Default("stride", 1, positive "stride") with
        | Some s ->
            r.Default("size", s, positive "size")
            |> Option.map (fun k -> MaxPool { Size = k; Stride = s })
        | None ->
            r.Get("size", positive "size") |> ignore
            None
    | "upsample" ->
        r.Default("stride", 2, positive "stride")
        |> Option.map (fun s -> Upsample { Stride = s })
    | "yolo" ->
        let maskEntry =
            parseInt "mask"
            >> check (fun v -> v >= 0) (sprintf "'mask' entry %d is negative")

        let mask = r.Required("mask", list maskEntry)

        let anchorValue =
            parseFloat "anchors"
            >> check (fun v -> v > 0.0) (sprintf "anchor value %g must be > 0")

        let pairs (xs: float list) =
            if xs.Length % 2 <> 0 then
                Error(sprintf "'anchors' must be w,h pairs: got an odd count of %d values" xs.Length)
            else
                Ok(xs |> List.chunkBySize 2 |> List.map (fun p -> p.[0], p.[1]))

        let anchors = r.Required("anchors", list anchorValue >> Result.bind pairs)

        let classCount =
            parseInt "classes"
            >> check (fun v -> v >= 1) (sprintf "'classes' must be >= 1, got %d")

        let classes = r.Required("classes", classCount)

        match mask, anchors, classes with
        | Some m, Some a, Some c ->
            match m |> List.tryFind (fun i -> i >= a.Length) with
            | Some i ->
                let line = (r.Entry "mask").Value.Line
                r.Fail(line, sprintf "mask index %d is beyond the %d anchors (valid 0..%d)" i a.Length (a.Length - 1))
                None
            | None -> Some(Yolo { Mask = m; Anchors = a; Classes = c })
        | _ -> None
    | _ -> None

/// Types a layer section: unknown sections and unsupported keys are reported, then the keys are read.
let private layerOf file (errors: ResizeArray<SourceError>) (sec: Section) : Layer option =
    let r = Reader(file, sec, errors)

    if sec.Bad then
        None
    elif sec.Name = "net" then
        r.Fail(sec.Line, "[net] may only appear once, as the first section")
        None
    else
        match supportedKeys.TryFind sec.Name with
        | None ->
            let known = String.Join(", ", supportedKeys.Keys)
            r.Fail(sec.Line, sprintf "unknown section [%s] (supported: net, %s)" sec.Name known)
            None
        | Some keys ->
            let unsupported =
                sec.Entries |> List.filter (fun e -> not (List.contains e.Key keys))

            for e in unsupported do
                let supported = String.Join(", ", keys)
                r.Fail(e.Line, sprintf "key '%s' is not supported in [%s] (supported: %s)" e.Key sec.Name supported)

            match typeLayer r sec with
            | Some l when unsupported.IsEmpty -> Some l
            | _ -> None

let private netOf file (errors: ResizeArray<SourceError>) (sec: Section) : NetOptions =
    let r = Reader(file, sec, errors)
    let typed = [ "batch"; "subdivisions"; "width"; "height"; "channels" ]

    let opt key =
        match r.Get(key, positive key) with
        | Got v -> Some v
        | _ -> None

    {
        Line = sec.Line
        Batch = defaultArg (opt "batch") 1
        Subdivisions = defaultArg (opt "subdivisions") 1
        Width = opt "width"
        Height = opt "height"
        Channels = defaultArg (opt "channels") 3
        Other =
            [
                for e in sec.Entries do
                    if not (List.contains e.Key typed) then
                        e.Key, e.Value
            ]
    }

/// Checks what spans modules: route/shortcut entries must point back at a feature map, a yolo must directly follow
/// its prediction conv with filters = len(mask)·(classes+5), and no layer may consume a yolo output.
let private validateGraph file (errors: ResizeArray<SourceError>) (secs: Section[]) (layers: Layer option[]) =
    let fail line reason =
        errors.Add
            {
                File = file
                Line = line
                Reason = reason
            }

    let entryLine (s: Section) key =
        s.Entries
        |> List.tryFind (fun e -> e.Key = key)
        |> Option.map (fun e -> e.Line)
        |> Option.defaultValue s.Line

    let isYolo j =
        match layers.[j] with
        | Some(Yolo _) -> true
        | _ -> false

    for i in 0 .. layers.Length - 1 do
        let sec = secs.[i]

        let checkRefs key (entries: int list) =
            for l in entries do
                let j = resolveIndex i l

                let fail why =
                    fail (entryLine sec key) (sprintf "[%s] %s entry %d %s" sec.Name key l why)

                if j < 0 then
                    fail (sprintf "resolves to layer %d, before the first layer" j)
                elif j >= i then
                    fail (sprintf "resolves to layer %d, which is not before this layer (%d)" j i)
                elif isYolo j then
                    fail (sprintf "refers to [yolo] layer %d, whose output is not a feature map" j)

        match layers.[i] with
        | None -> ()
        | Some(Route r) -> checkRefs "layers" r.Layers
        | Some(Shortcut s) ->
            if i = 0 then
                fail sec.Line "[shortcut] cannot be the first layer: it adds to the previous layer's output"

            checkRefs "from" s.From
        | Some(Yolo y) ->
            match (if i > 0 then layers.[i - 1] else None) with
            | Some(Convolutional c) ->
                let expected = y.Mask.Length * (y.Classes + 5)

                if c.Filters <> expected then
                    let why =
                        sprintf "filters=%d of the [convolutional] before the [yolo] at line %d must be " c.Filters sec.Line
                        + sprintf "len(mask)*(classes+5) = %d*(%d+5) = %d" y.Mask.Length y.Classes expected

                    fail (entryLine secs.[i - 1] "filters") why
            | None when i > 0 -> () // the previous section already failed
            | _ -> fail sec.Line "[yolo] must directly follow a [convolutional] layer (its prediction conv)"
        | Some _ -> ()
        // Convs, maxpools, upsamples, shortcuts and yolos take the previous output as input.
        match layers.[i] with
        | Some(Route _)
        | Some(Yolo _)
        | None -> ()
        | Some _ when i > 0 && isYolo (i - 1) ->
            let why =
                "follows a [yolo] layer, whose output is not a feature map (put a [route] between)"

            fail sec.Line (sprintf "[%s] %s" sec.Name why)
        | Some _ -> ()

/// Parses and validates a Darknet cfg. `file` only names the source in errors. All problems found are returned,
/// in line order; the first section must be `[net]` (as Darknet requires) and at least one layer must follow.
let parse (file: string) (text: string) : Result<NetCfg, SourceError list> =
    let sections, lexErrors = lex file text
    let errors = ResizeArray<SourceError>(lexErrors)

    let fail line reason =
        errors.Add
            {
                File = file
                Line = line
                Reason = reason
            }

    let net, layerSecs =
        match sections with
        | first :: rest when first.Name = "net" && not first.Bad -> Some(netOf file errors first), rest
        | first :: _ ->
            if not first.Bad then
                fail first.Line (sprintf "the first section must be [net], got [%s]" first.Name)

            None, sections
        | [] -> None, []

    if sections.IsEmpty then
        fail 0 "no sections: a cfg starts with [net] followed by layers"
    elif layerSecs.IsEmpty then
        fail (List.head sections).Line "no layers after [net]"

    let secs = Array.ofList layerSecs
    let layers = secs |> Array.map (layerOf file errors)
    validateGraph file errors secs layers

    match net with
    | Some n when errors.Count = 0 ->
        let modules =
            [
                for i in 0 .. secs.Length - 1 ->
                    {
                        Index = i
                        Line = secs.[i].Line
                        Layer = layers.[i].Value
                    }
            ]

        Ok { Net = n; Modules = modules }
    | _ -> Error(errors |> Seq.sortBy (fun e -> e.Line) |> List.ofSeq)
