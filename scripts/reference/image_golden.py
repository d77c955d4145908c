#!/usr/bin/env python3
"""Writes golden cases of OpenCV's image decoding and resizing, as the reference's data pipeline calls them.

- kind `resize`: cv2.resize(src, (w, h), interpolation=INTER_AREA or INTER_LINEAR) of a uint8 image, for the sizes
  load_image (INTER_AREA when shrinking without augmentation, else INTER_LINEAR) and letterbox (INTER_LINEAR) ask
  for: shrinking by integer and non-integer factors, enlarging, one axis only, odd and non-square sizes.
- kind `image_decode`: cv2.imread of JPEG files tagged with each EXIF orientation 1-8 (cv2 applies the tag), and
  the reference's exif_size of the same file. The JPEGs are written next to the case (4:4:4, quality 95).

    /usr/bin/python3 scripts/reference/image_golden.py tests/golden
"""
import base64
import json
import os
import sys

import cv2
import numpy as np
from PIL import Image


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def source(h, w, seed):
    # smooth gradients, hard edges and noise: every filter weight shows
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float64)
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    img[(x // 7 + y // 5) % 2 == 0] *= 0.5
    img += rng.normal(0, 20, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)  # channel order as cv2 holds it (BGR)


def resize_cases(out):
    sources = {"odd": source(37, 61, 1), "even": source(48, 64, 2)}
    sizes = {
        "odd": [(30, 18), (20, 12), (45, 27), (61, 20), (13, 37), (100, 77), (122, 74), (7, 5)],
        "even": [(32, 24), (16, 12), (21, 16), (48, 36), (64, 24), (96, 72), (128, 96), (63, 47)],
    }
    for name, src in sources.items():
        h0, w0 = src.shape[:2]
        for w, h in sizes[name]:
            for interp, iname in ((cv2.INTER_AREA, "area"), (cv2.INTER_LINEAR, "linear")):
                dst = cv2.resize(src, (w, h), interpolation=interp)
                case = {
                    "kind": "resize",
                    "case": "%s_%s_%dx%d" % (iname, name, w, h),
                    "interpolation": iname,
                    "src_shape": [h0, w0, 3],
                    "src": b64(src),
                    "dst_shape": [h, w, 3],
                    "dst": b64(dst),
                    "tolerance": 1,
                }
                with open(os.path.join(out, "resize_%s.json" % case["case"]), "w") as f:
                    json.dump(case, f)
                    f.write("\n")


def exif_size(img):
    # the reference's build_utils/datasets.py exif_size: only orientations 6 and 8 swap
    s = img.size
    try:
        rotation = dict(img._getexif().items())[274]
        if rotation == 6 or rotation == 8:
            s = (s[1], s[0])
    except Exception:
        pass
    return s


def decode_cases(out):
    # RGB quadrants of flat colours with a marker square: where each lands shows the orientation applied
    h, w = 24, 40
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[: h // 2, : w // 2] = (220, 30, 30)
    rgb[: h // 2, w // 2:] = (30, 220, 30)
    rgb[h // 2:, : w // 2] = (30, 30, 220)
    rgb[h // 2:, w // 2:] = (230, 230, 40)
    rgb[2:6, 2:6] = (255, 255, 255)
    files = []
    for orientation in range(1, 9):
        name = "image_decode_orientation_%d.jpg" % orientation
        path = os.path.join(out, name)
        im = Image.fromarray(rgb)
        exif = Image.Exif()
        exif[274] = orientation
        im.save(path, quality=95, subsampling=0, exif=exif.tobytes())
        bgr = cv2.imread(path)
        files.append({
            "file": name,
            "orientation": orientation,
            "shape": list(bgr.shape),
            "rgb": b64(bgr[..., ::-1]),
            "exif_size": list(exif_size(Image.open(path))),
        })
    case = {"kind": "image_decode", "case": "exif_orientation", "tolerance": 2, "images": files}
    with open(os.path.join(out, "image_decode_exif_orientation.json"), "w") as f:
        json.dump(case, f)
        f.write("\n")


if __name__ == "__main__":
    resize_cases(sys.argv[1])
    decode_cases(sys.argv[1])
