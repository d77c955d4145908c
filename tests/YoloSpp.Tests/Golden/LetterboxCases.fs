/// Golden kind `letterbox`: output size, ratio and half padding of both reference variants (exact; ratio abs 1e-12).
module YoloSpp.Tests.Golden.LetterboxCases

open System.Text.Json
open Expecto
open YoloSpp.Data
open YoloSpp.Tests.Golden.Json

let run (case: JsonElement) =
    let variant =
        match str "fn" case with
        | "datasets.letterbox" -> Letterbox.Datasets
        | "img_utils.letterbox" -> Letterbox.ImgUtils
        | f -> failtestf "unknown letterbox function '%s'" f

    let flag name =
        match tryProp name case with
        | Some v -> v.GetBoolean()
        | None -> false

    let options: Letterbox.Options =
        {
            Variant = variant
            Auto = flag "auto"
            ScaleFill = flag "scale_fill"
            ScaleUp = flag "scale_up"
        }

    match tryProp "auto_multiple" case with
    | Some m -> Expect.equal variant.AutoMultiple (m.GetInt32()) "auto multiple"
    | None -> ()

    let n = int "new_shape" case
    let p = Letterbox.plan options (int "h0" case, int "w0" case) (n, n)
    let outHw = items (prop "out_hw" case) |> Array.map (fun e -> e.GetInt32())
    Expect.equal [| p.OutH; p.OutW |] outHw "out_hw"
    let ratio = items (prop "ratio" case) |> Array.map number

    if abs (p.RatioW - ratio.[0]) > 1e-12 || abs (p.RatioH - ratio.[1]) > 1e-12 then
        failtestf "ratio: expected %A, got (%.17g, %.17g)" ratio p.RatioW p.RatioH

    let pad = items (prop "pad_dw_dh" case) |> Array.map number
    Expect.equal [| p.PadW; p.PadH |] pad "pad_dw_dh"
