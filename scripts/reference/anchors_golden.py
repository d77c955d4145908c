#!/usr/bin/env python3
"""Writes the golden case tests/golden/anchors_shapes.json with the reference's kmean_anchors.

The reference's build_utils/utils.py kmean_anchors is loaded from a checkout of the reference and run on a shapes
dataset that `yolospp shapes` writes (deterministic: the case records its options, the test writes it again).
Its label boxes (wh), its final anchors and their fitness, and the two lines it prints last are recorded; numpy's
random draws of k-means and of the evolution are the reference's own and are not reproduced, the quantities
computed from them are. Nothing of the reference is copied into this repository.

    yolospp shapes --out /tmp/anchor-shapes --train 1 --val 40 --size 96 --seed 5
    cd /tmp/anchor-shapes && /usr/bin/python3 <repo>/scripts/reference/anchors_golden.py <yolov3_spp folder> val.txt <repo>/tests/golden
    (<yolov3_spp folder>: the reference at the repository, folder and commit pinned in docs/reference-parity.md)
"""
import contextlib
import io
import json
import os
import sys
import types

import numpy as np

# the reference was written for numpy < 1.24, which still had the alias np.int
if not hasattr(np, "int"):
    np.int = int


def main(ref_dir, list_file, out_dir):
    src = open(os.path.join(ref_dir, "build_utils", "utils.py")).read()
    tail = "    k = print_results(k)\n\n    return k\n"
    if tail not in src:
        raise SystemExit("the reference's kmean_anchors no longer ends with print_results(k); return k")
    src = src.replace(tail, "    k = print_results(k)\n    _DUMP.update(wh=wh.tolist(), k=k.tolist(), fitness=float(fitness(k)))\n    return k\n")
    sys.path.insert(0, ref_dir)
    mod = types.ModuleType("ref_utils")
    mod.__dict__["_DUMP"] = {}
    exec(compile(src, "ref_utils", "exec"), mod.__dict__)
    np.random.seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        mod.kmean_anchors(path=list_file, n=9, img_size=(320, 320), thr=0.20, gen=200)
    lines = [l for l in out.getvalue().splitlines() if l.strip()]
    d = mod.__dict__["_DUMP"]
    case = {
        "kind": "anchors",
        "case": "shapes",
        "shapes": {"train": 1, "val": 40, "size": 96, "seed": 5},
        "list": "val.txt",
        "n": 9,
        "img_size": [320, 320],
        "thr": 0.20,
        "wh": d["wh"],
        "anchors": d["k"],
        "fitness": d["fitness"],
        "printed": lines[-2:],
    }
    with open(os.path.join(out_dir, "anchors_shapes.json"), "w") as f:
        json.dump(case, f)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
