/// The communicator of data-parallel runs: the single-process one, and OpenMPI under `mpirun -np 2` (skipped with a
/// message when mpirun is absent): every collective, and a dying rank that stops the launch instead of hanging it.
module YoloSpp.Tests.Distributed.CommunicatorTests

open System
open System.Diagnostics
open System.IO
open Expecto
open TorchSharp
open YoloSpp
open YoloSpp.Data
open YoloSpp.Distributed
open YoloSpp.Tests

open YoloSpp.Tests.Distributed.MpiRun

open YoloSpp.Platform

let tests =
    testList
        "distributed"
        [
            test "one process: rank 0 of 1, every collective the identity, clear errors" {
                Backend.Initialize()
                use comm = Communicator.FromEnvironment()
                Expect.isFalse Communicator.IsMpiLaunch "not under mpirun"
                Expect.equal (comm.Rank, comm.Size) (0, 1) "rank and size"
                use x = torch.arange(6.0f).view (2L, 3L)
                use before = x.clone ()
                comm.AllReduceSum x
                comm.AllReduceMean x
                comm.Broadcast(x, 0)
                comm.Barrier()
                Expect.isTrue (x.allclose (before, 0.0, 0.0)) "unchanged"
                Expect.equal (comm.AllGather "host") [| "host" |] "all-gather of one"

                let e1 =
                    TestUtil.throwsMessage<ArgumentException> (fun () -> comm.AllReduceSum(torch.zeros (3L, dtype = torch.float64)))

                Expect.stringContains e1 "Float64 [3]" "names the tensor's type and shape"

                let e2 =
                    TestUtil.throwsMessage<ArgumentOutOfRangeException> (fun () -> comm.Broadcast(x, 1))

                Expect.stringContains e2 "root 1" "names the root"
                // one process: gradients stay as they are
                use p = new Modules.Parameter(torch.ones (2L, 2L))
                p.grad <- torch.full ([| 2L; 2L |], (3.0).ToScalar(), dtype = torch.float32)
                Expect.equal (GradientSync.AllReduceMean(comm, [ p ])) 4L "floats counted"
                Expect.equal (p.grad.sum().ToDouble()) 12.0 "unchanged"
            }

            test "a sharded loader yields this rank's DistributedSampler shard in full batches, every epoch" {
                let dir = TestUtil.fixtureDir "yolospp-shard-"

                let s =
                    ShapesDataset.Generate(ShapesOptions(Path.Combine(dir, "shapes"), Train = 11, Val = 1, Size = 64, Seed = 2))

                let train = Path.Combine(s.Directory, "train.txt")

                let loader rank count =
                    YoloDataLoader(
                        YoloDataset.Open(
                            train,
                            5,
                            DataOptions(ImageSize = 64, BatchSize = 2, Shuffle = true, Seed = 4, ShardRank = rank, ShardCount = count, Workers = 1)
                        )
                    )

                let whole = loader 0 1

                for epoch in 0..1 do
                    let order = whole.Order epoch
                    // 11 images over 2 ranks: 6 each (the order padded with its first), 3 full batches of 2
                    for rank in 0..1 do
                        let l = loader rank 2
                        let expected = [| for i in rank..2..11 -> order[i % 11] |] |> Array.chunkBySize 2
                        Expect.equal (l.Batches epoch) expected (sprintf "epoch %d rank %d batches" epoch rank)
                        Expect.equal l.BatchCount 3 "batch count"
                        let seen = [ for b in l.Epoch epoch -> (use _ = b in Seq.toArray b.Indices) ]
                        Expect.equal (Array.concat seen) (Array.concat expected) "the loader's batches"

                let err =
                    TestUtil.throwsMessage<ArgumentException> (fun () ->
                        YoloDataLoader(YoloDataset.Open(train, 5, DataOptions(ImageSize = 64, Rect = true, ShardCount = 2))).Batches(0)
                        |> ignore)

                Expect.stringContains err "rect" "rect batches are not sharded"
            }

            test "mpirun -np 2: all-reduce, broadcast, all-gather and barrier across two processes (OpenMPI)" {
                withMpirun (fun () ->
                    let code, out, _ =
                        underMpi 2 [ "mpi-check"; "--megabytes"; "4" ] (TimeSpan.FromMinutes 2.0)

                    Expect.equal code 0 out
                    Expect.stringContains out "2 rank(s) via OpenMPI" "two ranks"
                    Expect.stringContains out "all-reduce, broadcast, gradient average, all-gather, barrier: ok" "every collective")
            }

            test "mpirun -np 2: a rank that dies stops the launch with its exit code, no hang" {
                withMpirun (fun () ->
                    let code, out, seconds =
                        underMpi 2 [ "mpi-check"; "--fail-rank"; "1" ] (TimeSpan.FromMinutes 2.0)

                    Expect.notEqual code 0 out
                    Expect.stringContains out "rank 1: exiting with code 3" "the drill ran"
                    Expect.isLessThan seconds 60.0 "the other rank did not wait for it")
            }
        ]
