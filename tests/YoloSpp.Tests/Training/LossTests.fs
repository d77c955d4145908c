/// build_targets and compute_loss beyond the golden vectors: error paths and documented quirks.
module YoloSpp.Tests.Training.LossTests

open System
open System.IO
open Expecto
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

let private anchorVecs () =
    [|
        torch.tensor([| 116.0; 90.0; 156.0; 198.0; 373.0; 326.0 |]).view (3L, 2L)
        /. 32.0
        torch.tensor([| 30.0; 61.0; 62.0; 45.0; 59.0; 119.0 |]).view (3L, 2L) /. 16.0
        torch.tensor([| 10.0; 13.0; 16.0; 30.0; 33.0; 23.0 |]).view (3L, 2L) /. 8.0
    |]
    |> Array.map (fun t -> t.to_type (torch.float64))

let private preds (nc: int) =
    let g = new torch.Generator(7UL)

    [| 2L; 4L; 8L |]
    |> Array.map (fun n -> torch.randn([| 2L; 3L; n; n; int64 (nc + 5) |], dtype = torch.float64, generator = g).requires_grad_ (true))

let private lossHyp nc =
    Hyp.adjustForDataset nc 64 Hyp.defaults |> Hyp.toLossHyp

let private rows (xs: float list list) =
    torch.tensor(xs |> List.concat |> List.toArray, dtype = torch.float64).view (-1L, 6L)

