#!/usr/bin/env python3
"""Writes the golden cases tests/golden/adam_groups_warmup.json and tests/golden/adam_adamw_groups_warmup.json with
PyTorch's torch.optim.Adam and torch.optim.AdamW.

The trainer's Adam and AdamW (src/YoloSpp.CSharp/Training/Adam.cs) must step as torch.optim does, with yolov5's
parameter groups: weight decay on the convolution weights only (parameters of more than one dimension), none on
BatchNorm weights and biases; beta1 is the hyperparameters' momentum (0.937), beta2 0.999. The learning rate changes
between steps as the warmup changes it, and one parameter has no gradient on every second step (torch skips it: its
step count, moments and value stay as they were).

    /usr/bin/python3 scripts/reference/adam_golden.py tests/golden
"""
import json
import os
import sys

import torch


def exact(t):
    # float32 values as the exact decimal of the float32 value (parsing as double then float32 is exact)
    return [float(v) for v in t.detach().double().flatten().tolist()]


def case(name, cls, decoupled):
    g = torch.Generator().manual_seed(7)
    shapes = [[4, 3, 3, 3], [7], [2, 5, 1, 1], [3]]
    # values k/256: exact in float32
    params = [torch.nn.Parameter(torch.randint(-512, 512, s, generator=g).float() / 256) for s in shapes]
    decay = [len(s) > 1 for s in shapes]
    wd, betas, eps = 5e-4, (0.937, 0.999), 1e-8
    lrs = [1e-6, 0.0005, 0.001, 0.002, 0.0015, 0.001, 0.0004]
    opt = cls([{"params": [p for p, d in zip(params, decay) if not d], "weight_decay": 0.0},
               {"params": [p for p, d in zip(params, decay) if d], "weight_decay": wd}],
              lr=lrs[0], betas=betas, eps=eps)
    out = {
        "kind": "adam",
        "case": name,
        "generator": "torch %s, torch.optim.%s([{no-decay params, weight_decay 0}, {params of more than one "
                     "dimension, weight_decay %g}], lr, betas=%s, eps=%g); per step: lr set on every param group, "
                     "grads assigned, optimizer.step()" % (torch.__version__, cls.__name__, wd, betas, eps),
        "decoupled_weight_decay": decoupled,
        "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": wd,
        "shapes": shapes,
        "decay": decay,
        "initial": [exact(p) for p in params],
        "steps": [],
    }
    for k, lr in enumerate(lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        grads = []
        for i, p in enumerate(params):
            if i == 3 and k % 2 == 1:
                p.grad = None
                grads.append(None)
            else:
                p.grad = torch.randint(-1024, 1024, p.shape, generator=g).float() / 512
                grads.append(exact(p.grad))
        opt.step()
        st = [opt.state[p] for p in params]
        out["steps"].append({
            "lr": lr,
            "grads": grads,
            "params": [exact(p) for p in params],
            "exp_avg": [exact(s["exp_avg"]) if "exp_avg" in s else None for s in st],
            "exp_avg_sq": [exact(s["exp_avg_sq"]) if "exp_avg_sq" in s else None for s in st],
            "step": [int(s["step"]) if "step" in s else 0 for s in st],
        })
    out["tolerance"] = "params and moments: abs 1e-6 (float32 rounding of the elementwise steps); step counts exact"
    return out


def main(folder):
    for name, cls, decoupled in [("groups_warmup", torch.optim.Adam, False), ("adamw_groups_warmup", torch.optim.AdamW, True)]:
        path = os.path.join(folder, "adam_%s.json" % name)
        with open(path, "w") as f:
            json.dump(case(name, cls, decoupled), f)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/golden")
