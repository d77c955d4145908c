/// The reference's dataset description files: `.data` (key=value, parse_data_cfg) and `.names` (one class a line).
/// Pure: the shell reads the text and passes the file's path only to name it in errors and resolve relative paths.
module YoloSpp.Data.DataConfig

open YoloSpp
open System
open System.Globalization
open System.IO

/// A parsed `.data` file. Paths are resolved against the `.data` file's folder (the reference resolves them
/// against the working directory; resolving beside the file makes a dataset folder relocatable).
type DataFile =
    {
        /// the `.data` file itself
        Path: string
        Classes: int
        /// image list (or image folder) for training
        Train: string
        /// image list (or image folder) for validation
        Valid: string
        /// the `.names` file
        Names: string
        /// every other key (e.g. `backup`, `eval`), raw value
        Others: Map<string, string>
    }

let private resolve (baseDir: string) (p: string) =
    if Path.IsPathRooted p then
        p
    else
        Path.GetFullPath(Path.Combine(baseDir, p))

/// Parses `.data` text as parse_data_cfg does (blank lines and `#` comments skipped, `key = value` trimmed), with
/// line-numbered errors: a line without '=', a duplicate key, a missing `classes`/`train`/`valid`/`names`, a class
/// count that is not a positive integer.
let parseData (file: string) (text: string) : Result<DataFile, SourceError list> =
    let err line reason =
        {
            File = file
            Line = line
            Reason = reason
        }

    let errors = ResizeArray<SourceError>()
    let values = Collections.Generic.Dictionary<string, string * int>()

    text.Split('\n')
    |> Array.iteri (fun i raw ->
        let line = raw.Trim()

        if line <> "" && not (line.StartsWith "#") then
            match line.IndexOf '=' with
            | -1 -> errors.Add(err (i + 1) (sprintf "expected key=value, got '%s'" line))
            | eq ->
                let key, value = line.Substring(0, eq).Trim(), line.Substring(eq + 1).Trim()

                if key = "" then
                    errors.Add(err (i + 1) "empty key before '='")
                elif values.ContainsKey key then
                    errors.Add(err (i + 1) (sprintf "duplicate key '%s' (first on line %d)" key (snd values[key])))
                else
                    values[key] <- (value, i + 1))

    let required key =
        match values.TryGetValue key with
        | true, (v, line) when v = "" ->
            errors.Add(err line (sprintf "'%s' has no value" key))
            None
        | true, (v, _) -> Some v
        | _ ->
            errors.Add(err 0 (sprintf "missing key '%s'" key))
            None

    let classes =
        required "classes"
        |> Option.bind (fun v ->
            match Int32.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture) with
            | true, n when n > 0 -> Some n
            | _ ->
                errors.Add(err (snd values["classes"]) (sprintf "classes = '%s' is not a positive integer" v))
                None)

    let train, valid, names = required "train", required "valid", required "names"

    match classes, train, valid, names with
    | Some nc, Some t, Some v, Some n when errors.Count = 0 ->
        let dir = Path.GetDirectoryName(Path.GetFullPath file)
        let known = set [ "classes"; "train"; "valid"; "names" ]

        Ok
            {
                Path = file
                Classes = nc
                Train = resolve dir t
                Valid = resolve dir v
                Names = resolve dir n
                Others =
                    values
                    |> Seq.filter (fun kv -> not (known.Contains kv.Key))
                    |> Seq.map (fun kv -> kv.Key, fst kv.Value)
                    |> Map.ofSeq
            }
    | _ -> Error(List.ofSeq errors |> List.sortBy (fun e -> e.Line))

/// Parses `.names` text: one class name per line, blank lines ignored (the reference's load_classes), and checks
/// the count against `classes` of the `.data` file when given.
let parseNames (file: string) (expected: int option) (text: string) : Result<string[], SourceError list> =
    let names =
        text.Split('\n')
        |> Array.map (fun l -> l.Trim())
        |> Array.filter (fun l -> l <> "")

    match expected with
    | Some nc when names.Length <> nc ->
        Error
            [
                {
                    File = file
                    Line = 0
                    Reason = sprintf "%d class names but the .data file says classes=%d" names.Length nc
                }
            ]
    | _ when names.Length = 0 ->
        Error
            [
                {
                    File = file
                    Line = 0
                    Reason = "no class names"
                }
            ]
    | _ -> Ok names

