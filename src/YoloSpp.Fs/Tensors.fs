/// Small helpers that make TorchSharp read well from F# and keep it safe under concurrency.
///
/// TorchSharp converts a number to a native Scalar implicitly and leaves that Scalar to the finalizer; it does
/// so even inside `a + b` of two tensors (`add(b)` passes a temporary `alpha = 1`). The temporary is
/// unreachable while the native operation that reads it runs, so when another thread allocates (a parallel data
/// loader, parallel tests) a GC can finalize it mid-call and libtorch reads freed memory ("toDouble ... Expected
/// false to be true"). The operators below own their Scalars: a number becomes a Scalar that is disposed after
/// the call (which keeps it alive during the call), and additions pass the process-wide `one` as alpha. Use them
/// instead of `tensor * 2.0`, `tensor + tensor` and friends; `-`, `*` and `/` of two tensors create no Scalar.
[<AutoOpen>]
module internal YoloSpp.Tensors

open TorchSharp

type private T = torch.Tensor

/// A double as a TorchSharp Scalar. The caller owns it: bind it with `use` around the call that reads it.
let inline sc (x: float) : Scalar = x.ToScalar()

/// An int64 as a TorchSharp Scalar. The caller owns it: bind it with `use` around the call that reads it.
let inline sci (x: int64) : Scalar = x.ToScalar()

/// The integer 1 as a Scalar that lives as long as the process: the `alpha` of every addition (an integral
/// alpha suits integer and floating tensors alike, as TorchSharp's own implicit one). Never dispose it.
let one: Scalar = sci 1L
/// The integer 0 as a process-wide Scalar (see `one`). Never dispose it.
let zero: Scalar = sci 0L
/// The integer 2 as a process-wide Scalar (see `one`). Never dispose it.
let private two: Scalar = sci 2L

/// Element-wise square, as TorchSharp's `square()` (pow 2) but with an owned exponent.
let square (t: T) : T = t.pow (two)

/// 0, 1, …, n − 1 (torch.arange(n) with owned Scalars: TorchSharp's overload creates three temporaries).
let arangeN (n: int64) (dtype: torch.ScalarType) (device: torch.Device) : T =
    use stop = sci n
    torch.arange (zero, stop, one, dtype = dtype, device = device)

/// tensor + tensor, with an owned alpha (TorchSharp's `+` leaves a temporary alpha Scalar to the finalizer).
let (+!) (a: T) (b: T) : T = a.add (b, one)
/// In-place tensor += tensor, with an owned alpha.
let addInPlace (a: T) (b: T) : T = a.add_ (b, one)
/// tensor + number
let (+.) (t: T) (x: float) : T = use s = sc x in t.add (s, one)
/// tensor − number
let (-.) (t: T) (x: float) : T = use s = sc x in t.sub (s)
/// tensor × number
let ( *. ) (t: T) (x: float) : T = use s = sc x in t.mul (s)
/// tensor ÷ number
let (/.) (t: T) (x: float) : T = use s = sc x in t.div (s)
/// number − tensor (IEEE: x − t equals (−t) + x exactly)
let (.-) (x: float) (t: T) : T = use s = sc x in t.neg().add_ (s, one)
/// number + tensor
let (.+) (x: float) (t: T) : T = use s = sc x in t.add (s, one)
/// number × tensor
let (.*) (x: float) (t: T) : T = use s = sc x in t.mul (s)

/// Element-wise power with a number exponent.
let powS (t: T) (x: float) : T = use s = sc x in t.pow (s)
/// clamp(min = lo)
let clampMin (lo: float) (t: T) : T = use s = sc lo in t.clamp_min (s)
/// clamp(max = hi)
let clampMax (hi: float) (t: T) : T = use s = sc hi in t.clamp_max (s)

/// clamp(lo, hi) of a floating tensor
let clampF (lo: float) (hi: float) (t: T) : T =
    use a = sc lo
    use b = sc hi
    t.clamp (a, b)

/// clamp(lo, hi) of an integer tensor
let clampI (lo: int64) (hi: int64) (t: T) : T =
    use a = sci lo
    use b = sci hi
    t.clamp (a, b)

/// tensor > number
let gtS (x: float) (t: T) : T = use s = sc x in t.gt (s)
/// tensor >= number
let geS (x: float) (t: T) : T = use s = sc x in t.ge (s)
/// tensor < number
let ltS (x: float) (t: T) : T = use s = sc x in t.lt (s)
/// A tensor like `t` filled with a number.
let fullLike (x: float) (t: T) : T = use s = sc x in torch.full_like (t, s)

/// A new tensor of the given shape, dtype and device filled with a number.
let fullOf (shape: int64[]) (x: float) (dtype: torch.ScalarType) (device: torch.Device) : T =
    use s = sc x
    torch.full (shape, s, dtype = dtype, device = device)

/// integer tensor × integer
let mulI (t: T) (x: int64) : T = use s = sci x in t.mul (s)

/// integer tensor ÷ integer, rounded down
let divFloorI (t: T) (x: int64) : T =
    use s = sci x in t.div (s, rounding_mode = torch.RoundingMode.floor)

/// integer tensor modulo integer
let remI (t: T) (x: int64) : T = use s = sci x in t.remainder (s)

/// The elements of a tensor as a float32 array, copied in one block from CPU, contiguous float32 memory
/// (TorchSharp's `data<float32>().ToArray()` reads element by element: ~5x slower on large tensors).
let toFloat32Array (t: T) : float32[] =
    use _ = torch.NewDisposeScope()
    let c = t.``to``(torch.float32).cpu().contiguous ()
    let a = Array.zeroCreate<float32> (int (c.numel ()))

    if a.Length > 0 then
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float32>(c.bytes).CopyTo(System.Span<float32>(a))

    a
