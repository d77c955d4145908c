#!/usr/bin/env python3
"""Writes the golden cases of yolov5's validation metrics (kinds `ap_per_class` and `confusion_matrix`).

yolov5 v7.0's utils/metrics.py (ap_per_class, compute_ap, smooth, ConfusionMatrix, box_iou) and val.py's
process_batch, run with numpy and Debian's python3-torch on crafted detections and labels: per image, labels and
detections (perturbed labels, some relabelled, false positives), conf drawn without ties. The two files are read
from a yolov5 checkout at tag v7.0 (github.com/ultralytics/yolov5; never part of this repository); their plotting
imports are stubbed out, nothing is drawn.

    /usr/bin/python3 scripts/reference/metrics_golden.py <metrics.py of yolov5 v7.0> <val.py of yolov5 v7.0> tests/golden
"""
import ast
import json
import os
import sys
import types

import numpy as np
import torch


def load(metrics_path, val_path):
    # the plotting and utils imports of metrics.py are not needed to compute: stub them
    plt = types.ModuleType("matplotlib.pyplot")
    mpl = types.ModuleType("matplotlib")
    mpl.pyplot = plt
    utils = types.ModuleType("utils")
    utils.TryExcept = lambda *a, **k: (lambda f: f)
    utils.threaded = lambda f: f
    sys.modules.update({"matplotlib": mpl, "matplotlib.pyplot": plt, "utils": utils})
    metrics = types.ModuleType("metrics")
    exec(compile(open(metrics_path).read(), metrics_path, "exec"), metrics.__dict__)
    # val.py's process_batch alone (its module imports the whole of yolov5)
    tree = ast.parse(open(val_path).read())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "process_batch")
    scope = {"np": np, "torch": torch, "box_iou": metrics.box_iou}
    exec(compile(ast.Module([fn], type_ignores=[]), val_path, "exec"), scope)
    return metrics, scope["process_batch"]


def crafted(rng, n_images, nc, size=640.0):
    """Per image: labels [m, 5] (class, x1, y1, x2, y2) and detections [n, 6] (x1, y1, x2, y2, conf, class)."""
    images = []
    for _ in range(n_images):
        m = int(rng.integers(0, 7))
        wh = rng.uniform(20, 200, (m, 2))
        xy = rng.uniform(0, size - 200, (m, 2))
        cls = rng.integers(0, nc, m)
        labels = np.concatenate([cls[:, None], xy, xy + wh], 1)
        dets = []
        for k in range(m):
            for _ in range(int(rng.integers(0, 3))):  # 0..2 detections per object (a duplicate is a false positive)
                jitter = rng.normal(0, 0.12, 4) * np.tile(wh[k], 2)
                c = cls[k] if rng.random() > 0.2 else rng.integers(0, nc)  # some with the wrong class
                dets.append(list(labels[k, 1:] + jitter) + [0.0, float(c)])
        for _ in range(int(rng.integers(0, 3))):  # false positives in the background
            x, y = rng.uniform(0, size - 100, 2)
            w, h = rng.uniform(10, 100, 2)
            dets.append([x, y, x + w, y + h, 0.0, float(rng.integers(0, nc))])
        d = np.array(dets, dtype=np.float64).reshape(-1, 6)
        d[:, 2:4] = np.maximum(d[:, 2:4], d[:, 0:2] + 1.0)
        images.append((labels, d))
    # confidences without ties (np.argsort is not stable): a permutation of distinct values
    total = sum(len(d) for _, d in images)
    confs = rng.permutation(np.linspace(0.001, 0.999, total)) if total else np.zeros(0)
    at = 0
    for _, d in images:
        d[:, 4] = confs[at:at + len(d)]
        at += len(d)
    return images


