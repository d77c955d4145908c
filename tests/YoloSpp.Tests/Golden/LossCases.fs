/// Golden kind `loss`: build_targets (indices exact, tbox/anchors abs 1e-12), the three loss terms and their total
/// (rel 1e-10), and d total / d p (abs 1e-12 or rel 1e-9), all in float64.
module YoloSpp.Tests.Golden.LossCases

open System.IO
open System.Text.Json
open TorchSharp
open YoloSpp.Training
open YoloSpp.Tests.Golden.Json

let run (folder: string) (case: JsonElement) =
    use _ = torch.NewDisposeScope()

    let dtype =
        if str "dtype" case = "float32" then
            torch.float32
        else
            torch.float64

    let nc = int "nc" case
    let lossHyp = lossHypOf (prop "hyp" case)

    let gr =
        match tryProp "model_gr" case with
        | Some g -> number g
        | None -> 1.0

    let pShapes = items (prop "p_shapes" case) |> Array.map shapeOf

    let p =
        Array.map2 (fun (e: JsonElement) s -> (tensorAs dtype (Some s) e).requires_grad_ (true)) (items (prop "p" case)) pShapes

    let targets =
        tensorAs dtype (Some [| (items (prop "targets" case)).LongLength; 6L |]) (prop "targets" case)

    let layers = items (prop "build_targets" case)

    let anchorVecs =
        layers |> Array.map (fun l -> tensorAs dtype None (prop "anchor_vec_grid" l))
    // build_targets
    let built = Targets.buildTargets lossHyp.IouT nc anchorVecs p targets

    for i, l in Array.indexed layers do
        let b = built.[i]
        let n = (items (prop "b" l)).LongLength

        let ints (name: string) =
            tensorAs torch.int64 (Some [| n |]) (prop name l)

        exact (sprintf "layer %d b" i) b.B (ints "b")
        exact (sprintf "layer %d a" i) b.A (ints "a")
        exact (sprintf "layer %d gj" i) b.Gj (ints "gj")
        exact (sprintf "layer %d gi" i) b.Gi (ints "gi")
        exact (sprintf "layer %d tcls" i) b.Tcls (ints "tcls")
        close (sprintf "layer %d tbox" i) 1e-12 0.0 b.Tbox (tensorAs dtype (Some [| n; 4L |]) (prop "tbox" l))
        close (sprintf "layer %d anchors" i) 1e-12 0.0 b.Anchors (tensorAs dtype (Some [| n; 2L |]) (prop "anchors" l))
    // loss terms
    let parts =
        Loss.computeLoss lossHyp gr { AnchorVecs = anchorVecs; Nc = nc } p targets

    let scalar (t: torch.Tensor) = t.to_type(torch.float64).item<float> ()
    closeScalar "lbox" 1e-10 1e-12 (scalar parts.Box) (num "lbox" case)
    closeScalar "lobj" 1e-10 1e-12 (scalar parts.Obj) (num "lobj" case)
    closeScalar "lcls" 1e-10 1e-12 (scalar parts.Cls) (num "lcls" case)
    closeScalar "total" 1e-10 1e-12 (scalar parts.Total) (num "total" case)
    // gradient of total w.r.t. p
    let gradField =
        match tryProp "grad" case with
        | Some g -> Some g
        | None ->
            tryProp "grad_file" case
            |> Option.map (fun f ->
                let doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, f.GetString())))
                prop "grad" doc.RootElement)

    match gradField with
    | None -> ()
    | Some g ->
        parts.Total.backward ()

        for i, ge in Array.indexed (items g) do
            close (sprintf "grad p[%d]" i) 1e-12 1e-9 p.[i].grad (tensorAs dtype (Some pShapes.[i]) ge)
