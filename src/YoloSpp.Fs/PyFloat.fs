/// Python's float rounding and text, digit for digit: the reference writes label files with `str(round(x, 6))`
/// and its results file with `str(round(x, 4))`, and people's scripts read those digits.
module internal YoloSpp.PyFloat

open System
open System.Globalization
open System.Numerics

/// Python's `round(x, ndigits)`: the exact binary value of `x` rounded to `ndigits` decimals, ties to even (a tie
/// only happens when the binary value is exactly halfway), then the nearest double. `Math.Round(x, n)` differs:
/// it rounds a decimal approximation of `x`, so 2.675 (stored as 2.67499999…) becomes 2.68 there and 2.67 here.
let round (ndigits: int) (x: float) : float =
    if Double.IsNaN x || Double.IsInfinity x || x = 0.0 || ndigits > 323 then
        x
    else
        let bits = BitConverter.DoubleToInt64Bits x
        let negative = bits < 0L
        let exponentBits = int ((bits >>> 52) &&& 0x7FFL)
        let fraction = bits &&& 0xFFFFFFFFFFFFFL
        // |x| = mantissa · 2^exponent exactly
        let mantissa, exponent =
            if exponentBits = 0 then
                fraction, -1074
            else
                fraction ||| (1L <<< 52), exponentBits - 1075

        if exponent >= 0 && ndigits >= 0 then
            x // an integer: nothing to round
        else
            // |x| · 10^ndigits = num / den exactly
            let mutable num = BigInteger mantissa
            let mutable den = BigInteger.One

            if exponent >= 0 then
                num <- num <<< exponent
            else
                den <- den <<< -exponent

            if ndigits >= 0 then
                num <- num * BigInteger.Pow(BigInteger 10, ndigits)
            else
                den <- den * BigInteger.Pow(BigInteger 10, -ndigits)

            let mutable remainder = BigInteger.Zero
            let quotient = BigInteger.DivRem(num, den, &remainder)
            let twice = remainder * BigInteger 2
            let c = BigInteger.Compare(twice, den)

            let rounded =
                if c > 0 || (c = 0 && not quotient.IsEven) then
                    quotient + BigInteger.One
                else
                    quotient

            // the shortest text of rounded · 10^-ndigits, parsed correctly rounded (IEEE), as Python's strtod
            let text =
                rounded.ToString(CultureInfo.InvariantCulture)
                + "E"
                + (-ndigits).ToString(CultureInfo.InvariantCulture)

            let magnitude = Double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)
            if negative then -magnitude else magnitude

/// The shortest digits that read back as `x` (no sign) and the decimal point's position: x = 0.d1d2… · 10^point.
let private shortestDigits (x: float) =
    let r = Math.Abs(x).ToString("R", CultureInfo.InvariantCulture)

    let mantissa, exp10 =
        match r.IndexOfAny [| 'E'; 'e' |] with
        | -1 -> r, 0
        | i -> r.Substring(0, i), Int32.Parse(r.Substring(i + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)

    let dot = mantissa.IndexOf '.'

    let intPart, fracPart =
        if dot < 0 then
            mantissa, ""
        else
            mantissa.Substring(0, dot), mantissa.Substring(dot + 1)

    let all = intPart + fracPart
    let lead = all.Length - all.TrimStart('0').Length
    let digits = all.TrimStart('0').TrimEnd('0')
    digits, intPart.Length - lead + exp10

/// Python's `repr(x)` (= `str(x)`) of a float: the shortest round-trip digits, positional when the exponent is in
/// [-4, 16), with ".0" on whole numbers; otherwise "d.ddde±XX" (two exponent digits at least); "nan", "inf".
let repr (x: float) : string =
    if Double.IsNaN x then
        "nan"
    elif Double.IsPositiveInfinity x then
        "inf"
    elif Double.IsNegativeInfinity x then
        "-inf"
    else
        let sign = if x < 0.0 || (x = 0.0 && 1.0 / x < 0.0) then "-" else ""

        if x = 0.0 then
            sign + "0.0"
        else
            let digits, point = shortestDigits x

            let body =
                if point <= -4 || point > 16 then
                    let e = point - 1

                    let m =
                        if digits.Length = 1 then
                            digits
                        else
                            digits.Substring(0, 1) + "." + digits.Substring 1

                    let es = (abs e).ToString("00", CultureInfo.InvariantCulture)
                    m + "e" + (if e < 0 then "-" else "+") + es
                elif point <= 0 then
                    "0." + String('0', -point) + digits
                elif point >= digits.Length then
                    digits + String('0', point - digits.Length) + ".0"
                else
                    digits.Substring(0, point) + "." + digits.Substring point

            sign + body
