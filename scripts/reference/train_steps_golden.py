#!/usr/bin/env python3
"""Writes the golden cases tests/golden/train_steps_shapes_spp*.json: the reference's training loop, step by step.

The reference's own code trains its Darknet on fixed batches: torch.manual_seed(seed) then models.Darknet(cfg) (the
same initial weights TorchSharp draws for the same seed and cfg), then per step what train_one_epoch does with
accumulate 1: imgs / 255, model(imgs) in train mode, build_utils.utils.compute_loss, the sum of its three terms
backward, torch.optim.SGD (nesterov, all parameters, lr set per step as the epoch-0 warmup sets it), zero_grad.
It records the initial weights' checksums, every step's losses, and after the last step the weights', running
statistics' and eval output's checksums. Images come from a hash (no files): for the flat index i of (b, c, y, x)
and the step s, h = (2654435761·i + 40503·s) mod 2³², h ^= h >> 15, h = 2246822519·h mod 2³², h ^= h >> 13,
pixel = h mod 256 (noise, so that BatchNorm's batch variances are far from zero and the steps well conditioned).

    /usr/bin/python3 scripts/reference/train_steps_golden.py REF_DIR cfg/shapes-spp.cfg cfg/hyp.yaml \\
        tests/golden/train_steps_shapes_spp.json
    /usr/bin/python3 scripts/reference/train_steps_golden.py REF_DIR cfg/shapes-spp.cfg cfg/hyp.yaml \\
        tests/golden/train_steps_shapes_spp_bf16.json --bf16

With --bf16 the forward pass runs under torch.autocast('cpu', dtype=torch.bfloat16) and its outputs are cast to
float32 before compute_loss, as the mixed-precision benchmark of the reference does (the reference's own
torch.cuda.amp.autocast does nothing on a CPU); weights, optimizer and loss stay float32, and the final eval
output is float32 (outside autocast). It also prints how far the same loop in float32, and in bfloat16 with each
convolution's output cast back to float32 (BatchNorm and activations in float32), land from the autocast case:
the gaps the case's tolerance must stay below.

REF_DIR is the reference's pytorch_object_detection/yolov3_spp folder (never part of this repository), at the
commit pinned in docs/reference-parity.md.
"""
import json
import math
import os
import sys


