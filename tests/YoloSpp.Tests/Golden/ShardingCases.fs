/// Golden kind `sharding` (this repository's own, see tests/golden/LOCAL-KINDS.md): DistributedSampler's indices and
/// BatchSampler's drop_last batches per rank, against PyTorch's, exactly.
module YoloSpp.Tests.Golden.ShardingCases

open System.Text.Json
open Expecto
open YoloSpp.Data
open YoloSpp.Tests.Golden.Json

let private ints (e: JsonElement) =
    items e |> Array.map (fun x -> x.GetInt32())

let run (case: JsonElement) =
    for c in items (prop "cases" case) do
        let order = ints (prop "order" c)
        let size, bs = int "world_size" c, int "batch_size" c

        for r in items (prop "ranks" c) do
            let rank = int "rank" r
            let what = sprintf "n %d, world size %d, rank %d" order.Length size rank

            match Sharding.distributedIndices order rank size with
            | Error e -> failtestf "%s: %s" what e
            | Ok indices ->
                Expect.equal indices (ints (prop "indices" r)) (what + ": indices")

                match Sharding.batches indices bs true with
                | Error e -> failtestf "%s: %s" what e
                | Ok batches -> Expect.equal batches (items (prop "batches" r) |> Array.map ints) (what + ": batches")
