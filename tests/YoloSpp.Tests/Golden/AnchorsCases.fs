/// Golden kind `anchors` (this repository's own, see tests/golden/LOCAL-KINDS.md): the reference's kmean_anchors
/// on a shapes dataset that the case names. The label boxes, the fitness and the printed report of the reference's
/// anchors must be the same; the port's own search must reach the reference's fitness (its random draws differ).
module YoloSpp.Tests.Golden.AnchorsCases

open System
open System.IO
open System.Text.Json
open Expecto
open YoloSpp.Data
open YoloSpp.Tests.Golden.Json

let private pairs (e: JsonElement) =
    items e |> Array.map (fun p -> let v = items p in number v[0], number v[1])

let run (_: string) (case: JsonElement) =
    let sh = prop "shapes" case
    let dir = Directory.CreateTempSubdirectory "yolospp-anchors-"

    try
        let set =
            ShapesDataset.Generate(ShapesOptions(dir.FullName, Train = int "train" sh, Val = int "val" sh, Size = int "size" sh, Seed = int "seed" sh))

        let scan =
            LabelScan.Scan(Path.Combine(set.Directory, str "list" case), Shapes.classNames.Length, useCache = false)

        Expect.isEmpty scan.Errors "dataset"
        let wh = Anchors.labelWh [ for it in scan.Items -> it.Width0, it.Height0, it.Rows ]
        let size = items (prop "img_size" case) |> Array.map (fun v -> v.GetInt32())
        let pixels = Anchors.pixelWh (Random 0) (float size[0], float size[1]) wh
        let expected = pairs (prop "wh" case)
        // the reference's dataset order (rect: sorted by aspect ratio) is its own: compare as sets
        let sorted (a: (float * float)[]) = Array.sort a
        Expect.equal pixels.Length expected.Length "boxes over 2 px"

        // the reference's boxes end as a float32 tensor
        Array.iter2
            (fun (a: float, b: float) (c: float, d: float) ->
                Expect.isTrue (float32 a = float32 c && float32 b = float32 d) (sprintf "box (%.9g, %.9g) vs (%.9g, %.9g)" a b c d))
            (sorted pixels)
            (sorted expected)

        let k = pairs (prop "anchors" case)
        let thr = num "thr" case
        let n = int "n" case
        Expect.floatClose Accuracy.high (Anchors.fitness thr expected k) (num "fitness" case) "fitness of the reference's anchors"

        let printed =
            items (prop "printed" case)
            |> Array.map (fun l -> l.GetString())
            |> List.ofArray

        Expect.equal (Anchors.report n (size[0], size[1]) thr expected k) printed "the reference's report, character for character"
        // the port's own search, with its own random draws
        let mine = Anchors.kmeanAnchors (Random 0) expected n thr 200 ignore
        let f = Anchors.fitness thr expected mine
        Expect.isGreaterThan f (0.98 * num "fitness" case) (sprintf "the port's anchors reach the reference's fitness (%.4f vs %.4f)" f (num "fitness" case))
    finally
        dir.Delete true
