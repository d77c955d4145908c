/// Golden kind `nms`: non_max_suppression per image. Counts, null-ness, the cls column and the row order are exact;
/// boxes and conf abs 1e-5. A run of rows with exactly equal conf may come out in either order: compared as a set.
module YoloSpp.Tests.Golden.NmsCases

open System.Text.Json
open TorchSharp
open Expecto
open YoloSpp.Detection
open YoloSpp.Tests.Golden.Json

let private tol = 1e-5

let private rowsOf (t: torch.Tensor) : float[][] =
    let a = toArray t
    Array.init (a.Length / 6) (fun i -> a.[6 * i .. 6 * i + 5])

/// Rows of one image against the expected rows, runs of equal expected conf compared as sets.
let checkRowsWithin (tol: float) (what: string) (actual: float[][]) (expected: float[][]) =
    Expect.equal actual.Length expected.Length (sprintf "%s: count" what)

    let near (a: float[]) (e: float[]) =
        a.[5] = e.[5]
        && Array.forall2 (fun (x: float) y -> abs (x - y) <= tol) a.[0..4] e.[0..4]

    let mutable start = 0

    while start < expected.Length do
        let mutable stop = start + 1

        while stop < expected.Length && expected.[stop].[4] = expected.[start].[4] do
            stop <- stop + 1

        if stop - start = 1 then
            if not (near actual.[start] expected.[start]) then
                failtestf "%s row %d: expected %A, got %A" what start expected.[start] actual.[start]
        else
            // tie run: every expected row pairs with a distinct actual row of the run
            let free = Array.create (stop - start) true

            for e in start .. stop - 1 do
                match
                    [ start .. stop - 1 ]
                    |> List.tryFind (fun a -> free.[a - start] && near actual.[a] expected.[e])
                with
                | Some a -> free.[a - start] <- false
                | None -> failtestf "%s rows %d..%d (equal conf): expected row %A not found" what start (stop - 1) expected.[e]

        start <- stop

let run (case: JsonElement) =
    use _ = torch.NewDisposeScope()

    let prediction =
        tensorAs torch.float32 (Some(shapeOf (prop "prediction_shape" case))) (prop "prediction" case)

    let options =
        { Nms.NmsOptions.Default with
            ConfThres = num "conf_thres" case
            IouThres = num "iou_thres" case
            MultiLabel = (prop "multi_label" case).GetBoolean()
            MaxDet = int "max_num" case
            MinWh = num "min_wh" case
            MaxWh = num "max_wh" case
            Merge =
                match tryProp "merge" case with
                | Some m -> m.GetBoolean()
                | None -> false
        }

    // merged boxes are float32 matrix products in the reference: their summation order is libtorch's
    let rowTol =
        match tryProp "coord_atol" case with
        | Some t -> t.GetDouble()
        | None -> tol

    let output = Nms.nonMaxSuppression options prediction
    let expected = items (prop "output" case)
    let counts = items (prop "counts" case) |> Array.map (fun c -> c.GetInt32())
    Expect.equal output.Length expected.Length "images"

    for i in 0 .. output.Length - 1 do
        let what = sprintf "image %d" i

        match output.[i], expected.[i].ValueKind with
        | None, JsonValueKind.Null -> Expect.equal 0 counts.[i] (sprintf "%s: count" what)
        | None, _ -> failtestf "%s: expected %d rows, got None" what counts.[i]
        | Some t, JsonValueKind.Null -> failtestf "%s: expected None, got %d rows" what t.shape.[0]
        | Some t, _ ->
            Expect.equal t.shape.[0] (int64 counts.[i]) (sprintf "%s: count" what)
            Expect.equal t.dtype torch.float32 (sprintf "%s: dtype" what)
            let e = items expected.[i] |> Array.map (fun r -> items r |> Array.map number)
            checkRowsWithin rowTol what (rowsOf t) e
