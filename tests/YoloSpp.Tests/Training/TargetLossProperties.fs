/// Properties of build_targets and compute_loss over random targets and predictions (FsCheck).
module YoloSpp.Tests.Training.TargetLossProperties

open System
open FsCheck
open FsCheck.FSharp
open TorchSharp
open type TorchSharp.torch.TensorIndex
open YoloSpp
open YoloSpp.Data
open YoloSpp.Detection
open YoloSpp.Evaluation
open YoloSpp.Model
open YoloSpp.Geometry
open YoloSpp.Training
open YoloSpp.Tests

let nc = 3
let bs = 2
let iouT = 0.2
let strides = [| 32.0; 16.0; 8.0 |]

let anchorsPx =
    [|
        [| 116.0; 90.0; 156.0; 198.0; 373.0; 326.0 |]
        [| 30.0; 61.0; 62.0; 45.0; 59.0; 119.0 |]
        [| 10.0; 13.0; 16.0; 30.0; 33.0; 23.0 |]
    |]

/// One target row (image, class, cx, cy, w, h), normalised; includes edge centres (0 and 1).
let genTarget =
    gen {
        let! b = Gen.choose (0, bs - 1)
        let! c = Gen.choose (0, nc - 1)
        let! x = Gen.choose (0, 1000)
        let! y = Gen.choose (0, 1000)
        let! w = Gen.choose (1, 1000)
        let! h = Gen.choose (1, 1000)

        return
            [|
                float b
                float c
                float x / 1000.0
                float y / 1000.0
                float w / 1000.0
                float h / 1000.0
            |]
    }

type Case =
    {
        ImgSize: int
        Targets: float[][]
        Seed: int
    }

let genCase =
    gen {
        let! s = Gen.elements [ 64; 96; 128 ]
        let! n = Gen.choose (0, 12)
        let! ts = Gen.listOfLength n genTarget
        let! seed = Gen.choose (0, 100000)

        return
            {
                ImgSize = s
                Targets = List.toArray ts
                Seed = seed
            }
    }

let anchorVecs () =
    Array.map2 (fun (a: float[]) s -> torch.tensor(a, dtype = torch.float64).view (3L, 2L) /. s) anchorsPx strides

let targetsOf (rows: float[][]) =
    if rows.Length = 0 then
        torch.zeros ([| 0L; 6L |], dtype = torch.float64)
    else
        torch.tensor(Array.concat rows, dtype = torch.float64).view (-1L, 6L)

let predictions (c: Case) =
    let g = new torch.Generator(uint64 c.Seed)

    strides
    |> Array.map (fun s ->
        let n = int64 (float c.ImgSize / s)

        (torch.randn ([| int64 bs; 3L; n; n; int64 (nc + 5) |], dtype = torch.float64, generator = g)
         *. 0.5)
            .requires_grad_ (true))

let hyp: Loss.LossHyp =
    {
        Giou = 3.54
        Obj = 64.3
        Cls = 37.4 * float nc / 80.0
        ClsPw = 1.0
        ObjPw = 1.0
        IouT = iouT
        FlGamma = 0.0
    }

let private caseArb = Arb.fromGen genCase

let properties: (string * Property) list =
    [
        "buildTargets: every index in range, every row's wh_iou > iou_t, tbox offsets in [0, 1]",
        Prop.forAll caseArb (fun c ->
            use _ = torch.NewDisposeScope()
            let av = anchorVecs ()
            let p = predictions c
            let layers = Targets.buildTargets iouT nc av p (targetsOf c.Targets)

            layers
            |> Array.mapi (fun i l ->
                let g = p.[i].shape.[2]

                let inRange (t: torch.Tensor) hi =
                    l.Count = 0 || (t.min().item<int64> () >= 0L && t.max().item<int64> () < hi)

                let whOk =
                    l.Count = 0
                    || (let iou = (Boxes.whIou l.Anchors (l.Tbox.index (Colon, Slice(2L, 4L)))).diagonal ()
                        (iou |> gtS iouT).all().item<bool> ())

                let offs = l.Tbox.index (Colon, Slice(0L, 2L))

                inRange l.B (int64 bs)
                && inRange l.A 3L
                && inRange l.Gj g
                && inRange l.Gi g
                && inRange l.Tcls (int64 nc)
                && whOk
                && (l.Count = 0
                    || (offs.min().item<float> () >= 0.0 && offs.max().item<float> () <= 1.0)))
            |> Array.forall id)

        "computeLoss: parts >= 0 and finite gradients",
        Prop.forAll caseArb (fun c ->
            use _ = torch.NewDisposeScope()
            let p = predictions c

            let parts =
                Loss.computeLoss hyp 1.0 { AnchorVecs = anchorVecs (); Nc = nc } p (targetsOf c.Targets)

            parts.Total.backward ()

            [ parts.Box; parts.Obj; parts.Cls ]
            |> List.forall (fun t -> t.item<float> () >= 0.0)
            && p |> Array.forall (fun pi -> pi.grad.isfinite().all().item<bool> ()))

        "computeLoss: invariant to target order (objectness too when no two positives share a cell)",
        Prop.forAll (Arb.fromGen (Gen.zip genCase (Gen.choose (0, 100000)))) (fun (c, permSeed) ->
            use _ = torch.NewDisposeScope()
            let perm = Array.copy c.Targets
            let rnd = Random(permSeed)
            rnd.Shuffle perm
            let av = anchorVecs ()

            let loss rows =
                Loss.computeLoss hyp 1.0 { AnchorVecs = av; Nc = nc } (predictions c) (targetsOf rows)

            let a, b = loss c.Targets, loss perm

            let near (x: torch.Tensor) (y: torch.Tensor) =
                let x, y = x.item<float> (), y.item<float> ()
                abs (x - y) <= 1e-10 * max 1.0 (abs x)

            let sharedCell =
                Targets.buildTargets iouT nc av (predictions c) (targetsOf c.Targets)
                |> Array.exists (fun l ->
                    l.Count > 0
                    && (let key = mulI (mulI (mulI l.B 3L + l.A) 1000L + l.Gj) 1000L + l.Gi
                        (let struct (u, _, _) = key.unique () in u.shape.[0] < key.shape.[0])))

            near a.Box b.Box && near a.Cls b.Cls && (sharedCell || near a.Obj b.Obj))
    ]
