#!/usr/bin/env python3
"""Writes the golden case tests/golden/python_round_repr.json: Python's round(x, n) and str() of floats.

The reference's trans_voc2yolo.py writes label coordinates as str(round(v, 6)), and train.py writes its results
file with str(round(v, 4)) and str(round(lr, 6)). The port must give the same digits (src/YoloSpp.Fs/PyFloat.fs).
Values: VOC-like coordinates (pixel boxes over image sizes, as trans_voc2yolo.py computes them), COCO stats and
losses, learning rates of the warmup and cosine schedules, exact ties and edge cases.

    /usr/bin/python3 scripts/reference/python_float_golden.py tests/golden/python_round_repr.json
"""
import json
import math
import random
import sys


def main(out):
    rnd = random.Random(11)
    rows = []

    def add(x, n):
        rows.append([repr(x), n, str(round(x, n)), str(x)])

    # VOC-like: trans_voc2yolo.py's arithmetic on integer (and some .5) pixel boxes
    # image sizes as datasets have them (powers of two and five make decimal ties at the 7th place common)
    sizes = [640, 1280, 320, 256, 512, 1024, 800, 960, 1920, 1080, 720, 480, 375, 333, 500]
    for k in range(3000):
        if k % 2:
            w, h = rnd.randint(100, 1200), rnd.randint(100, 1200)
        else:
            w, h = rnd.choice(sizes), rnd.choice(sizes)
        x1 = rnd.randint(0, w - 2) + rnd.choice([0, 0, 0, 0.5])
        x2 = rnd.randint(int(x1) + 1, w)
        y1 = rnd.randint(0, h - 2)
        y2 = rnd.randint(y1 + 1, h)
        xc = x1 + (x2 - x1) / 2
        yc = y1 + (y2 - y1) / 2
        for v in (xc / w, yc / h, (x2 - x1) / w, (y2 - y1) / h):
            add(v, 6)
    # results file: 12 COCO stats and the total loss (4 digits), LR (6 digits)
    for _ in range(1500):
        add(rnd.random(), 4)
        add(rnd.random() * 20, 4)
    lr0, lrf, epochs = 0.01, 0.01, 30
    for e in range(epochs):
        add(lr0 * (((1 + math.cos(e * math.pi / epochs)) / 2) * (1 - lrf) + lrf), 6)
    for k in range(200):
        add(lr0 * (k / 200) ** 2, 6)
        add(1e-7 * rnd.random() * 100, 6)
    # exact ties (k/2^m), numbers just beside them, negatives, and the edges of repr's notation
    for k in range(1, 400):
        t = k / 2 ** rnd.randint(1, 12)
        for v in (t, math.nextafter(t, 0), math.nextafter(t, 10), -t):
            add(v, rnd.randint(0, 5))
    for v in (2.675, 0.125, 0.375, 2.5, 3.5, -2.5, 0.5, 1.5, 0.0, -0.0, 1.0, 1e-4, 9.99995e-5, 1e-5, 5e-324,
              1e15, 1e16, 1e17, 123456789012345678.0, 1.7976931348623157e308, 0.1, 0.2, 0.3, 1 / 3, 2 / 3):
        for n in (0, 1, 2, 4, 6, 10):
            add(v, n)
    case = {
        "kind": "python_float",
        "case": "round_repr",
        "note": "rows: [repr(x), n, str(round(x, n)), str(x)]",
        "rows": rows,
    }
    with open(out, "w") as f:
        json.dump(case, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
