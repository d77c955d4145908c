/// Data-parallel sharding as torch.utils.data.DistributedSampler and BatchSampler do it (train_multi_GPU.py): every
/// rank takes the same epoch order, padded to a multiple of the world size, and keeps every size-th index from its
/// rank; its batches then drop an incomplete last batch.
module internal YoloSpp.Data.Sharding

/// One rank's indices of an epoch order (DistributedSampler, drop_last = False): the order padded by repeating it
/// from its start to ceil(n / size)·size entries, then entries rank, rank + size, rank + 2·size, …
let distributedIndices (order: int[]) (rank: int) (size: int) : Result<int[], string> =
    if size < 1 then
        Error(sprintf "world size %d must be at least 1" size)
    elif rank < 0 || rank >= size then
        Error(sprintf "rank %d is not in 0..%d" rank (size - 1))
    elif order.Length = 0 then
        Ok [||]
    else
        let n = order.Length
        let total = (n + size - 1) / size * size
        // indices += (indices * ceil(padding / n))[:padding]: the order repeated as often as needed
        let padded = Array.init total (fun i -> order[i % n])
        Ok [| for i in rank..size .. total - 1 -> padded[i] |]

/// BatchSampler: consecutive batches of batchSize indices; with dropLast the incomplete last one is left out.
let batches (indices: int[]) (batchSize: int) (dropLast: bool) : Result<int[][], string> =
    if batchSize < 1 then
        Error(sprintf "batch size %d must be at least 1" batchSize)
    else
        let full = indices.Length / batchSize

        let count =
            if dropLast || indices.Length % batchSize = 0 then
                full
            else
                full + 1

        Ok
            [|
                for b in 0 .. count - 1 -> indices[b * batchSize .. min indices.Length ((b + 1) * batchSize) - 1]
            |]
