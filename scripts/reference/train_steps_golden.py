#!/usr/bin/env python3
"""Writes the golden case tests/golden/train_steps_shapes_spp.json: the reference's training loop, step by step.

The reference's own code trains its Darknet on fixed batches: torch.manual_seed(seed) then models.Darknet(cfg) (the
same initial weights TorchSharp draws for the same seed and cfg), then per step what train_one_epoch does with
accumulate 1: imgs / 255, model(imgs) in train mode, build_utils.utils.compute_loss, the sum of its three terms
backward, torch.optim.SGD (nesterov, all parameters, lr set per step as the epoch-0 warmup sets it), zero_grad.
It records the initial weights' checksums, every step's losses, and after the last step the weights', running
statistics' and eval output's checksums. Images come from a hash (no files): for the flat index i of (b, c, y, x)
and the step s, h = (2654435761·i + 40503·s) mod 2³², h ^= h >> 15, h = 2246822519·h mod 2³², h ^= h >> 13,
pixel = h mod 256 (noise, so that BatchNorm's batch variances are far from zero and the steps well conditioned).

    /usr/bin/python3 scripts/reference/train_steps_golden.py REF_DIR cfg/shapes-spp.cfg cfg/hyp.shapes.yaml \\
        tests/golden/train_steps_shapes_spp.json

REF_DIR is the reference's pytorch_object_detection/yolov3_spp folder (never part of this repository), at the
commit pinned in docs/reference-parity.md.
"""
import json
import math
import os
import sys


def main(ref, cfg, hyp_path, out):
    cfg, hyp_path, out = os.path.abspath(cfg), os.path.abspath(hyp_path), os.path.abspath(out)
    sys.path.insert(0, os.path.abspath(ref))
    os.chdir(ref)
    import torch
    import yaml
    from models import Darknet
    from build_utils.utils import compute_loss

    torch.set_num_threads(1)
    # three steps: past them, float32 rounding differences (even between thread counts of one libtorch) grow about
    # tenfold a step in the objectness term, and the two trajectories part
    seed, size, bs, steps = 0, 96, 2, 3
    hyp = yaml.safe_load(open(hyp_path))
    torch.manual_seed(seed)
    model = Darknet(cfg)
    nc = model.module_list[model.yolo_layers[0]].nc
    # train.py's adjustments
    hyp["cls"] *= nc / 80
    hyp["obj"] *= size / 320
    model.nc, model.hyp, model.gr = nc, hyp, 1.0

    def checksums(tensors):
        ts = [t.detach().double() for t in tensors]
        return {"sum": sum(t.sum().item() for t in ts), "sum_sq": sum((t * t).sum().item() for t in ts)}

    def image(step):
        i = torch.arange(bs * 3 * size * size, dtype=torch.int64)
        h = (2654435761 * i + 40503 * step) % 2 ** 32
        h = h ^ (h >> 15)
        h = (2246822519 * h) % 2 ** 32
        h = h ^ (h >> 13)
        return (h % 256).to(torch.uint8).view(bs, 3, size, size)

    # [image, class, x, y, w, h] normalised, a few objects per step
    def targets(step):
        rows = []
        for k in range(3 + step % 2):
            rows.append([k % bs, (k + step) % nc, 0.2 + 0.15 * k, 0.3 + 0.05 * step, 0.1 + 0.08 * k, 0.15 + 0.02 * step])
        return rows

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=hyp["lr0"], momentum=hyp["momentum"], weight_decay=hyp["weight_decay"], nesterov=True)
    warmup_iters, warmup_factor = steps, 1.0 / 1000
    case = {
        "kind": "train_steps",
        "case": "shapes_spp",
        "generator": "torch %s, the reference's models.Darknet, build_utils.utils.compute_loss and torch.optim.SGD; "
                     "scripts/reference/train_steps_golden.py" % torch.__version__,
        "cfg": os.path.basename(cfg),
        "seed": seed,
        "img_size": size,
        "batch_size": bs,
        "image_formula": "i = flat index of (b, c, y, x), s = step: h = (2654435761*i + 40503*s) % 2**32; h ^= h >> 15; "
                         "h = (2246822519*h) % 2**32; h ^= h >> 13; pixel = h % 256, uint8, then / 255",
        "hyp": hyp,
        "model_gr": 1.0,
        "initial": checksums(model.state_dict().values()),
        "steps": [],
    }
    model.train()
    for i in range(steps):
        alpha = i / warmup_iters
        lr = hyp["lr0"] * (warmup_factor * (1 - alpha) + alpha)
        for g in optimizer.param_groups:
            g["lr"] = lr
        imgs = image(i).float() / 255.0
        t = torch.tensor(targets(i), dtype=torch.float32)
        pred = model(imgs)
        loss_dict = compute_loss(pred, t, model)
        losses = sum(loss for loss in loss_dict.values())
        losses.backward()
        optimizer.step()
        optimizer.zero_grad()
        case["steps"].append({
            "lr": lr,
            "targets": targets(i),
            "box": loss_dict["box_loss"].item(),
            "obj": loss_dict["obj_loss"].item(),
            "cls": loss_dict["class_loss"].item(),
            "total": losses.item(),
        })
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    model.eval()
    with torch.no_grad():
        detections = model(image(0).float() / 255.0)[0]
    case["final"] = {
        "parameters": checksums(params),
        "running_mean": checksums([m.running_mean for m in bn]),
        "running_var": checksums([m.running_var for m in bn]),
        "eval_output": checksums([detections]),
    }
    case["tolerance"] = ("initial checksums rel 1e-6 (the same weights); step losses rel 1e-4; final checksums "
                         "rel 1e-4 (float32 kernels of two libtorch versions and thread counts)")
    with open(out, "w") as f:
        json.dump(case, f)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