let tests =
    testList
        "targets-loss"
        [
            test "a class index >= nc is an error naming the class and nc" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 1.0; 0.5; 0.5; 0.2; 0.2 ]; [ 1.0; 5.0; 0.5; 0.5; 0.2; 0.2 ] ]

                let msg =
                    TestUtil.throwsMessage<ArgumentException> (fun () -> Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) t |> ignore)

                Expect.equal msg "target row 1 has class 5, out of range for nc = 3" "message"
            }
            test "targets of the wrong shape are an error" {
                use _ = torch.NewDisposeScope()

                Expect.throwsT<ArgumentException>
                    (fun () ->
                        Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) (torch.zeros (3L, 5L))
                        |> ignore)
                    "shape"
            }
            test "a centre at x = 1.0 lands in the last cell with offset 1.0 (edge clamp before tbox)" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 0.0; 1.0; 0.0; 0.3; 0.3 ] ]
                let l = (Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) t).[2]
                Expect.isGreaterThan l.Count 0 "matched"
                Expect.equal (l.Gi.[0L].item<int64> ()) 7L "gi = g - 1"
                Expect.equal (l.Tbox.[0L, 0L].item<float> ()) 1.0 "x offset"
                Expect.equal (l.Tbox.[0L, 1L].item<float> ()) 0.0 "y offset"
            }
            test "a target matching no anchor of any layer disappears (no best-anchor fallback)" {
                use _ = torch.NewDisposeScope()
                // a 1x1-pixel box at 64 px: far below every anchor's shape IoU threshold
                let t = rows [ [ 0.0; 0.0; 0.5; 0.5; 1.0 / 64.0; 1.0 / 64.0 ] ]
                let ls = Targets.buildTargets 0.2 3 (anchorVecs ()) (preds 3) t
                Expect.equal (ls |> Array.sumBy (fun l -> l.Count)) 0 "no positives"
            }
            test "with one class the class loss is exactly 0" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 0.0; 0.5; 0.5; 0.4; 0.3 ]; [ 1.0; 0.0; 0.2; 0.7; 0.1; 0.2 ] ]

                let parts =
                    Loss.computeLoss (lossHyp 1) 1.0 { AnchorVecs = anchorVecs (); Nc = 1 } (preds 1) t

                Expect.equal (parts.Cls.item<float> ()) 0.0 "lcls"
                Expect.isGreaterThan (parts.Box.item<float> ()) 0.0 "lbox"
            }
            test "fl_gamma > 0 wraps both objectness and class BCE in the focal loss" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 1.0; 0.5; 0.5; 0.4; 0.3 ] ]
                let spec: Loss.YoloSpec = { AnchorVecs = anchorVecs (); Nc = 3 }
                let plain = Loss.computeLoss (lossHyp 3) 1.0 spec (preds 3) t
                let focal = Loss.computeLoss { lossHyp 3 with FlGamma = 1.5 } 1.0 spec (preds 3) t
                Expect.equal (focal.Box.item<float> ()) (plain.Box.item<float> ()) "box unchanged"
                Expect.isLessThan (focal.Obj.item<float> ()) (plain.Obj.item<float> ()) "obj down-weighted"
                Expect.isLessThan (focal.Cls.item<float> ()) (plain.Cls.item<float> ()) "cls down-weighted"
            }
            test "focal wrapper equals its formula" {
                use _ = torch.NewDisposeScope()
                let x = torch.tensor ([| -2.0; 0.5; 3.0 |])
                let y = torch.tensor ([| 0.0; 1.0; 1.0 |])
                let got = Loss.focal 2.0 0.25 (Loss.bceWithLogits 1.0) x y
                let p = torch.sigmoid x
                let bce = -(y * torch.log p + (1.0 .- y) * torch.log (1.0 .- p))
                let pT = y * p + (1.0 .- y) * (1.0 .- p)
                let expected = bce * (y *. 0.25 + (1.0 .- y) *. 0.75) * (1.0 .- pT).square ()
                Expect.isTrue (torch.allclose (got, expected, 1e-12, 1e-12)) "focal"
            }
            test "rows sharing a cell: the last row in anchor-major order sets the objectness target" {
                use _ = torch.NewDisposeScope()
                let pi = torch.zeros ([| 1L; 3L; 2L; 2L; 8L |], dtype = torch.float64)

                let l: Targets.LayerTargets =
                    {
                        Tcls = torch.zeros ([| 3L |], dtype = torch.int64)
                        Tbox = torch.zeros (3L, 4L)
                        B = torch.zeros ([| 3L |], dtype = torch.int64)
                        A = torch.tensor ([| 1L; 0L; 1L |])
                        Gj = torch.tensor ([| 1L; 0L; 1L |])
                        Gi = torch.tensor ([| 0L; 1L; 0L |])
                        Anchors = torch.zeros (3L, 2L)
                    }

                let tobj =
                    Loss.objectnessTarget 1.0 pi l (torch.tensor ([| 0.3; 0.5; 0.7 |], dtype = torch.float64))

                Expect.equal (tobj.[0L, 1L, 1L, 0L].item<float> ()) 0.7 "last of rows 0 and 2"
                Expect.equal (tobj.[0L, 0L, 0L, 1L].item<float> ()) 0.5 "single row"

                let tobj2 =
                    Loss.objectnessTarget 0.5 pi l (torch.tensor ([| 0.3; 0.5; -0.2 |], dtype = torch.float64))

                Expect.equal (tobj2.[0L, 1L, 1L, 0L].item<float> ()) 0.5 "(1 - gr) + gr * clamp(giou, 0) of the last row"
                Expect.equal (tobj2.sum().item<float> ()) 1.25 "nothing else written"
            }
            test "computeLoss does not mutate its inputs" {
                use _ = torch.NewDisposeScope()
                let t = rows [ [ 0.0; 1.0; 1.0; 1.0; 0.4; 0.3 ] ]
                let before = t.clone ()
                let p = preds 3
                let pBefore = p |> Array.map (fun x -> x.detach().clone ())

                Loss.computeLoss (lossHyp 3) 1.0 { AnchorVecs = anchorVecs (); Nc = 3 } p t
                |> ignore

                Expect.isTrue (t.eq(before).all().item<bool> ()) "targets"
                Array.iter2 (fun (a: torch.Tensor) (b: torch.Tensor) -> Expect.isTrue (a.detach().eq(b).all().item<bool> ()) "p") p pBefore
            }
        ]
