/// Golden kinds `resize` and `image_decode` (this repository's own, see tests/golden/LOCAL-KINDS.md): OpenCV's
/// cv2.resize and cv2.imread (EXIF orientation) against the port's pixels, max abs difference within the case's
/// tolerance.
module YoloSpp.Tests.Golden.ImageCases

open System
open System.IO
open System.Text.Json
open Expecto
open YoloSpp.Data
open YoloSpp.Tests.Golden.Json

let private bytes name e = Convert.FromBase64String(str name e)

let private shape name e =
    items (prop name e) |> Array.map (fun v -> v.GetInt32())

/// The largest |a - b| and how many values differ at all.
let private compare (a: byte[]) (b: byte[]) =
    Array.fold2 (fun (m, n) (x: byte) (y: byte) -> let d = abs (Operators.int x - Operators.int y) in max m d, (if d > 0 then n + 1 else n)) (0, 0) a b

let resize (_: string) (case: JsonElement) =
    let s, d = shape "src_shape" case, shape "dst_shape" case
    let src, expected = bytes "src" case, bytes "dst" case
    let area = str "interpolation" case = "area"
    let got = CvResize.Resize(src, s[1], s[0], d[1], d[0], area)
    Expect.equal got.Length expected.Length "output size"
    let worst, differ = compare got expected

    Expect.isLessThanOrEqual
        worst
        (int "tolerance" case)
        (sprintf "%s: max |port − cv2| = %d (%d of %d values differ)" (str "case" case) worst differ got.Length)

let imageDecode (folder: string) (case: JsonElement) =
    let tol = int "tolerance" case

    for img in items (prop "images" case) do
        let file = Path.Combine(folder, str "file" img)
        let sh = shape "shape" img
        let loaded = RgbImage.Load file
        let orientation = int "orientation" img
        Expect.equal (loaded.Height, loaded.Width) (sh[0], sh[1]) (sprintf "orientation %d: decoded size as cv2.imread" orientation)
        Expect.equal (RgbImage.ReadSize file) (sh[1], sh[0]) (sprintf "orientation %d: header size as cv2.imread's" orientation)
        let worst, _ = compare loaded.Pixels (bytes "rgb" img)
        Expect.isLessThanOrEqual worst tol (sprintf "orientation %d: max |port − cv2| = %d" orientation worst)
