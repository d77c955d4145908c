/// `yolospp mpi-check`: checks an MPI launch before a data-parallel run: every rank, all-reduce, broadcast,
/// all-gather and barrier, with the all-reduce time.
module YoloSpp.Cli.MpiCheckCommand

open YoloSpp.App
open System
open System.Diagnostics
open Argu
open TorchSharp
open YoloSpp
open YoloSpp.Distributed

open YoloSpp.Platform

type MpiCheckArgs =
    | Megabytes of int
    | Fail_Rank of int

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Megabytes _ -> "size of the timed all-reduce in MB of float32 (default 8)"
            | Fail_Rank _ -> "fault drill: rank R exits with code 3 before the all-reduce, to see the launch stop the others"

/// Runs the command under `mpirun -np N` (or alone: one rank); exit 0 when every collective gives what it must.
let run (args: ParseResults<MpiCheckArgs>) : int =
    let mb = args.GetResult(Megabytes, 8)

    Errors.run (fun () ->
        if mb < 1 then
            raise (ArgumentException(sprintf "--megabytes %d must be at least 1" mb))

        Backend.Initialize()
        use comm = Communicator.FromEnvironment()
        let n = comm.Size
        let problems = Collections.Generic.List<string>()
        // all-reduce: rank r contributes r + 1 everywhere; the sum is n (n + 1) / 2
        use fill = (float (comm.Rank + 1)).ToScalar()
        use x = torch.full ([| int64 (mb * 262144) |], fill, dtype = torch.float32)
        comm.Barrier()

        if args.TryGetResult Fail_Rank = Some comm.Rank then
            eprintfn "rank %d: exiting with code 3 before the all-reduce (--fail-rank)" comm.Rank
            exit 3

        let watch = Stopwatch.StartNew()
        comm.AllReduceSum x
        let first = watch.Elapsed.TotalMilliseconds
        watch.Restart()
        comm.AllReduceSum x
        let second = watch.Elapsed.TotalMilliseconds
        let expected = float (n * (n + 1) / 2 * n)

        if x.min().ToDouble() <> expected || x.max().ToDouble() <> expected then
            problems.Add(sprintf "all-reduce: %g..%g, expected %g" (x.min().ToDouble()) (x.max().ToDouble()) expected)
        // broadcast from the last rank
        use mine = (float comm.Rank).ToScalar()
        use b = torch.full ([| 1000L |], mine, dtype = torch.float32)
        comm.Broadcast(b, n - 1)

        if b.min().ToDouble() <> float (n - 1) || b.max().ToDouble() <> float (n - 1) then
            problems.Add "broadcast: not every element is the root's"
        // gradient averaging (one flat all-reduce): rank r's gradients are r + 1 and 10 (r + 1), the mean (n + 1) / 2 and 5 (n + 1)
        use w1 = new Modules.Parameter(torch.zeros (3L, 4L))
        use w2 = new Modules.Parameter(torch.zeros 5L)
        use g1 = (float (comm.Rank + 1)).ToScalar()
        use g2 = (float (10 * (comm.Rank + 1))).ToScalar()
        w1.grad <- torch.full ([| 3L; 4L |], g1, dtype = torch.float32)
        w2.grad <- torch.full ([| 5L |], g2, dtype = torch.float32)
        GradientSync.AllReduceMean(comm, [ w1; w2 ]) |> ignore
        let mean = float (n + 1) / 2.0

        if
            abs (w1.grad.mean().ToDouble() - mean) > 1e-6
            || abs (w2.grad.mean().ToDouble() - 10.0 * mean) > 1e-5
        then
            problems.Add(sprintf "gradient average: %g and %g, expected %g and %g" (w1.grad.mean().ToDouble()) (w2.grad.mean().ToDouble()) mean (10.0 * mean))
        // all-gather: ranks and host names
        let hosts = comm.AllGather(sprintf "%d@%s" comm.Rank Environment.MachineName)

        if
            hosts.Length <> n
            || hosts
               |> Array.mapi (fun i h -> h.StartsWith(sprintf "%d@" i))
               |> Array.exists not
        then
            problems.Add(sprintf "all-gather: %s" (String.Join(", ", hosts)))

        comm.Barrier()

        if comm.Rank = 0 then
            printfn
                "mpi-check: %d rank(s) via %s on %s"
                n
                comm.Name
                (String.Join(", ", hosts |> Array.map (fun h -> h.Substring(h.IndexOf '@' + 1)) |> Array.distinct))

            printfn "all-reduce of %d MB float32: %.1f ms (first), %.1f ms (second)" mb first second

        for p in problems do
            eprintfn "rank %d: %s" comm.Rank p

        let failed = comm.AllGather(problems.Count)

        if comm.Rank = 0 then
            if Array.sum failed = 0 then
                printfn "all-reduce, broadcast, gradient average, all-gather, barrier: ok"
            else
                printfn "problems on rank(s) %s" (String.Join(", ", failed |> Array.indexed |> Array.filter (fun (_, k) -> k > 0) |> Array.map fst))

        if Array.sum failed = 0 then 0 else 1)
