#!/usr/bin/env python3
"""Writes golden `nms` cases with the reference's merge-NMS (boxes merged by score-weighted mean).

The reference's build_utils/utils.py non_max_suppression has `merge = False` hard-coded; this loads that function
from a checkout of the reference, turns merge on, and runs it on the prediction of an existing nms case (both
single- and multi-label). Nothing of the reference is copied into this repository.

    /usr/bin/python3 scripts/reference/nms_merge_golden.py <yolov3_spp folder> tests/golden/nms_conf0p1_iou0p6_single.json tests/golden
    (<yolov3_spp folder>: the reference at the repository, folder and commit pinned in docs/reference-parity.md)
"""
import json
import os
import sys
import types

import torch


def load_nms(ref_dir):
    src = open(os.path.join(ref_dir, "build_utils", "utils.py")).read()
    if "    merge = False" not in src:
        raise SystemExit("the reference's non_max_suppression no longer has 'merge = False'")
    mod = types.ModuleType("ref_utils")
    sys.path.insert(0, ref_dir)
    exec(compile(src.replace("    merge = False", "    merge = True"), "ref_utils", "exec"), mod.__dict__)
    return mod.non_max_suppression


def main(ref_dir, base_case, out_dir):
    nms = load_nms(ref_dir)
    base = json.load(open(base_case))
    pred = torch.tensor(base["prediction"], dtype=torch.float32).view(*base["prediction_shape"])
    for multi in (False, True):
        out = nms(pred.clone(), conf_thres=base["conf_thres"], iou_thres=base["iou_thres"], multi_label=multi,
                  max_num=base["max_num"])
        name = "merge_conf0p1_iou0p6_%s" % ("multi" if multi else "single")
        case = dict(base)
        case.update({
            "case": name,
            "merge": True,
            # weights @ boxes is a float32 matrix product: its summation order is libtorch's own
            "coord_atol": 1e-4,
            "multi_label": multi,
            "seed": "the prediction of %s" % os.path.basename(base_case),
            "output": [None if o is None else [[float(v) for v in r] for r in o.double().tolist()] for o in out],
            "counts": [0 if o is None else int(o.shape[0]) for o in out],
        })
        with open(os.path.join(out_dir, "nms_%s.json" % name), "w") as f:
            json.dump(case, f)
            f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
