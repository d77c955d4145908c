/// Golden kind `python_float` (this repository's own, see tests/golden/LOCAL-KINDS.md): Python's `round(x, n)`
/// and `str(x)` against PyFloat, digit for digit.
module YoloSpp.Tests.Golden.PythonFloatCases

open System
open System.Globalization
open System.Text.Json
open Expecto
open YoloSpp
open YoloSpp.Tests.Golden.Json

let run (case: JsonElement) =
    let rows = items (prop "rows" case)
    Expect.isGreaterThan rows.Length 0 "rows"

    let wrong =
        rows
        |> Array.choose (fun r ->
            let f = items r

            let text, n, rounded, shown =
                f[0].GetString(), f[1].GetInt32(), f[2].GetString(), f[3].GetString()

            let x = Double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)
            let gotRound, gotRepr = PyFloat.repr (PyFloat.round n x), PyFloat.repr x

            if gotRound <> rounded || gotRepr <> shown then
                Some(sprintf "x = %s, n = %d: round %s (Python %s), str %s (Python %s)" text n gotRound rounded gotRepr shown)
            else
                None)

    if wrong.Length > 0 then
        failtestf "%d of %d rows differ from Python, e.g.\n%s" wrong.Length rows.Length (String.Join("\n", Seq.truncate 10 wrong))
