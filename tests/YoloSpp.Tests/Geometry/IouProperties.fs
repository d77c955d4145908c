/// Properties of the IoU family over valid boxes (FsCheck). Plain FsCheck properties with no test-framework
/// dependency, so scripts/properties.fsx runs the same list.
module YoloSpp.Tests.Geometry.IouProperties

open System
open FsCheck
open FsCheck.FSharp
open TorchSharp
open YoloSpp.Geometry
open YoloSpp.Tests

/// A valid box in xywh: width and height > 0.
type Box =
    {
        Cx: float
        Cy: float
        W: float
        H: float
    }

let private coord = Gen.choose (-20000, 20000) |> Gen.map (fun i -> float i / 20.0) // [-1000, 1000]
let private side = Gen.choose (1, 4000) |> Gen.map (fun i -> float i / 20.0) // [0.05, 200]

let genBox =
    gen {
        let! cx = coord
        let! cy = coord
        let! w = side
        let! h = side
        return { Cx = cx; Cy = cy; W = w; H = h }
    }

/// Pairs biased towards overlap: the second box is often near the first.
let genPair =
    gen {
        let! a = genBox
        let! near = Gen.elements [ true; true; false ]

        if near then
            let! dx = Gen.choose (-100, 100)
            let! dy = Gen.choose (-100, 100)
            let! w = side
            let! h = side

            return
                a,
                {
                    Cx = a.Cx + float dx / 100.0 * a.W
                    Cy = a.Cy + float dy / 100.0 * a.H
                    W = w
                    H = h
                }
        else
            let! b = genBox
            return a, b
    }

let private t (b: Box) =
    torch.tensor([| b.Cx; b.Cy; b.W; b.H |], dtype = torch.float64).view (1L, 4L)

let private corners (b: Box) =
    [| b.Cx - b.W / 2.0; b.Cy - b.H / 2.0; b.Cx + b.W / 2.0; b.Cy + b.H / 2.0 |]

/// The IoU family value of two boxes in xywh.
let iou kind (a: Box) (b: Box) =
    use _ = torch.NewDisposeScope()
    (Boxes.bboxIou kind Boxes.Xywh (t a) (t b)).item<float> ()

let private allKinds = [ Boxes.Iou; Boxes.GIoU; Boxes.DIoU; Boxes.CIoU ]

let private sameOrBothNaN tol (x: float) (y: float) =
    (Double.IsNaN x && Double.IsNaN y) || abs (x - y) <= tol

let private pairArb = Arb.fromGen genPair

/// (name, property) list; each property is checked over generated boxes.
let properties: (string * Property) list =
    [
        "IoU is symmetric and in [0, 1]",
        Prop.forAll pairArb (fun (a, b) ->
            let x, y = iou Boxes.Iou a b, iou Boxes.Iou b a
            x >= 0.0 && x <= 1.0 && abs (x - y) <= 1e-12)

        "IoU(b, b) = 1 within eps", Prop.forAll (Arb.fromGen genBox) (fun a -> abs (1.0 - iou Boxes.Iou a a) <= 1e-12)

        "GIoU is in (-1, 1] and <= IoU",
        Prop.forAll pairArb (fun (a, b) ->
            let g = iou Boxes.GIoU a b
            g > -1.0 && g <= 1.0 && g <= iou Boxes.Iou a b + 1e-15)

        "DIoU <= IoU", Prop.forAll pairArb (fun (a, b) -> iou Boxes.DIoU a b <= iou Boxes.Iou a b + 1e-15)

        "CIoU <= DIoU where defined",
        Prop.forAll pairArb (fun (a, b) ->
            let c = iou Boxes.CIoU a b
            Double.IsNaN c || c <= iou Boxes.DIoU a b + 1e-15)

        "invariant under joint translation",
        Prop.forAll (Arb.fromGen (Gen.zip genPair (Gen.zip coord coord))) (fun ((a, b), (dx, dy)) ->
            let mv (x: Box) =
                { x with
                    Cx = x.Cx + dx
                    Cy = x.Cy + dy
                }

            allKinds
            |> List.forall (fun k -> sameOrBothNaN 1e-9 (iou k a b) (iou k (mv a) (mv b))))

        "invariant under joint positive scaling",
        Prop.forAll (Arb.fromGen (Gen.zip genPair (Gen.choose (1, 100)))) (fun ((a, b), s) ->
            let s = float s / 10.0

            let sc (x: Box) =
                {
                    Cx = x.Cx * s
                    Cy = x.Cy * s
                    W = x.W * s
                    H = x.H * s
                }

            allKinds
            |> List.forall (fun k -> sameOrBothNaN 1e-9 (iou k a b) (iou k (sc a) (sc b))))

        "disjoint boxes have IoU = 0 and GIoU < 0",
        Prop.forAll (Arb.fromGen (Gen.zip genPair (Gen.choose (1, 1000)))) (fun ((a, b), gap) ->
            let b =
                { b with
                    Cx = a.Cx + a.W / 2.0 + b.W / 2.0 + float gap / 100.0
                }

            iou Boxes.Iou a b = 0.0 && iou Boxes.GIoU a b < 0.0)

        "xywh and xyxy paths agree",
        Prop.forAll pairArb (fun (a, b) ->
            use _ = torch.NewDisposeScope()

            let xy (x: Box) =
                torch.tensor(corners x, dtype = torch.float64).view (1L, 4L)

            [ Boxes.Iou; Boxes.GIoU; Boxes.DIoU; Boxes.CIoU ]
            |> List.forall (fun k -> sameOrBothNaN 1e-15 (iou k a b) ((Boxes.bboxIou k Boxes.Xyxy (xy a) (xy b)).item<float> ())))

        "whIou equals the IoU of corner-aligned boxes",
        Prop.forAll pairArb (fun (a, b) ->
            use _ = torch.NewDisposeScope()

            let wh (x: Box) =
                torch.tensor([| x.W; x.H |], dtype = torch.float64).view (1L, 2L)

            let w = (Boxes.whIou (wh a) (wh b)).item<float> ()

            let aligned =
                iou
                    Boxes.Iou
                    { a with
                        Cx = a.W / 2.0
                        Cy = a.H / 2.0
                    }
                    { b with
                        Cx = b.W / 2.0
                        Cy = b.H / 2.0
                    }

            abs (w - aligned) <= 1e-12)

        "boxIou equals pairwise bboxIou",
        Prop.forAll (Arb.fromGen (Gen.zip (Gen.nonEmptyListOf genBox) (Gen.nonEmptyListOf genBox))) (fun (xs, ys) ->
            use _ = torch.NewDisposeScope()

            let toXyxy (bs: Box list) =
                torch.tensor(bs |> List.toArray |> Array.collect corners, dtype = torch.float64).view (-1L, 4L)

            let m = Boxes.boxIou (toXyxy xs) (toXyxy ys)

            xs
            |> List.mapi (fun i a ->
                ys
                |> List.mapi (fun j b -> abs (m.[int64 i, int64 j].item<float> () - iou Boxes.Iou a b) <= 1e-12))
            |> List.concat
            |> List.forall id)
    ]
