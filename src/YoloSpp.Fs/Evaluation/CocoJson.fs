/// COCO json for the evaluator: ground-truth datasets and detection result lists, read with one-line errors that
/// name the source and the problem, and written back in the same layout (System.Text.Json).
/// The parse/serialize functions are pure over text; readX/writeX are thin file wrappers for the shell.
module YoloSpp.Evaluation.CocoJson

open System
open System.IO
open System.Text
open System.Text.Json

exception private BadInput of string

let private fail fmt =
    Printf.kprintf (fun s -> raise (BadInput s)) fmt

let private field (path: string) (name: string) (e: JsonElement) =
    if e.ValueKind <> JsonValueKind.Object then
        fail "%s: expected an object" path

    match e.TryGetProperty name with
    | true, v -> v
    | _ -> fail "%s: missing field '%s'" path name

let private tryField (name: string) (e: JsonElement) =
    match e.TryGetProperty name with
    | true, v when v.ValueKind <> JsonValueKind.Null -> Some v
    | _ -> None

let private number (path: string) (e: JsonElement) =
    if e.ValueKind <> JsonValueKind.Number then
        fail "%s: expected a number" path

    e.GetDouble()

let private integer (path: string) (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.Number ->
        match e.TryGetInt64() with
        | true, v -> v
        | _ ->
            // ids written as 3.0 by some tools
            let d = e.GetDouble()

            if Math.Floor d = d && abs d < 9e15 then
                int64 d
            else
                fail "%s: expected an integer" path
    | _ -> fail "%s: expected an integer" path

let private array (path: string) (e: JsonElement) =
    if e.ValueKind <> JsonValueKind.Array then
        fail "%s: expected an array" path

    e.EnumerateArray() |> Seq.toArray

let private box (path: string) (e: JsonElement) : CocoBox =
    let xs = array path e

    if xs.Length <> 4 then
        fail "%s: expected 4 numbers [x, y, w, h], got %d" path xs.Length

    let v = xs |> Array.mapi (fun i x -> number (sprintf "%s[%d]" path i) x)

    {
        X = v.[0]
        Y = v.[1]
        W = v.[2]
        H = v.[3]
    }

/// Parses JSON text; `source` (a file name) starts every error message.
let private parseWith (source: string) (text: string) (read: JsonElement -> 'T) : Result<'T, string> =
    try
        use doc =
            try
                JsonDocument.Parse(text)
            with :? JsonException as e ->
                let firstLine = e.Message.Split('\n').[0].Trim()
                fail "not JSON (%s)" firstLine

        Ok(read doc.RootElement)
    with BadInput msg ->
        Error(sprintf "%s: %s" source msg)

/// Reads a COCO ground-truth dataset (`images`, `categories`, `annotations`) from JSON text. Every image needs
/// `id`, `width`, `height` (`file_name` optional); every category `id`, `name`; every annotation `id`,
/// `image_id`, `category_id`, `bbox` (4 numbers), `area` and `iscrowd`.
let parseGroundTruth (source: string) (text: string) : Result<CocoDataset, string> =
    parseWith source text (fun root ->
        if root.ValueKind <> JsonValueKind.Object then
            fail "expected a JSON object with images, categories, annotations"

        let images =
            array "images" (field "root" "images" root)
            |> Array.mapi (fun i e ->
                let p = sprintf "images[%d]" i

                {
                    Id = integer (p + ".id") (field p "id" e)
                    Width = int (integer (p + ".width") (field p "width" e))
                    Height = int (integer (p + ".height") (field p "height" e))
                    FileName =
                        match tryField "file_name" e with
                        | Some f when f.ValueKind = JsonValueKind.String -> f.GetString()
                        | _ -> ""
                }
                : CocoImage)

        let categories =
            array "categories" (field "root" "categories" root)
            |> Array.mapi (fun i e ->
                let p = sprintf "categories[%d]" i
                let name = field p "name" e

                if name.ValueKind <> JsonValueKind.String then
                    fail "%s.name: expected a string" p

                {
                    Id = integer (p + ".id") (field p "id" e)
                    Name = name.GetString()
                }
                : CocoCategory)

        let annotations =
            array "annotations" (field "root" "annotations" root)
            |> Array.mapi (fun i e ->
                let p = sprintf "annotations[%d]" i
                let crowd = field p "iscrowd" e

                {
                    Id = integer (p + ".id") (field p "id" e)
                    ImageId = integer (p + ".image_id") (field p "image_id" e)
                    CategoryId = integer (p + ".category_id") (field p "category_id" e)
                    Bbox = box (p + ".bbox") (field p "bbox" e)
                    Area = number (p + ".area") (field p "area" e)
                    IsCrowd =
                        match crowd.ValueKind with
                        | JsonValueKind.True -> true
                        | JsonValueKind.False -> false
                        | _ -> integer (p + ".iscrowd") crowd <> 0L
                }
                : CocoAnnotation)

        {
            Images = images
            Categories = categories
            Annotations = annotations
        })

/// Reads a COCO instances file for conversion (`coco2yolo`), as exporters write them: every image needs `id`,
/// `width`, `height` and `file_name`; every category `id` and `name`; every annotation `image_id`, `category_id` and
/// `bbox`, while `id` (default: its 1-based position), `area` (default w·h) and `iscrowd` (default 0) may be absent;
/// `segmentation` (polygons or RLE), `keypoints` and other fields are not read. Errors give the JSON path.
let internal parseInstances (source: string) (text: string) : Result<CocoDataset, string> =
    parseWith source text (fun root ->
        if root.ValueKind <> JsonValueKind.Object then
            fail "expected a JSON object with images, categories, annotations"

        let str (p: string) (name: string) (e: JsonElement) =
            let v = field p name e

            if v.ValueKind <> JsonValueKind.String then
                fail "%s.%s: expected a string" p name

            v.GetString()

        let images =
            array "$.images" (field "$" "images" root)
            |> Array.mapi (fun i e ->
                let p = sprintf "$.images[%d]" i

                {
                    Id = integer (p + ".id") (field p "id" e)
                    Width = int (integer (p + ".width") (field p "width" e))
                    Height = int (integer (p + ".height") (field p "height" e))
                    FileName = str p "file_name" e
                }
                : CocoImage)

        let categories =
            array "$.categories" (field "$" "categories" root)
            |> Array.mapi (fun i e ->
                let p = sprintf "$.categories[%d]" i

                {
                    Id = integer (p + ".id") (field p "id" e)
                    Name = str p "name" e
                }
                : CocoCategory)

        let annotations =
            match tryField "annotations" root with
            | None -> [||]
            | Some a ->
                array "$.annotations" a
                |> Array.mapi (fun i e ->
                    let p = sprintf "$.annotations[%d]" i
                    let bbox = box (p + ".bbox") (field p "bbox" e)

                    {
                        Id =
                            tryField "id" e
                            |> Option.map (integer (p + ".id"))
                            |> Option.defaultValue (int64 (i + 1))
                        ImageId = integer (p + ".image_id") (field p "image_id" e)
                        CategoryId = integer (p + ".category_id") (field p "category_id" e)
                        Bbox = bbox
                        Area =
                            tryField "area" e
                            |> Option.map (number (p + ".area"))
                            |> Option.defaultValue (bbox.W * bbox.H)
                        IsCrowd =
                            match tryField "iscrowd" e with
                            | None -> false
                            | Some c when c.ValueKind = JsonValueKind.True -> true
                            | Some c when c.ValueKind = JsonValueKind.False -> false
                            | Some c -> integer (p + ".iscrowd") c <> 0L
                    }
                    : CocoAnnotation)

        {
            Images = images
            Categories = categories
            Annotations = annotations
        })

/// Reads a COCO detection list (`[{image_id, category_id, bbox, score}, …]`) from JSON text and checks every
/// image_id against the ground truth (pycocotools' loadRes refuses results on unknown images).
let parseDetections (source: string) (gt: CocoDataset) (text: string) : Result<CocoDetection[], string> =
    let images = gt.Images |> Array.map (fun i -> i.Id) |> Set.ofArray

    parseWith source text (fun root ->
        if root.ValueKind <> JsonValueKind.Array then
            fail "expected a JSON array of detections"

        root.EnumerateArray()
        |> Seq.toArray
        |> Array.mapi (fun i e ->
            let p = sprintf "detection %d" i
            let imageId = integer (p + ".image_id") (field p "image_id" e)

            if not (images.Contains imageId) then
                fail "%s: image_id %d is not an image of the ground truth" p imageId

            {
                ImageId = imageId
                CategoryId = integer (p + ".category_id") (field p "category_id" e)
                Bbox = box (p + ".bbox") (field p "bbox" e)
                Score = number (p + ".score") (field p "score" e)
            }
            : CocoDetection))

let private writeJson (write: Utf8JsonWriter -> unit) : string =
    use stream = new MemoryStream()

    (use w = new Utf8JsonWriter(stream)
     write w)

    Encoding.UTF8.GetString(stream.ToArray())

let private writeBox (w: Utf8JsonWriter) (b: CocoBox) =
    w.WriteStartArray "bbox"

    for v in [| b.X; b.Y; b.W; b.H |] do
        w.WriteNumberValue v

    w.WriteEndArray()

/// A detection list as COCO json text (`[{image_id, category_id, bbox, score}, …]`); doubles round-trip.
let serializeDetections (detections: CocoDetection[]) : string =
    writeJson (fun w ->
        w.WriteStartArray()

        for d in detections do
            w.WriteStartObject()
            w.WriteNumber("image_id", d.ImageId)
            w.WriteNumber("category_id", d.CategoryId)
            writeBox w d.Bbox
            w.WriteNumber("score", d.Score)
            w.WriteEndObject()

        w.WriteEndArray())

/// A ground-truth dataset as COCO json text (images, categories, annotations).
let serializeGroundTruth (gt: CocoDataset) : string =
    writeJson (fun w ->
        w.WriteStartObject()
        w.WriteStartArray "images"

        for i in gt.Images do
            w.WriteStartObject()
            w.WriteNumber("id", i.Id)
            w.WriteNumber("width", i.Width)
            w.WriteNumber("height", i.Height)
            w.WriteString("file_name", i.FileName)
            w.WriteEndObject()

        w.WriteEndArray()
        w.WriteStartArray "categories"

        for c in gt.Categories do
            w.WriteStartObject()
            w.WriteNumber("id", c.Id)
            w.WriteString("name", c.Name)
            w.WriteEndObject()

        w.WriteEndArray()
        w.WriteStartArray "annotations"

        for a in gt.Annotations do
            w.WriteStartObject()
            w.WriteNumber("id", a.Id)
            w.WriteNumber("image_id", a.ImageId)
            w.WriteNumber("category_id", a.CategoryId)
            writeBox w a.Bbox
            w.WriteNumber("area", a.Area)
            w.WriteNumber("iscrowd", (if a.IsCrowd then 1 else 0))
            w.WriteEndObject()

        w.WriteEndArray()
        w.WriteEndObject())

/// Reads a ground-truth file (I/O wrapper over parseGroundTruth; the error names the file).
let readGroundTruth (path: string) : Result<CocoDataset, string> =
    try
        parseGroundTruth path (File.ReadAllText path)
    with
    | :? IOException
    | :? UnauthorizedAccessException as e -> Error(sprintf "%s: cannot read (%s)" path e.Message)

/// Reads a detection list file against its ground truth (I/O wrapper over parseDetections).
let readDetections (path: string) (gt: CocoDataset) : Result<CocoDetection[], string> =
    try
        parseDetections path gt (File.ReadAllText path)
    with
    | :? IOException
    | :? UnauthorizedAccessException as e -> Error(sprintf "%s: cannot read (%s)" path e.Message)

/// Writes a detection list file (I/O wrapper over serializeDetections).
let writeDetections (path: string) (detections: CocoDetection[]) : unit =
    File.WriteAllText(path, serializeDetections detections)