def main(ref, cfg, hyp_path, out, *flags):
    if flags not in ((), ("--bf16",)):
        sys.exit(__doc__)
    bf16 = flags == ("--bf16",)
    cfg, hyp_path, out = os.path.abspath(cfg), os.path.abspath(hyp_path), os.path.abspath(out)
    sys.path.insert(0, os.path.abspath(ref))
    os.chdir(ref)
    import contextlib
    import torch
    import yaml
    from models import Darknet
    from build_utils.utils import compute_loss

    torch.set_num_threads(1)
    # three steps: past them, float32 rounding differences (even between thread counts of one libtorch) grow about
    # tenfold a step in the objectness term, and the two trajectories part
    seed, size, bs, steps = 0, 96, 2, 3
    # in bfloat16 one step: a forward pass rounds each weight to bfloat16, so the second step's forward already
    # differs wherever the first update (of either side) moved a weight across a bfloat16 rounding boundary; the
    # gradients of the one step are what the case checks
    if bf16:
        steps = 1

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
    def targets(step, nc):
        rows = []
        for k in range(3 + step % 2):
            rows.append([k % bs, (k + step) % nc, 0.2 + 0.15 * k, 0.3 + 0.05 * step, 0.1 + 0.08 * k, 0.15 + 0.02 * step])
        return rows

    def train(mode):
        """The loop in float32 ("float32"), under autocast ("autocast"), or under autocast with every convolution's
        output cast back to float32 ("conv_only": BatchNorm, activations, routes in float32)."""
        hyp = yaml.safe_load(open(hyp_path))
        torch.manual_seed(seed)
        model = Darknet(cfg)
        nc = model.module_list[model.yolo_layers[0]].nc
        # train.py's adjustments
        hyp["cls"] *= nc / 80
        hyp["obj"] *= size / 320
        model.nc, model.hyp, model.gr = nc, hyp, 1.0
        if mode == "conv_only":
            for m in model.modules():
                if isinstance(m, torch.nn.Conv2d):
                    m.register_forward_hook(lambda _m, _i, o: o.float())
        cast = contextlib.nullcontext if mode == "float32" else (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=hyp["lr0"], momentum=hyp["momentum"], weight_decay=hyp["weight_decay"], nesterov=True)
        warmup_iters, warmup_factor = steps, 1.0 / 1000
        case = {
            "kind": "train_steps",
            "case": "shapes_spp_bf16" if bf16 else "shapes_spp",
            "generator": "torch %s, the reference's models.Darknet, build_utils.utils.compute_loss and torch.optim.SGD%s; "
                         "scripts/reference/train_steps_golden.py"
                         % (torch.__version__, ", the forward pass under torch.autocast('cpu', dtype=torch.bfloat16)" if bf16 else ""),
            "cfg": os.path.basename(cfg),
            "seed": seed,
            "img_size": size,
            "batch_size": bs,
            "image_formula": "i = flat index of (b, c, y, x), s = step: h = (2654435761*i + 40503*s) % 2**32; h ^= h >> 15; "
                             "h = (2246822519*h) % 2**32; h ^= h >> 13; pixel = h % 256, uint8, then / 255",
            "hyp": hyp,
            "model_gr": 1.0,
        }
        if bf16:
            case["autocast"] = "bfloat16"
        case["initial"] = checksums(model.state_dict().values())
        case["steps"] = []
        model.train()
        for i in range(steps):
            alpha = i / warmup_iters
            lr = hyp["lr0"] * (warmup_factor * (1 - alpha) + alpha)
            for g in optimizer.param_groups:
                g["lr"] = lr
            imgs = image(i).float() / 255.0
            t = torch.tensor(targets(i, nc), dtype=torch.float32)
            with cast():
                pred = model(imgs)
            pred = [p.float() for p in pred]
            loss_dict = compute_loss(pred, t, model)
            losses = sum(loss for loss in loss_dict.values())
            losses.backward()
            gradients = {
                "abs_sum": sum(p.grad.double().abs().sum().item() for p in params),
                "sum_sq": sum((p.grad.double() ** 2).sum().item() for p in params),
            }
            optimizer.step()
            optimizer.zero_grad()
            case["steps"].append({
                "lr": lr,
                "targets": targets(i, nc),
                "box": loss_dict["box_loss"].item(),
                "obj": loss_dict["obj_loss"].item(),
                "cls": loss_dict["class_loss"].item(),
                "total": losses.item(),
            })
            if bf16:
                case["steps"][-1]["gradients"] = gradients
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
        return case

    def gaps(a, b):
        """The largest relative difference of b from a over the step losses and the final checksums."""
        worst = {}
        for k, (sa, sb) in enumerate(zip(a["steps"], b["steps"])):
            for f in ("box", "obj", "cls", "total"):
                worst["step %d %s" % (k, f)] = abs(sb[f] - sa[f]) / abs(sa[f])
        for k, (sa, sb) in enumerate(zip(a["steps"], b["steps"])):
            for f in sa.get("gradients", {}):
                worst["step %d gradients %s" % (k, f)] = abs(sb["gradients"][f] - sa["gradients"][f]) / abs(sa["gradients"][f])
        for f in a["final"]:
            for g in ("sum", "sum_sq"):
                worst["final %s %s" % (f, g)] = abs(b["final"][f][g] - a["final"][f][g]) / abs(a["final"][f][g])
        return worst

    case = train("autocast" if bf16 else "float32")
    if bf16:
        for other in ("float32", "conv_only"):
            g = gaps(case, train(other))
            print("%s against autocast: relative gaps %s" % (other, ", ".join("%s %.1e" % kv for kv in g.items())))
        case["tolerance"] = ("initial checksums rel 1e-6 (the same weights); step losses rel 2e-3; final checksums "
                             "rel 2e-3 (bfloat16 convolutions of two libtorch versions: a float32 accumulation rounded "
                             "to 8 significant bits, where one ulp is 2^-8 relative)")
    else:
        case["tolerance"] = ("initial checksums rel 1e-6 (the same weights); step losses rel 1e-4; final checksums "
                             "rel 1e-4 (float32 kernels of two libtorch versions and thread counts)")
    with open(out, "w") as f:
        json.dump(case, f)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    main(*sys.argv[1:])
