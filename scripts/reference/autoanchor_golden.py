"""Golden cases of kind `autoanchor`: yolov5's anchor check metric (utils/autoanchor.py, check_anchors' nested
`metric`: the wh-ratio metric, anchors above threshold and best possible recall), run on seeded label boxes.

Usage: /usr/bin/python3 scripts/reference/autoanchor_golden.py <yolov5 utils/autoanchor.py> <output folder>

The metric is taken from yolov5's file as written (its text is executed here, never copied into this repository),
with `wh` (float32 label sizes in pixels) and `thr` in scope, on the anchors given in pixels.
"""

import json
import os
import re
import sys
import textwrap

import numpy as np
import torch

source = open(sys.argv[1]).read()
match = re.search(r"\n(    def metric\(k\):.*?\n        return bpr, aat\n)", source, re.S)
if match is None:
    sys.exit("no `def metric(k)` returning bpr, aat in " + sys.argv[1])
body = textwrap.dedent(match.group(1))


def metric(wh, anchors, thr):
    env = {"torch": torch, "wh": wh, "thr": thr}
    exec(body, env)
    bpr, aat = env["metric"](anchors)
    return float(bpr), float(aat)


shapes_spp = [(8, 8), (11, 11), (14, 14), (18, 18), (24, 24), (32, 32), (42, 42), (55, 55), (72, 72)]
yolov3 = [(10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198), (373, 326)]
rng = np.random.default_rng(30)


def boxes(n, lo, hi, aspect):
    side = np.exp(rng.uniform(np.log(lo), np.log(hi), size=n))
    ratio = np.exp(rng.uniform(-np.log(aspect), np.log(aspect), size=n))
    return np.stack([side * np.sqrt(ratio), side / np.sqrt(ratio)], 1)


cases = {
    # the shapes dataset's objects (8 to 72 px, near square) against the shapes-spp anchors: a good fit
    "shapes_fit": (boxes(400, 8, 72, 1.3), shapes_spp, 4.0),
    # small objects against the reference's COCO anchors: a poor fit (BPR below 0.98)
    "small_vs_yolov3": (boxes(300, 1.5, 12, 2.0), yolov3, 4.0),
    # elongated boxes, another threshold
    "elongated_thr3": (boxes(300, 10, 200, 6.0), yolov3, 3.0),
    # ratios of exactly 1/4 and 4 against one anchor: `x > 1 / thr` is strict
    "boundary": (np.array([[40.0, 40.0], [10.0, 10.0], [160.0, 160.0], [10.0, 40.0], [9.0, 9.0], [161.0, 40.0]]), [(40, 40)], 4.0),
}
os.makedirs(sys.argv[2], exist_ok=True)
for name, (wh, anchors, thr) in cases.items():
    wh32 = torch.tensor(wh).float()
    k = torch.tensor(anchors).float()
    bpr, aat = metric(wh32, k, thr)
    case = {
        "kind": "autoanchor",
        "case": name,
        "thr": thr,
        "wh": wh32.tolist(),
        "anchors": k.tolist(),
        "bpr": bpr,
        "aat": aat,
    }
    with open(os.path.join(sys.argv[2], f"autoanchor_{name}.json"), "w") as f:
        json.dump(case, f)
    print(f"{name}: {len(wh)} boxes, {len(anchors)} anchors, thr {thr}: bpr {bpr:.4f}, aat {aat:.4f}")
