/// `yolospp bench`: timings of the parts a training or evaluation run spends its time in, each the median over
/// repeats after a warm-up (BenchFigures): one training step, inference (unfused, conv+BN fused, ONNX Runtime), the loader (mosaic training
/// batches, letterboxed eval batches), NMS on a dense prediction, the COCO evaluator, and the RSS over the training
/// steps. Prints one `<name>: <median> <unit>` line per figure and writes the same figures to a JSON file.
module YoloSpp.Bench.BenchCommand

open YoloSpp.App
open System
open System.Globalization
open System.IO
open System.Text.Json
open Argu
open TorchSharp
open YoloSpp
open YoloSpp.IO
open YoloSpp.Model
open YoloSpp.Bench.BenchFigures
open YoloSpp.Bench.BenchDiagnostics

open YoloSpp.Platform

type BenchArgs =
    | Cfg of path: string
    | Classes of int
    | Batch_Size of int
    | Img_Size of int
    | Repeats of int
    | Warmup of int
    | Train_Steps of int
    | Loader_Images of int
    | Nms_Boxes of int
    | Coco_Images of int
    | Threads of int
    | Only of names: string list
    | Output of path: string
    | Baseline of path: string
    | Bf16

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Cfg _ -> "Darknet cfg file, or a built-in topology: yolov3-spp (default), shapes-spp"
            | Classes _ -> "classes of a built-in topology (default 20)"
            | Batch_Size _ -> "training step and loader batch size (default 4)"
            | Img_Size _ -> "training step, inference and loader image size, a multiple of 32 (default 512)"
            | Repeats _ -> "timed repeats of inference, NMS and the COCO evaluator (default 5)"
            | Warmup _ -> "untimed runs before each figure (default 1; NMS at least 30, so that the JIT has optimised it as during an evaluation)"
            | Train_Steps _ -> "timed training steps; RSS growth is measured over them (default 50)"
            | Loader_Images _ -> "images in the generated loader dataset (default 64)"
            | Nms_Boxes _ -> "candidate boxes in the dense NMS prediction (default 10000)"
            | Coco_Images _ -> "images in the synthetic COCO evaluation (default 5000, ~20 detections each)"
            | Threads _ -> "torch intra-op threads (default: torch's, the number of cores)"
            | Only _ ->
                "run only these figures: train_step (with rss_growth), inference (with inference_fused, inference_onnxruntime and inference_onnxruntime_int8), loader, nms, cocoeval (the default: all of these); train_phases (opt-in: --train-steps more steps, split into train_forward, train_loss, train_backward, train_optimizer); diagnostics (opt-in: validation_metrics, results_png and validation_plots, what the run's pictures cost)"
            | Output _ -> "JSON file for the figures (default runs/bench/bench-<time>.json)"
            | Baseline _ -> "a previous bench JSON: print each figure's ratio to it"
            | Bf16 -> "run the training step and inference with bfloat16 convolutions (float32 master weights)"

let private writeJson (path: string) (settings: (string * obj) list) (figures: Figure list) =
    let doc =
        dict
            [
                "settings", box (dict settings)
                "figures",
                box (
                    dict
                        [
                            for f in figures ->
                                f.Name,
                                box
                                    {|
                                        median = f.Median
                                        min = f.Min
                                        max = f.Max
                                        unit = f.Unit
                                        runs = f.Runs
                                    |}
                        ]
                )
            ]

    let dir = Path.GetDirectoryName(Path.GetFullPath path)
    Directory.CreateDirectory dir |> ignore
    AtomicFile.WriteAllText(path, JsonSerializer.Serialize(doc, JsonSerializerOptions(WriteIndented = true)))

let private readBaseline (path: string) =
    use doc = JsonDocument.Parse(File.ReadAllText path)

    match doc.RootElement.TryGetProperty "figures" with
    | true, figs ->
        [
            for p in figs.EnumerateObject() -> p.Name, p.Value.GetProperty("median").GetDouble()
        ]
        |> Map.ofList
    | _ -> failwithf "%s: not a bench JSON file (no \"figures\")" path

let private defaults = [ "train_step"; "inference"; "loader"; "nms"; "cocoeval" ]
// opt-in: more training steps, for the split of one
let private known = defaults @ [ "train_phases"; "diagnostics" ]

