/// YOLO label files: one `class cx cy w h` row per object, coordinates normalised to [0, 1]. Pure parsing with
/// file:line errors; the shell reads the files.
module YoloSpp.Data.Labels

open YoloSpp
open System
open System.Globalization
open System.IO

/// One object: class index and a normalised centre/size box.
[<Struct>]
type LabelRow =
    {
        Class: int
        Cx: float
        Cy: float
        W: float
        H: float
    }

/// The rows of a label file (duplicates included, as the reference keeps them), and the 1-based lines of the rows
/// that repeat an earlier row.
type Parsed =
    {
        Rows: LabelRow[]
        DuplicateLines: int list
    }

/// The image extensions the reference accepts (img_formats).
let imageExtensions =
    [| ".bmp"; ".jpg"; ".jpeg"; ".png"; ".tif"; ".tiff"; ".dng"; ".webp" |]

/// Whether a path has one of the accepted image extensions (case-insensitive).
let isImagePath (path: string) =
    let ext = Path.GetExtension(path).ToLowerInvariant()
    Array.contains ext imageExtensions

/// The label file of an image, by the reference's rule (yolov5's img2label_paths): the last path component named
/// `images` becomes `labels`, the extension `.txt`. Only the last one changes, so a dataset kept under a parent folder
/// that is also named `images` (`/x/images/proj/images/train/a.jpg`) finds `/x/images/proj/labels/train/a.txt`;
/// whole components only, so `/data/myimages/` is never renamed. Without an `images` folder the label file sits
/// beside the image. Both separators are recognised and kept as written.
let labelPathFor (imagePath: string) : string =
    let noExt = Path.ChangeExtension(imagePath, ".txt")
    let sep = [| '/'; '\\' |]
    // the file name itself is never a folder to rename: search the folders only
    let folderEnd = noExt.LastIndexOfAny sep

    let rec lastImages (stop: int) =
        if stop <= 0 then
            -1
        else
            let start = noExt.LastIndexOfAny(sep, stop - 1) + 1

            if stop - start = 6 && String.CompareOrdinal(noExt, start, "images", 0, 6) = 0 then
                start
            elif start = 0 then
                -1
            else
                lastImages (start - 1)

    match lastImages folderEnd with
    | -1 -> noExt
    | i -> noExt.Substring(0, i) + "labels" + noExt.Substring(i + 6)

let private parseNum (s: string) =
    match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
    | true, v when not (Double.IsNaN v || Double.IsInfinity v) -> Some v
    | _ -> None

/// Checks one non-blank row; `nc` is the class count.
let parseRow (nc: int) (line: string) : Result<LabelRow, string> =
    let parts = line.Split([| ' '; '\t' |], StringSplitOptions.RemoveEmptyEntries)

    if parts.Length <> 5 then
        Error(sprintf "expected 5 numbers (class cx cy w h), got %d values" parts.Length)
    else
        match parts |> Array.tryFindIndex (parseNum >> Option.isNone) with
        | Some i -> Error(sprintf "'%s' is not a number (column %d)" parts[i] (i + 1))
        | None ->
            let v = parts |> Array.map (parseNum >> Option.get)
            let c = v[0]
            let names = [| "cx"; "cy"; "w"; "h" |]

            if c <> Math.Floor c then
                Error(sprintf "class '%s' is not an integer" parts[0])
            elif c < 0.0 || c >= float nc then
                Error(sprintf "class %s out of range [0, %d)" parts[0] nc)
            else
                match [ 1..4 ] |> List.tryFind (fun i -> v[i] < 0.0 || v[i] > 1.0) with
                | Some i -> Error(sprintf "%s = %s outside [0, 1]" names[i - 1] parts[i])
                | None when v[3] <= 0.0 -> Error(sprintf "w = %s must be > 0" parts[3])
                | None when v[4] <= 0.0 -> Error(sprintf "h = %s must be > 0" parts[4])
                | None ->
                    Ok
                        {
                            Class = int c
                            Cx = v[1]
                            Cy = v[2]
                            W = v[3]
                            H = v[4]
                        }

/// Parses a label file's text. Blank lines are skipped; every bad row is an error naming file:line. Rows that
/// repeat an earlier row are kept and their lines listed: the reference reads labels as float32 and counts a file
/// with `np.unique(l, axis=0).shape[0] < l.shape[0]` as having duplicates, and trains on every row.
let parse (file: string) (nc: int) (text: string) : Result<Parsed, SourceError list> =
    let errors = ResizeArray<SourceError>()
    let rows = ResizeArray<LabelRow>()
    // the reference compares float32 values (0.0 and -0.0 are one value there too)
    let seen =
        Collections.Generic.HashSet<struct (float32 * float32 * float32 * float32 * float32)>()

    let dups = ResizeArray<int>()

    text.Split('\n')
    |> Array.iteri (fun i raw ->
        let line = raw.Trim()

        if line <> "" then
            match parseRow nc line with
            | Error reason ->
                errors.Add
                    {
                        File = file
                        Line = i + 1
                        Reason = reason
                    }
            | Ok row ->
                let z (x: float) = float32 x + 0.0f
                rows.Add row

                if not (seen.Add(struct (float32 row.Class, z row.Cx, z row.Cy, z row.W, z row.H))) then
                    dups.Add(i + 1))

    if errors.Count > 0 then
        Error(List.ofSeq errors)
    else
        Ok
            {
                Rows = rows.ToArray()
                DuplicateLines = List.ofSeq dups
            }

/// A label row as text, as the reference's trans_voc2yolo.py writes it: `str()` of each value (Python's repr, so
/// 1e-05 and 1.0 read as Python prints them). Values are written as given: round them first (`PyFloat.round 6`).
let rowText (r: LabelRow) =
    let f = PyFloat.repr
    sprintf "%d %s %s %s %s" r.Class (f r.Cx) (f r.Cy) (f r.W) (f r.H)
