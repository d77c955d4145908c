/// PyFloat: Python's round and repr. The digit-for-digit comparison with Python is the golden case
/// python_round_repr; these are the properties and the cases JSON cannot hold.
module YoloSpp.Tests.Data.PyFloatTests

open System
open System.Globalization
open Expecto
open FsCheck
open FsCheck.FSharp
open YoloSpp

/// Any finite double, from its bits: every exponent, subnormals and both signs.
let private anyDouble =
    gen {
        let! hi = Gen.choose (Int32.MinValue, Int32.MaxValue)
        let! lo = Gen.choose (Int32.MinValue, Int32.MaxValue)
        return BitConverter.Int64BitsToDouble((int64 hi <<< 32) ||| int64 (uint32 lo))
    }
    |> Gen.filter Double.IsFinite

/// Values of the size label coordinates and stats have.
let private unitDouble =
    Gen.choose (0, Int32.MaxValue)
    |> Gen.map (fun i -> float i / float Int32.MaxValue * 20.0 - 10.0)

let properties: (string * Property) list =
    [
        "repr reads back as the same double", Prop.forAll (Arb.fromGen anyDouble) (fun x -> Double.Parse(PyFloat.repr x, CultureInfo.InvariantCulture) = x)
        "round(x, 4) is within half a unit of the 4th decimal, and idempotent",
        Prop.forAll (Arb.fromGen unitDouble) (fun x ->
            let r = PyFloat.round 4 x
            abs (r - x) <= 0.5e-4 * (1.0 + 1e-9) && PyFloat.round 4 r = r)
    ]

let tests =
    testList
        "pyfloat"
        [
            test "ties are decided on the exact binary value, then to even" {
                // 2.675 is stored as 2.67499999…: Python rounds it down; 0.125 is exact: to even
                Expect.equal (PyFloat.round 2 2.675) 2.67 "below the tie"
                Expect.equal (PyFloat.round 2 0.125) 0.12 "exact tie to even"
                Expect.equal (PyFloat.round 2 0.375) 0.38 "exact tie to even (up)"
                Expect.equal (PyFloat.round 0 2.5) 2.0 "round(2.5, 0)"
                Expect.notEqual (Math.Round(2.675, 2, MidpointRounding.ToEven)) 2.67 "Math.Round sees a decimal tie"
            }
            test "repr: Python's notation switch points, signs and specials" {
                let cases =
                    [
                        1e-4, "0.0001"
                        9.9e-5, "9.9e-05"
                        1e16, "1e+16"
                        1e15, "1000000000000000.0"
                        1.0, "1.0"
                        -0.0, "-0.0"
                        0.1 + 0.2, "0.30000000000000004"
                        5e-324, "5e-324"
                        nan, "nan"
                        infinity, "inf"
                        -infinity, "-inf"
                    ]

                for x, s in cases do
                    Expect.equal (PyFloat.repr x) s (sprintf "repr %g" x)
            }
            test "round of specials and of negatives near zero keeps Python's sign" {
                Expect.isTrue (Double.IsNaN(PyFloat.round 4 nan)) "nan"
                Expect.equal (PyFloat.round 4 infinity) infinity "inf"
                Expect.equal (PyFloat.repr (PyFloat.round 4 -0.00001)) "-0.0" "round(-1e-05, 4) is -0.0"
            }
        ]
