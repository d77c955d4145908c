/// `yolospp anchors`: the reference's kmean_anchors over a dataset's training labels: k-means anchors refined by
/// its genetic search, with its report lines and a cfg-ready `anchors =` line.
module YoloSpp.Cli.AnchorsCommand

open YoloSpp.App
open System
open Argu
open YoloSpp
open YoloSpp.Data

type AnchorsArgs =
    | [<Mandatory>] Data of path: string
    | N of int
    | Img_Size of min: int * max: int
    | Thr of float
    | Gen of int
    | Seed of int

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Data _ -> ".data file: the boxes of its train list are clustered"
            | N _ -> "number of anchors (default 9: three per yolo layer)"
            | Img_Size _ -> "training image sizes, min and max (multi-scale; default 512 512)"
            | Thr _ -> "IoU threshold of the fitness, the hyp's iou_t (default 0.20)"
            | Gen _ -> "generations of the genetic refinement (default 1000)"
            | Seed _ -> "seed of k-means and of the mutations (default 0)"

/// Runs the command; returns the exit code (2 for bad input, naming the file).
let run (args: ParseResults<AnchorsArgs>) : int =
    Errors.run (fun () ->
        let n = args.GetResult(N, 9)
        let lo, hi = args.GetResult(Img_Size, (512, 512))
        let thr = args.GetResult(Thr, 0.20)
        let gen = args.GetResult(Gen, 1000)

        if n < 1 || gen < 0 || lo < 1 || hi < lo || thr < 0.0 || thr >= 1.0 then
            raise (ArgumentException "need --n >= 1, --gen >= 0, 1 <= min <= max image size and 0 <= --thr < 1")

        let files = DataFiles.Load(args.GetResult Data)
        let scan = DatasetTools.ScanLabels(files.Train, files.Classes)

        if scan.Errors.Count > 0 then
            raise (InvalidInputException(scan.Errors))

        // skipped images (unreadable, truncated, corrupt) and missing labels are named, as a training run names them
        Errors.printWarnings scan.Warnings

        let rnd = Random(args.GetResult(Seed, 0))

        let rows (it: DatasetItem) : Labels.LabelRow[] =
            [|
                for l in it.Labels ->
                    {
                        Class = l.Class
                        Cx = l.Cx
                        Cy = l.Cy
                        W = l.W
                        H = l.H
                    }
            |]

        let wh = Anchors.labelWh [ for it in scan.Items -> it.Width0, it.Height0, rows it ]
        let px = Anchors.pixelWh rnd (float lo, float hi) wh

        if px.Length < n then
            raise (InvalidInputException(files.Train, sprintf "%d label boxes over 2 px cannot make %d anchors" px.Length n))

        let print k =
            for line in Anchors.report n (lo, hi) thr px k do
                printfn "%s" line

        printfn "Running kmeans for %d anchors on %d points..." n px.Length
        let k = Anchors.kmeanAnchors rnd px n thr gen print
        print k

        let r (x: float) =
            int (Math.Round(x, MidpointRounding.ToEven))

        printfn "anchors = %s" (String.Join(",  ", k |> Array.map (fun (w, h) -> sprintf "%d,%d" (r w) (r h))))
        0)
