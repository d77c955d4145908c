/// Small helpers that make TorchSharp read well from F# (explicit scalars where overloads are ambiguous).
[<AutoOpen>]
module YoloSpp.Tensors

open TorchSharp

/// A double as a TorchSharp Scalar (F# does not pick between the Scalar and Tensor overloads on its own).
let inline sc (x: float) : Scalar = x.ToScalar()

/// An int64 as a TorchSharp Scalar.
let inline sci (x: int64) : Scalar = x.ToScalar()
