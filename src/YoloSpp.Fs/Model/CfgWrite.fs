/// Writing Darknet cfg text: the reference's calculate_dataset class-count rewrite, and a NetCfg serializer.
module internal YoloSpp.Model.CfgWrite

open YoloSpp
open System
open System.Globalization
open YoloSpp.Model.Cfg
open YoloSpp.Model.CfgGraph
open YoloSpp.Model.CfgParse

let private num (x: float) =
    x.ToString("R", CultureInfo.InvariantCulture)

/// Anchors as Darknet writes them: "w,h,  w,h, ...".
let private anchorsText (anchors: (float * float) list) =
    anchors |> List.map (fun (w, h) -> num w + "," + num h) |> String.concat ",  "

/// Replaces the value of a `key=value` line, keeping the key's spelling, the spaces around the value, any trailing
/// comment and a '\r' line end.
let private replaceValue (line: string) (value: string) =
    let cr = line.EndsWith "\r"
    let body = if cr then line.Substring(0, line.Length - 1) else line
    let eq = body.IndexOf '='
    let after = body.Substring(eq + 1)

    let valuePart, comment =
        match after.IndexOfAny [| '#'; ';' |] with
        | -1 -> after, ""
        | i -> after.Substring(0, i), after.Substring i

    let lead = valuePart.Length - valuePart.TrimStart().Length

    let trail =
        if lead = valuePart.Length then
            0
        else
            valuePart.Length - valuePart.TrimEnd().Length

    body.Substring(0, eq + 1)
    + valuePart.Substring(0, lead)
    + value
    + valuePart.Substring(valuePart.Length - trail)
    + comment
    + (if cr then "\r" else "")

/// The cfg text with `classes=nc` in every `[yolo]` and `filters=len(mask)*(nc+5)` in the `[convolutional]` just
/// before it (the reference's calculate_dataset rewrite), and, when given, every yolo's `anchors` replaced. Every
/// other line (comments, blank lines, order, line ends) is kept, so line numbers do not move. The result is parsed:
/// any error of the input (or an anchor list the masks no longer fit) comes back with its line.
let withClasses (file: string) (nc: int) (anchors: (float * float) list option) (text: string) : Result<string, SourceError list> =
    if nc < 1 then
        Error
            [
                {
                    File = file
                    Line = 0
                    Reason = sprintf "class count must be >= 1, got %d" nc
                }
            ]
    else
        let sections, _ = lex file text
        let lines = text.Split('\n')

        let set (e: Entry) value =
            lines.[e.Line - 1] <- replaceValue lines.[e.Line - 1] value

        let entry (s: Section) key =
            s.Entries |> List.tryFind (fun e -> e.Key = key)

        for prev, sec in List.pairwise sections do
            if sec.Name = "yolo" then
                entry sec "classes" |> Option.iter (fun e -> set e (string nc))

                match anchors with
                | Some a -> entry sec "anchors" |> Option.iter (fun e -> set e (anchorsText a))
                | None -> ()
                // A missing mask, or a yolo not after a conv, is left for the parse below to report.
                match entry sec "mask", entry prev "filters" with
                | Some mask, Some filters when prev.Name = "convolutional" ->
                    let n = mask.Value.Split(',').Length
                    set filters (string (n * (nc + 5)))
                | _ -> ()

        let result = String.Join("\n", lines)
        parse file result |> Result.map (fun _ -> result)

let private activationText =
    function
    | Leaky -> "leaky"
    | Linear -> "linear"

let private ints (xs: int list) =
    xs |> List.map string |> String.concat ","

/// Writes a NetCfg as cfg text: `[net]` (typed options, then the others in order) and every layer with all its keys.
/// `parse` of the result gives the same modules; comments and the ignored [yolo] keys are not kept.
let toText (cfg: NetCfg) : string =
    let section name (keys: (string * string) list) =
        [ yield sprintf "[%s]" name; for k, v in keys -> sprintf "%s=%s" k v ]

    let n = cfg.Net

    let net =
        section
            "net"
            [
                "batch", string n.Batch
                "subdivisions", string n.Subdivisions
                if n.Width.IsSome then
                    "width", string n.Width.Value
                if n.Height.IsSome then
                    "height", string n.Height.Value
                "channels", string n.Channels
                yield! n.Other
            ]

    let layer (m: ModuleDef) =
        match m.Layer with
        | Convolutional c ->
            section
                "convolutional"
                [
                    "batch_normalize", (if c.BatchNormalize then "1" else "0")
                    "filters", string c.Filters
                    "size", string c.Size
                    "stride", string c.Stride
                    "pad", (if c.Pad then "1" else "0")
                    "activation", activationText c.Activation
                ]
        | Shortcut s -> section "shortcut" [ "from", ints s.From; "activation", activationText s.Activation ]
        | Route r -> section "route" [ "layers", ints r.Layers ]
        | MaxPool p -> section "maxpool" [ "size", string p.Size; "stride", string p.Stride ]
        | Upsample u -> section "upsample" [ "stride", string u.Stride ]
        | Yolo y ->
            section
                "yolo"
                [
                    "mask", ints y.Mask
                    "anchors", anchorsText y.Anchors
                    "classes", string y.Classes
                ]

    (net :: List.map layer cfg.Modules)
    |> List.map (String.concat "\n")
    |> String.concat "\n\n"
    |> fun s -> s + "\n"