/// Runs the command; returns the exit code (2 for bad input).
let run (args: ParseResults<BenchArgs>) : int =
    let cfgName = args.GetResult(Cfg, "yolov3-spp")
    let classes = args.GetResult(Classes, 20)
    let bs = args.GetResult(Batch_Size, 4)
    let size = args.GetResult(Img_Size, 512)
    let repeats = args.GetResult(Repeats, 5)
    let warmup = args.GetResult(Warmup, 1)
    let steps = args.GetResult(Train_Steps, 50)
    let only = args.GetResult(Only, defaults)

    let problems =
        [
            yield!
                (match YoloSpp.Model.Cfg.checkImageSize "--img-size" size with
                 | Error e -> [ e ]
                 | Ok _ -> [])
            if bs < 1 then
                sprintf "--batch-size %d must be at least 1" bs
            if repeats < 1 then
                sprintf "--repeats %d must be at least 1" repeats
            if warmup < 0 then
                sprintf "--warmup %d must be at least 0" warmup
            if steps < 2 then
                sprintf "--train-steps %d must be at least 2 (RSS growth compares the first and last)" steps
            for o in only do
                if not (List.contains o known) then
                    sprintf "--only: unknown figure '%s' (known: %s)" o (String.Join(", ", known))
        ]

    if not problems.IsEmpty then
        for p in problems do
            eprintfn "%s" p

        2
    else
        Errors.run (fun () ->
            Backend.Initialize()
            args.TryGetResult Threads |> Option.iter torch.set_num_threads
            let cfg = ModelCfg.LoadOrTopology(cfgName, classes)
            let baseline = args.TryGetResult Baseline |> Option.map readBaseline

            let computeType =
                if args.Contains Bf16 then
                    Nullable torch.ScalarType.BFloat16
                else
                    Nullable()

            let output =
                args.GetResult(
                    Output,
                    Path.Combine("runs", "bench", sprintf "bench-%s.json" (DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)))
                )

            let log (s: string) =
                if not Console.IsErrorRedirected then
                    eprintf "\r%-70s" s

            let settings: (string * obj) list =
                [
                    "cfg", box cfgName
                    "classes", box classes
                    "batch_size", box bs
                    "img_size", box size
                    "repeats", box repeats
                    "warmup", box warmup
                    "train_steps", box steps
                    "compute", box (if args.Contains Bf16 then "bfloat16" else "float32")
                    "threads", box (torch.get_num_threads ())
                    "cores", box Environment.ProcessorCount
                    "host_memory", box HostMemory.Description
                    "os", box Runtime.InteropServices.RuntimeInformation.OSDescription
                    "date", box (DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture))
                ]

            printfn
                "bench: %s, batch %d, %d px, %s, %d threads, %d cores; medians of %d runs (training: %d steps) after %d warm-up"
                cfgName
                bs
                size
                (if args.Contains Bf16 then
                     "bfloat16 convolutions"
                 else
                     "float32")
                (torch.get_num_threads ())
                Environment.ProcessorCount
                repeats
                steps
                warmup

            let figures = ResizeArray<Figure>()

            let show (fs: Figure list) =
                if not Console.IsErrorRedirected then
                    eprintf "\r%-70s\r" ""

                for f in fs do
                    figures.Add f

                    let ratio =
                        match baseline |> Option.bind (Map.tryFind f.Name) with
                        | Some b when b <> 0.0 -> sprintf "   (%.2fx baseline %s)" (f.Median / b) (inv b)
                        | _ -> ""

                    printfn "%s: %s %s   [min %s, max %s, n %d]%s" f.Name (inv f.Median) f.Unit (inv f.Min) (inv f.Max) f.Runs ratio

            // the training step first: the int8 export's calibration (inference) leaves a larger heap behind, and
            // the yolov3-spp step measured 4 % slower after it
            if List.contains "train_step" only then
                show (benchTrain cfg computeType bs size warmup steps log)

            if List.contains "train_phases" only then
                show (benchTrainPhases cfg computeType bs size warmup steps log)

            if List.contains "inference" only then
                show (benchInference cfg computeType size warmup repeats)
            // NMS runs once per image in an evaluation: warm it up as many times so that the JIT has tiered up, as it has there
            if List.contains "nms" only then
                show (benchNms size (args.GetResult(Nms_Boxes, 10000)) (max warmup 30) (max repeats 20))

            if List.contains "cocoeval" only then
                show (benchCoco (args.GetResult(Coco_Images, 5000)) warmup repeats)

            if List.contains "diagnostics" only then
                show (benchDiagnostics warmup repeats)

            if List.contains "loader" only then
                show (benchLoader bs size (args.GetResult(Loader_Images, 64)) warmup repeats)
            // how much faster the loader produces training images than a training step consumes them
            let find n =
                figures |> Seq.tryFind (fun f -> f.Name = n)

            match find "loader_train", find "train_step" with
            | Some l, Some t ->
                let r = l.Median / (float bs / t.Median)

                show
                    [
                        {
                            Name = "loader_vs_train"
                            Median = r
                            Min = r
                            Max = r
                            Unit = "x"
                            Runs = 1
                        }
                    ]
            | _ -> ()

            writeJson output settings (List.ofSeq figures)
            printfn "json: %s" (Path.GetFullPath output)
            0)
