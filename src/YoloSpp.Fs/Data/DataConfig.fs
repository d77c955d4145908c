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
