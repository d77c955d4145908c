#!/usr/bin/env python3
"""Writes the golden cases tests/golden/sgd_nesterov_warmup.json and sgd_groups_warmup.json with PyTorch's
torch.optim.SGD.

The trainer's optimizer (src/YoloSpp.CSharp/Training/Sgd.cs) must step as torch.optim.SGD does; this records
what PyTorch computes for the settings of the reference's train.py (momentum 0.937, weight decay 5e-4, Nesterov)
over steps whose learning rate changes as the warmup changes it, including a parameter without a gradient: once
with one param group (the reference's: every parameter decays), once with yolov5's groups (train.py's
smart_optimizer: biases and BatchNorm weights in groups with weight_decay 0, the weights of more than one dimension
with the decay).

    /usr/bin/python3 scripts/reference/sgd_golden.py tests/golden
"""
import os
import json
import sys

import torch


def exact(t):
    # float32 values as the exact decimal of the float32 value (parsing as double then float32 is exact)
    return [float(v) for v in t.detach().double().flatten().tolist()]


def case(out, grouped):
    g = torch.Generator().manual_seed(5)
    shapes = [[4, 3, 3, 3], [7], [2, 5], [3]]
    # values k/256: exact in float32
    params = [torch.nn.Parameter(torch.randint(-512, 512, s, generator=g).float() / 256) for s in shapes]
    lrs = [1e-4, 0.0105, 0.021, 0.05, 0.04, 0.03]
    if grouped:
        decay = [len(s) > 1 for s in shapes]
        # yolov5's order: the biases first, then the decayed weights, then the BatchNorm weights (both 1-D here)
        opt = torch.optim.SGD([p for p, d in zip(params, decay) if not d], lr=lrs[0], momentum=0.937, nesterov=True)
        opt.add_param_group({"params": [p for p, d in zip(params, decay) if d], "weight_decay": 5e-4})
        generator = ("torch %s, torch.optim.SGD(no-decay params, lr, momentum=0.937, nesterov=True) + "
                     "add_param_group({params of more than one dimension, weight_decay 5e-4}); "
                     "per step: lr set on every param group, grads assigned, optimizer.step()" % torch.__version__)
    else:
        decay = [True for _ in shapes]
        opt = torch.optim.SGD(params, lr=lrs[0], momentum=0.937, weight_decay=5e-4, nesterov=True)
        generator = ("torch %s, torch.optim.SGD(params, lr, momentum=0.937, weight_decay=5e-4, nesterov=True); "
                     "per step: lr set on the param group, grads assigned, optimizer.step()" % torch.__version__)
    case = {
        "kind": "sgd",
        "case": "groups_warmup" if grouped else "nesterov_warmup",
        "generator": generator,
        "momentum": 0.937, "weight_decay": 5e-4, "nesterov": True, "dampening": 0.0,
        "shapes": shapes,
        "initial": [exact(p) for p in params],
        "steps": [],
    }
    if grouped:
        case["decay"] = decay
    for k, lr in enumerate(lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        grads = []
        for i, p in enumerate(params):
            if i == 3 and k % 2 == 1:
                p.grad = None  # a parameter without a gradient is skipped (no decay, no momentum)
                grads.append(None)
            else:
                p.grad = torch.randint(-1024, 1024, p.shape, generator=g).float() / 512
                grads.append(exact(p.grad))
        opt.step()
        case["steps"].append({
            "lr": lr,
            "grads": grads,
            "params": [exact(p) for p in params],
            "momentum_buffers": [exact(opt.state[p]["momentum_buffer"]) if "momentum_buffer" in opt.state[p] else None for p in params],
        })
    case["tolerance"] = "params and momentum buffers: abs 1e-6 (float32 rounding of the elementwise steps)"
    with open(out, "w") as f:
        json.dump(case, f)
        f.write("\n")


def main(folder):
    case(os.path.join(folder, "sgd_nesterov_warmup.json"), grouped=False)
    case(os.path.join(folder, "sgd_groups_warmup.json"), grouped=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
