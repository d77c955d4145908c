/// Communicators of two ranks in one process, for testing what the ranks compute together without mpirun.
module YoloSpp.Tests.FakeRanks

open TorchSharp
open YoloSpp.Distributed

let private two = (2.0).ToScalar()

/// Two ranks with identical batches: an all-reduce doubles, an all-gather repeats this rank's value.
type TwoIdenticalRanks() =
    interface ICommunicator with
        member _.Rank = 0
        member _.Size = 2
        member _.Name = "two identical ranks"
        member _.AllReduceSum t = t.mul_ two |> ignore
        member _.Broadcast(_, _) = ()
        member _.Barrier() = ()
        member _.AllGather v = [| v; v |]
        member _.Abort code = failwithf "abort %d" code
        member _.Dispose() = ()

/// Rank 0 of two, whose other rank answers an all-gather with `other` (all-reduce and broadcast leave tensors as
/// they are).
type TwoRanksOtherSays(other: byte[]) =
    interface ICommunicator with
        member _.Rank = 0
        member _.Size = 2
        member _.Name = "two ranks"
        member _.AllReduceSum _ = ()
        member _.Broadcast(_, _) = ()
        member _.Barrier() = ()
        member _.AllGather v = [| v; other |]
        member _.Abort code = failwithf "abort %d" code
        member _.Dispose() = ()
