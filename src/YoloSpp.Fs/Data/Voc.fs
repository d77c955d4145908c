/// Pascal VOC annotations → YOLO rows: the reference's trans_voc2yolo.py, pure (XML text in, rows out).
module internal YoloSpp.Data.Voc

open YoloSpp
open System
open System.Globalization
open System.Xml
open System.Xml.Linq
open YoloSpp.Data.Labels

/// What converting one annotation gives: the rows, and warnings (the reference prints them and goes on).
type Converted =
    {
        Rows: LabelRow[]
        Warnings: string list
        ObjectCount: int
    }

let private lineOf (x: XObject) =
    match box x with
    | :? IXmlLineInfo as li when li.HasLineInfo() -> li.LineNumber
    | _ -> 0

/// The class table: either pascal_voc_classes.json ({"name": 1-based id, ...}; the reference uses id - 1) or a
/// `.names` list (one name a line, 0-based by order). Returns name → 0-based index, in index order.
let parseClasses (file: string) (text: string) : Result<(string * int)[], SourceError list> =
    let err line reason =
        Error
            [
                {
                    File = file
                    Line = line
                    Reason = reason
                }
            ]

    if text.TrimStart().StartsWith "{" then
        try
            use doc = Text.Json.JsonDocument.Parse(text)

            let pairs =
                [|
                    for p in doc.RootElement.EnumerateObject() ->
                        match p.Value.ValueKind with
                        | Text.Json.JsonValueKind.Number -> Ok(p.Name, p.Value.GetInt32() - 1)
                        | _ -> Error(sprintf "class '%s': id must be a number" p.Name)
                |]

            match
                pairs
                |> Array.tryPick (function
                    | Error e -> Some e
                    | _ -> None)
            with
            | Some e -> err 0 e
            | None ->
                let t =
                    pairs
                    |> Array.map (function
                        | Ok p -> p
                        | _ -> failwith "unreachable")
                    |> Array.sortBy snd

                if t |> Array.mapi (fun i (_, id) -> id <> i) |> Array.exists id then
                    err 0 "class ids must be 1, 2, ..., n without gaps"
                else
                    Ok t
        with :? Text.Json.JsonException as e ->
            err (int (e.LineNumber.GetValueOrDefault() + 1L)) e.Message
    else
        let names =
            text.Split('\n')
            |> Array.map (fun l -> l.Trim())
            |> Array.filter (fun l -> l <> "")

        if names.Length = 0 then
            err 0 "no class names"
        else
            Ok(names |> Array.mapi (fun i n -> n, i))

/// Converts one VOC XML annotation. As the reference: image size from <size>, each <object>'s <bndbox> to a
/// centre/size box normalised and rounded to 6 decimals, class = table index, boxes with xmax <= xmin or
/// ymax <= ymin skipped with a warning. `skipDifficult` drops objects with <difficult>1</difficult>.
/// An unknown class name, a missing or non-numeric field is an error naming file:line.
let convert (file: string) (classes: (string * int)[]) (skipDifficult: bool) (xml: string) : Result<Converted, SourceError list> =
    let err (x: XObject) reason =
        {
            File = file
            Line = lineOf x
            Reason = reason
        }

    try
        let doc = XDocument.Parse(xml, LoadOptions.SetLineInfo)
        let root = doc.Root

        let child (e: XElement) (name: string) =
            e.Element(XName.Get name) |> Option.ofObj

        let num (parent: XElement) (name: string) =
            match child parent name with
            | None -> Error(err parent (sprintf "<%s> has no <%s>" parent.Name.LocalName name))
            | Some e ->
                match Double.TryParse(e.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture) with
                | true, v -> Ok v
                | _ -> Error(err e (sprintf "<%s> '%s' is not a number" name e.Value))

        match child root "size" with
        | None -> Error [ err root "no <size>" ]
        | Some size ->
            match num size "width", num size "height" with
            | Error e, _
            | _, Error e -> Error [ e ]
            | Ok w, Ok h when w <= 0.0 || h <= 0.0 -> Error [ err size (sprintf "image size %gx%g must be positive" w h) ]
            | Ok imgW, Ok imgH ->
                let table = dict classes
                let errors, warnings, rows = ResizeArray(), ResizeArray(), ResizeArray()

                for o in root.Elements(XName.Get "object") do
                    let name = child o "name" |> Option.map (fun e -> e.Value.Trim())
                    let difficult = child o "difficult" |> Option.exists (fun e -> e.Value.Trim() = "1")

                    match name, child o "bndbox" with
                    | None, _ -> errors.Add(err o "<object> has no <name>")
                    | _, None -> errors.Add(err o "<object> has no <bndbox>")
                    | Some n, _ when not (table.ContainsKey n) -> errors.Add(err o (sprintf "class '%s' is not in the class table" n))
                    | Some _, _ when difficult && skipDifficult -> ()
                    | Some n, Some bb ->
                        match num bb "xmin", num bb "ymin", num bb "xmax", num bb "ymax" with
                        | Ok x1, Ok y1, Ok x2, Ok y2 ->
                            if x2 <= x1 || y2 <= y1 then
                                warnings.Add(sprintf "%s:%d: box w/h <= 0, skipped" file (lineOf bb))
                            else
                                // trans_voc2yolo.py: round(v, 6), Python's rounding of the exact binary value
                                let r6 = PyFloat.round 6

                                rows.Add
                                    {
                                        Class = table[n]
                                        Cx = r6 ((x1 + (x2 - x1) / 2.0) / imgW)
                                        Cy = r6 ((y1 + (y2 - y1) / 2.0) / imgH)
                                        W = r6 ((x2 - x1) / imgW)
                                        H = r6 ((y2 - y1) / imgH)
                                    }
                        | a, b, c, d ->
                            for r in [ a; b; c; d ] do
                                (match r with
                                 | Error e -> errors.Add e
                                 | _ -> ())

                if errors.Count > 0 then
                    Error(List.ofSeq errors)
                else
                    let n = Seq.length (root.Elements(XName.Get "object"))

                    if n = 0 then
                        warnings.Add(sprintf "%s: no objects, skipped" file)

                    Ok
                        {
                            Rows = rows.ToArray()
                            Warnings = List.ofSeq warnings
                            ObjectCount = n
                        }
    with :? XmlException as e ->
        Error
            [
                {
                    File = file
                    Line = e.LineNumber
                    Reason = e.Message
                }
            ]
