/// Reading golden case files: nested JSON lists to tensors (NaN/±inf are strings), and comparisons with the
/// tolerances of the golden README.
module YoloSpp.Tests.Golden.Json

open System
open System.Text.Json
open TorchSharp
open Expecto

type Tensor = torch.Tensor

let number (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.Number -> e.GetDouble()
    | JsonValueKind.String ->
        match e.GetString() with
        | "NaN" -> Double.NaN
        | "Infinity" -> Double.PositiveInfinity
        | "-Infinity" -> Double.NegativeInfinity
        | s -> failwithf "expected a number, got string '%s'" s
    | k -> failwithf "expected a number, got %A" k

let prop (name: string) (e: JsonElement) =
    match e.TryGetProperty name with
    | true, v -> v
    | _ -> failwithf "field '%s' is missing" name

let tryProp (name: string) (e: JsonElement) =
    match e.TryGetProperty name with
    | true, v when v.ValueKind <> JsonValueKind.Null -> Some v
    | _ -> None

let str name e = (prop name e).GetString()
let num name e = number (prop name e)
let int name e = (prop name e).GetInt32()
let items (e: JsonElement) = e.EnumerateArray() |> Seq.toArray

/// Flattens a nested list to its numbers and its shape.
let rec flatten (e: JsonElement) : float[] * int64[] =
    if e.ValueKind <> JsonValueKind.Array then
        [| number e |], [||]
    else
        let xs = items e

        if xs.Length = 0 then
            [||], [| 0L |]
        else
            let parts = xs |> Array.map flatten
            Array.collect fst parts, Array.append [| int64 xs.Length |] (snd parts.[0])

/// A tensor of the given dtype from a nested list; `shape` overrides the inferred one (for empty tensors).
let tensorAs (dtype: torch.ScalarType) (shape: int64[] option) (e: JsonElement) : Tensor =
    let data, inferred = flatten e
    let shape = defaultArg shape inferred
    torch.tensor(data, dtype = torch.float64).reshape(shape).to_type (dtype)

let tensor64 e = tensorAs torch.float64 None e

let shapeOf (e: JsonElement) =
    items e |> Array.map (fun x -> x.GetInt64())

let toArray (t: Tensor) : float[] =
    t.to_type(torch.float64).contiguous().flatten().data<float>().ToArray()

/// Element-wise |a - e| <= abs + rel·|e|, NaN only where expected NaN; reports the worst element.
let close (what: string) (absTol: float) (relTol: float) (actual: Tensor) (expected: Tensor) =
    Expect.sequenceEqual actual.shape expected.shape (sprintf "%s: shape" what)
    let a, e = toArray actual, toArray expected
    let mutable worst = -1
    let mutable worstErr = 0.0

    for i in 0 .. a.Length - 1 do
        if Double.IsNaN e.[i] then
            if not (Double.IsNaN a.[i]) then
                failtestf "%s[%d]: expected NaN, got %.17g" what i a.[i]
        elif Double.IsInfinity e.[i] then
            if a.[i] <> e.[i] then
                failtestf "%s[%d]: expected %g, got %.17g" what i e.[i] a.[i]
        else
            let err = abs (a.[i] - e.[i])

            if Double.IsNaN a.[i] || err > absTol + relTol * abs e.[i] then
                if Double.IsNaN a.[i] || err > worstErr then
                    worst <- i
                    worstErr <- (if Double.IsNaN a.[i] then infinity else err)

    if worst >= 0 then
        failtestf "%s[%d]: expected %.17g, got %.17g (|err| %.3g; tolerance abs %g + rel %g)" what worst e.[worst] a.[worst] worstErr absTol relTol

/// Exact equality of integer tensors (order included).
let exact (what: string) (actual: Tensor) (expected: Tensor) =
    Expect.sequenceEqual (toArray actual) (toArray expected) what

/// Scalar comparison: rel tolerance, abs `absWhenZero` when the expected value is 0.
let closeScalar (what: string) (relTol: float) (absWhenZero: float) (actual: float) (expected: float) =
    let ok =
        if expected = 0.0 then
            abs actual <= absWhenZero
        else
            abs (actual - expected) <= relTol * abs expected

    if not ok then
        failtestf "%s: expected %.17g, got %.17g (rel err %.3g)" what expected actual (abs (actual - expected) / abs expected)

/// The loss hyperparameters of a case's `hyp` object (already adjusted, as the cases store them).
let lossHypOf (hyp: JsonElement) : YoloSpp.Training.Loss.LossHyp =
    {
        Giou = num "giou" hyp
        Obj = num "obj" hyp
        Cls = num "cls" hyp
        ClsPw = num "cls_pw" hyp
        ObjPw = num "obj_pw" hyp
        IouT = num "iou_t" hyp
        FlGamma = num "fl_gamma" hyp
    }