/// `.data` text as the reference's calculate_dataset writes it (paths as given).
let dataText (classes: int) (train: string) (valid: string) (names: string) : string =
    sprintf "classes=%d\ntrain=%s\nvalid=%s\nnames=%s\n" classes train valid names

/// A parsed Ultralytics dataset yaml (yolov5's check_dataset, ultralytics' check_det_dataset): every split as the
/// list of its sources (folders of images or image-list files), resolved; the class names.
type internal YamlData =
    {
        /// the yaml file itself
        Path: string
        /// `path`, resolved against the yaml's folder (default: that folder)
        Root: string
        Train: string list
        Val: string list
        /// empty when the file has no (or an empty) `test`
        Test: string list
        Names: string[]
        /// the 1-based line of each split's key, for messages
        Lines: Map<string, int>
    }

/// Parses a dataset yaml as yolov5's check_dataset reads it: `train`, `val` and `names` required; `names` a list or a
/// mapping of 0..nc-1 to names (or absent with `nc`: class0, class1, …); `nc`, when given, must match; `path` the
/// root the splits are relative to, itself relative to the yaml's folder (yolov5 takes its repository folder, newer
/// ultralytics a datasets folder: beside the file keeps a dataset relocatable); each split a path or a list of them;
/// a relative split that does not exist but starts with `../` is tried without it (yolov5's rule for exports that
/// write `../train/images`). `exists` is the file-system check for that rule. `download` and other keys are ignored.
let internal parseYaml (file: string) (exists: string -> bool) (text: string) : Result<YamlData, SourceError list> =
    let err line reason =
        {
            File = file
            Line = line
            Reason = reason
        }

    let scalar (n: YamlDotNet.RepresentationModel.YamlNode) =
        match n with
        | :? YamlDotNet.RepresentationModel.YamlScalarNode as s -> Some s.Value
        | _ -> None

    try
        let stream = YamlDotNet.RepresentationModel.YamlStream()
        stream.Load(new StringReader(text))

        match stream.Documents |> Seq.tryHead |> Option.map (fun d -> d.RootNode) with
        | Some(:? YamlDotNet.RepresentationModel.YamlMappingNode as map) ->
            let errors = ResizeArray<SourceError>()

            let entries =
                [
                    for KeyValue(k, v) in map.Children do
                        match scalar k with
                        | Some key -> yield key, (int k.Start.Line, v)
                        | None -> ()
                ]
                |> Map.ofList

            let isEmpty (v: YamlDotNet.RepresentationModel.YamlNode) =
                match v with
                | :? YamlDotNet.RepresentationModel.YamlScalarNode as s ->
                    s.Style = YamlDotNet.Core.ScalarStyle.Plain
                    && (s.Value = "" || s.Value = "null" || s.Value = "~")
                | _ -> false

            let dir = Path.GetDirectoryName(Path.GetFullPath file)

            let root =
                match entries.TryFind "path" with
                | Some(_, v) when not (isEmpty v) ->
                    match scalar v with
                    | Some p -> resolve dir p
                    | None ->
                        errors.Add(err (int v.Start.Line) "path: expected a folder")
                        dir
                | _ -> dir

            let split (key: string) (required: bool) =
                match entries.TryFind key with
                | None -> []
                | Some(line, v) when isEmpty v ->
                    if required then
                        errors.Add(err line (sprintf "'%s:' has no value (a folder of images, an image list, or a list of them)" key))

                    []
                | Some(line, v) ->
                    let one (n: YamlDotNet.RepresentationModel.YamlNode) =
                        match scalar n with
                        | Some p when p.Trim() <> "" ->
                            let p = p.Trim()
                            let x = resolve root p

                            if not (Path.IsPathRooted p) && not (exists x) && p.StartsWith "../" then
                                Some(resolve root (p.Substring 3))
                            else
                                Some x
                        | _ ->
                            errors.Add(err (int n.Start.Line) (sprintf "%s: expected a path" key))
                            None

                    match v with
                    | :? YamlDotNet.RepresentationModel.YamlSequenceNode as s ->
                        if s.Children.Count = 0 then
                            errors.Add(err line (sprintf "'%s:' is an empty list" key))

                        s.Children |> Seq.choose one |> List.ofSeq
                    | n -> one n |> Option.toList

            let train, valid, test = split "train" true, split "val" true, split "test" false

            if not (entries.ContainsKey "train") then
                errors.Add(err 0 "missing key 'train'")

            if not (entries.ContainsKey "val") then
                errors.Add(err 0 "missing key 'val'")

            let nc =
                match entries.TryFind "nc" with
                | Some(line, v) when not (isEmpty v) ->
                    match
                        scalar v
                        |> Option.map (fun s -> Int32.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture))
                    with
                    | Some(true, n) when n > 0 -> Some n
                    | _ ->
                        errors.Add(err line "nc: expected a positive integer")
                        None
                | _ -> None

            let names =
                match entries.TryFind "names", nc with
                | (None, Some n) -> Array.init n (sprintf "class%d")
                | (None, None) ->
                    errors.Add(err 0 "missing key 'names' (a list of class names, or a mapping 0: name, 1: name, ...)")
                    [||]
                | Some(line, v), _ ->
                    match v with
                    | :? YamlDotNet.RepresentationModel.YamlSequenceNode as s ->
                        s.Children
                        |> Seq.map (fun c ->
                            match scalar c with
                            | Some name -> name
                            | None ->
                                errors.Add(err (int c.Start.Line) "names: expected a class name")
                                "")
                        |> Array.ofSeq
                    | :? YamlDotNet.RepresentationModel.YamlMappingNode as m ->
                        let pairs =
                            [|
                                for KeyValue(k, n) in m.Children do
                                    match
                                        scalar k
                                        |> Option.map (fun s -> Int32.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture)),
                                        scalar n
                                    with
                                    | Some(true, i), Some name -> yield i, name
                                    | _ -> errors.Add(err (int k.Start.Line) "names: keys must be class indices, i.e. 2: car")
                            |]
                            |> Array.sortBy fst

                        if pairs |> Array.mapi (fun i (k, _) -> i = k) |> Array.forall id then
                            pairs |> Array.map snd
                        else
                            errors.Add(err line (sprintf "names: the indices must be 0..%d, each once" (pairs.Length - 1)))
                            [||]
                    | _ ->
                        errors.Add(err line "names: expected a list or a mapping of class names")
                        [||]

            match nc with
            | Some n when names.Length > 0 && names.Length <> n ->
                errors.Add(err (fst entries["nc"]) (sprintf "nc: %d but 'names' has %d classes" n names.Length))
            | _ when names.Length = 0 && entries.ContainsKey "names" && errors.Count = 0 -> errors.Add(err (fst entries["names"]) "names: no class names")
            | _ -> ()

            if errors.Count > 0 then
                Error(List.ofSeq errors |> List.sortBy (fun e -> e.Line))
            else
                Ok
                    {
                        Path = file
                        Root = root
                        Train = train
                        Val = valid
                        Test = test
                        Names = names
                        Lines = entries |> Map.map (fun _ (l, _) -> l)
                    }
        | Some node -> Error [ err (int node.Start.Line) "expected a mapping (path, train, val, names)" ]
        | None -> Error [ err 0 "empty file: expected a mapping (path, train, val, names)" ]
    with
    | :? YamlDotNet.Core.YamlException as e -> Error [ err (int e.Start.Line) e.Message ]
    // YamlDotNet's node loader throws this for some unclosed flow sequences
    | :? InvalidOperationException as e -> Error [ err 0 (sprintf "not valid YAML (%s)" e.Message) ]

/// Whether a dataset file is an Ultralytics yaml (by its extension) rather than a `.data` file.
let internal isYaml (path: string) =
    let ext = Path.GetExtension(path).ToLowerInvariant()
    ext = ".yaml" || ext = ".yml"
