/// What `yolospp train` and scripts/train.fsx share around the library's training: one process or one rank of an
/// MPI launch, the default dataset generated on first use, Ctrl+C, progress lines and the final summary.
module YoloSpp.App.TrainSession

open System
open System.IO
open System.Threading
open Argu
open YoloSpp.App.TrainArguments
open YoloSpp.Data
open YoloSpp.Distributed
open YoloSpp.Training

/// Generates the shapes dataset when the options point at the default one and it is absent: rank 0 of an MPI launch
/// writes it while the others wait.
let ensureDefaultData (comm: ICommunicator) (o: TrainOptions) (log: string -> unit) =
    if
        comm.Rank = 0
        && Path.GetFullPath o.Data = Path.GetFullPath demo.Data
        && not (File.Exists o.Data)
    then
        log (sprintf "generating the default shapes dataset in %s" (Path.GetDirectoryName o.Data))
        ShapesDataset.Generate(ShapesOptions(Path.GetDirectoryName o.Data)) |> ignore

    comm.Barrier()

/// Runs a training body as one rank of `Communicator.FromEnvironment()` (one process without mpirun), with a log
/// that prints on rank 0 only. A failure is its exit code (Errors.run); on one of several ranks it is printed with
/// the rank and ends every rank (MPI_Abort), so that none waits in a collective for the failed one.
let withRanks (body: ICommunicator -> (string -> unit) -> int) : int =
    Errors.run (fun () ->
        use comm = Communicator.FromEnvironment()
        let log = if comm.Rank = 0 then printfn "%s" else ignore

        if comm.Size = 1 then
            body comm log
        else
            try
                body comm log
            with e ->
                eprintfn "rank %d of %d failed:" comm.Rank comm.Size

                let code =
                    match Errors.exitCodeOf e with
                    | Some c -> c
                    | None ->
                        eprintfn "%O" e
                        1

                comm.Abort code
                code)

/// Progress lines: one updating line on a terminal, a plain line every 25% of an epoch otherwise.
let progressPrinter () =
    // a terminal with a width (an MPI launcher's forwarded output has none): one updating line
    let width =
        try
            if Console.IsOutputRedirected then
                0
            else
                Console.WindowWidth
        with _ ->
            0

    let interactive = width > 1
    let mutable lastQuarter = (-1, -1)

    { new IProgress<TrainProgress> with
        member _.Report p =
            let m = p.MeanLosses

            let losses =
                [ m.Box; m.Objectness; m.Class; m.Total ]
                |> List.map (fun v -> v.ToString("F3"))
                |> String.concat " "

            match p.Evaluation with
            | null ->
                // epochs count from 0 to epochs - 1, as in results.txt, epochs.csv and the checkpoints
                let line =
                    sprintf
                        "epoch %d/%d  %d/%d  loss (box obj cls total) %s  lr %.5f  %.0f img/s  eta %s"
                        p.Epoch
                        (p.Epochs - 1)
                        p.Batch
                        p.Batches
                        losses
                        p.LearningRate
                        p.ImagesPerSecond
                        (p.Eta.ToString(@"mm\:ss"))

                if interactive then
                    Console.Write("\r" + line.PadRight(width - 1))
                else
                    let quarter = (p.Epoch, p.Batch * 4 / max 1 p.Batches)

                    if quarter <> lastQuarter then
                        lastQuarter <- quarter
                        printfn "%s" line
            | e ->
                if interactive then
                    Console.WriteLine()

                printfn "epoch %d/%d  mAP@0.5 %.4f  mAP@0.5:0.95 %.4f  (eval %.1f s)" p.Epoch (p.Epochs - 1) e.Map50 e.Map e.Elapsed.TotalSeconds
    }

/// Prints the final summary: mAP and the files the run wrote (only those that exist).
let printSummary (r: TrainResult) =
    match r.Final with
    | null -> printfn "no evaluation ran"
    | e ->
        printfn "%s" e.Summary

        for c in e.PerClass do
            printfn "  %-12s AP@0.5 %.4f  AP@0.5:0.95 %.4f" c.Name c.Ap50 c.Ap

        printfn "mAP@0.5: %.4f" e.Map50
        printfn "mAP@0.5:0.95: %.4f" e.Map

        match e.Validation with
        | null -> ()
        | v -> printfn "P %.4f  R %.4f  (mean over the classes at confidence %.3f, the best mean F1)" v.Precision v.Recall v.BestConfidence

    r.StopReason |> Option.ofObj |> Option.iter (printfn "%s")

    printfn
        "weights: %s%s"
        r.LastCheckpoint
        (match r.BestCheckpoint with
         | null -> ""
         | b -> sprintf " (best: %s)" b)

    for label, path in
        [
            "results", r.ResultsFile
            "epochs", r.EpochsFile
            "plot", r.PlotFile
            "tensorboard", r.TensorBoardDir
        ] do
        if not (isNull path) then
            printfn "%s: %s" label path

    for path in r.Plots do
        printfn "%s: %s" (if path.EndsWith ".csv" then "table" else "picture") path

/// Cancels the returned token on Ctrl+C (training stops after the current batch and saves a resumable checkpoint);
/// dispose the second value to remove the handler.
let cancelOnCtrlC () : CancellationToken * IDisposable =
    let cts = new CancellationTokenSource()

    let handler =
        ConsoleCancelEventHandler(fun _ e ->
            e.Cancel <- true
            cts.Cancel()
            eprintfn "stopping after this batch...")

    Console.CancelKeyPress.AddHandler handler

    cts.Token,
    { new IDisposable with
        member _.Dispose() =
            Console.CancelKeyPress.RemoveHandler handler
            cts.Dispose()
    }

/// Runs the command (under mpirun -np N: as one of N ranks); Ctrl+C stops after the current batch and keeps a
/// resumable checkpoint (exit 130).
let run (args: ParseResults<TrainArgs>) : int =
    withRanks (fun comm log ->
        let o = toOptions args
        applyImageLimit args

        ensureDefaultData comm o log
        let token, ctrlC = cancelOnCtrlC ()
        use _ = ctrlC
        let r = Trainer(o, log, comm).Run(progressPrinter (), token)

        if comm.Rank = 0 then
            printSummary r

        if r.Cancelled then 130 else 0)
