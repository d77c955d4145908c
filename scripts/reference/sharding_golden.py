#!/usr/bin/env python3
"""Writes tests/golden/sharding_distributed_sampler.json with PyTorch's DistributedSampler and BatchSampler.

train_multi_GPU.py shards the training set with DistributedSampler(train_dataset) and batches it with
BatchSampler(sampler, batch_size, drop_last=True). The port applies the same sharding to its own epoch order, so
the case uses shuffle=False and maps the sampler's positions through a given order: for each (n, world size,
batch size) and rank, the rank's indices and its batches.

    /usr/bin/python3 scripts/reference/sharding_golden.py tests/golden/sharding_distributed_sampler.json
"""
import json
import random
import sys

import torch
from torch.utils.data import BatchSampler, DistributedSampler


def main(out):
    rnd = random.Random(3)
    cases = []
    for n, size, bs in [(10, 2, 3), (11, 2, 4), (7, 3, 2), (2, 4, 1), (1, 3, 2), (17, 4, 3), (64, 2, 8), (5, 5, 1)]:
        order = list(range(n))
        rnd.shuffle(order)
        ranks = []
        for rank in range(size):
            sampler = DistributedSampler(list(range(n)), num_replicas=size, rank=rank, shuffle=False)
            positions = list(iter(sampler))
            batches = [[order[p] for p in b] for b in BatchSampler(positions, bs, drop_last=True)]
            ranks.append({"rank": rank, "indices": [order[p] for p in positions], "batches": batches})
        cases.append({"order": order, "world_size": size, "batch_size": bs, "ranks": ranks})
    case = {
        "kind": "sharding",
        "case": "distributed_sampler",
        "generator": "torch %s DistributedSampler(range(n), num_replicas, rank, shuffle=False), positions mapped "
                     "through order; BatchSampler(positions, batch_size, drop_last=True)" % torch.__version__,
        "cases": cases,
    }
    with open(out, "w") as f:
        json.dump(case, f)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