def as_list(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def main(metrics_path, val_path, out_dir):
    metrics, process_batch = load(metrics_path, val_path)
    iouv = torch.linspace(0.5, 0.95, 10)
    for name, seed, n_images, nc in [("crafted", 3, 12, 4), ("missing_class", 5, 6, 3)]:
        rng = np.random.default_rng(seed)
        images = crafted(rng, n_images, nc)
        if name == "missing_class":
            # a class with labels and no detection, a class with detections and no label
            for labels, d in images:
                d[d[:, 5] == 1, 5] = 2
                labels[labels[:, 0] == 2, 0] = 0
        stats, cm = [], metrics.ConfusionMatrix(nc=nc, conf=0.25, iou_thres=0.45)
        cases = []
        for labels, d in images:
            lt, dt = torch.tensor(labels), torch.tensor(d)
            if len(d):
                correct = process_batch(dt, lt, iouv) if len(labels) else torch.zeros(len(d), 10, dtype=torch.bool)
            else:
                correct = torch.zeros(0, 10, dtype=torch.bool)
            stats.append((correct.numpy(), d[:, 4], d[:, 5], labels[:, 0]))
            if len(d):
                cm.process_batch(dt, lt)
            elif len(labels):
                cm.process_batch(None, lt[:, 0])
            cases.append({"labels": [as_list(r) for r in labels], "detections": [as_list(r) for r in d],
                          "correct": [[bool(x) for x in r] for r in correct.numpy()]})
        tp, conf, pred_cls, target_cls = [np.concatenate(x, 0) for x in zip(*stats)]
        # the curves as ap_per_class computes them before it picks the max-F1 confidence
        px = np.linspace(0, 1, 1000)
        tp_, fp_, p, r, f1, ap, classes = metrics.ap_per_class(tp, conf, pred_cls, target_cls, names={c: str(c) for c in range(nc)})
        # the full curves (recomputed the same way, since ap_per_class returns only their values at the max-F1 index)
        i = np.argsort(-conf)
        tps, confs, pcls = tp[i], conf[i], pred_cls[i]
        unique_classes, nt = np.unique(target_cls, return_counts=True)
        P, R, PY = np.zeros((len(unique_classes), 1000)), np.zeros((len(unique_classes), 1000)), []
        for ci, c in enumerate(unique_classes):
            k = pcls == c
            if k.sum() == 0 or nt[ci] == 0:
                PY.append(np.zeros(1000))
                continue
            tpc, fpc = tps[k].cumsum(0), (1 - tps[k]).cumsum(0)
            recall, precision = tpc / (nt[ci] + 1e-16), tpc / (tpc + fpc)
            R[ci] = np.interp(-px, -confs[k], recall[:, 0], left=0)
            P[ci] = np.interp(-px, -confs[k], precision[:, 0], left=1)
            _, mpre, mrec = metrics.compute_ap(recall[:, 0], precision[:, 0])
            PY.append(np.interp(px, mrec, mpre))
        F1 = 2 * P * R / (P + R + 1e-16)
        best = int(metrics.smooth(F1.mean(0), 0.1).argmax())
        assert np.allclose(F1[:, best], f1) and np.allclose(P[:, best], p)
        case = {
            "kind": "ap_per_class",
            "case": name,
            "generator": "yolov5 v7.0 utils/metrics.py ap_per_class, compute_ap, smooth; val.py process_batch "
                         "(iouv linspace(0.5, 0.95, 10)); numpy %s, torch %s" % (np.__version__, torch.__version__),
            "nc": nc,
            "images": cases,
            "classes": [int(c) for c in classes],
            "ap": [as_list(row) for row in ap],
            "best_index": best,
            "p": as_list(p), "r": as_list(r), "f1": as_list(f1), "tp": as_list(tp_), "fp": as_list(fp_),
            "p_curve": [as_list(row) for row in P], "r_curve": [as_list(row) for row in R],
            "f1_curve": [as_list(row) for row in F1], "pr_curve": [as_list(row) for row in PY],
        }
        with open(os.path.join(out_dir, "ap_per_class_%s.json" % name), "w") as f:
            json.dump(case, f)
        tpc, fpc = cm.tp_fp()
        cmcase = {
            "kind": "confusion_matrix",
            "case": name,
            "generator": "yolov5 v7.0 utils/metrics.py ConfusionMatrix(nc, conf=0.25, iou_thres=0.45).process_batch "
                         "per image (None detections: labels only); numpy %s, torch %s" % (np.__version__, torch.__version__),
            "nc": nc, "conf": 0.25, "iou_thres": 0.45,
            "images": [{"labels": c["labels"], "detections": c["detections"]} for c in cases],
            "matrix": [as_list(row) for row in cm.matrix],
            "tp": as_list(tpc), "fp": as_list(fpc),
        }
        with open(os.path.join(out_dir, "confusion_matrix_%s.json" % name), "w") as f:
            json.dump(cmcase, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
