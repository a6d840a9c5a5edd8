#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""PSNR of a trained model on a paired test set.

    /usr/bin/python3 tests/bench/psnr.py --dataroot DIR --model M.safetensors \
        [--translate build/src/tools/cyclegan-translate] [--direction a2b]
    /usr/bin/python3 tests/bench/psnr.py --dataroot DIR --outputs OUTDIR

Translates DIR/testA (b2a: testB) with cyclegan-translate, or takes
already translated images from OUTDIR (same file names, e.g. the official
code's results), and prints the mean per-image PSNR (8-bit, peak 255)
against DIR/testA_truth next to the do-nothing baseline PSNR(testA,
testA_truth).
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image


def load(path, size=None):
    im = Image.open(path).convert("RGB")
    if size is not None and im.size != size:
        im = im.resize(size, Image.BICUBIC)
    return np.asarray(im, dtype=np.float64)


def psnr(a, b):
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dataroot", required=True)
    p.add_argument("--model")
    p.add_argument("--outputs", help="translated images, named as the inputs")
    p.add_argument("--translate", default="build/src/tools/cyclegan-translate")
    p.add_argument("--direction", default="a2b", choices=["a2b", "b2a"])
    args = p.parse_args()
    side = "A" if args.direction == "a2b" else "B"
    src = os.path.join(args.dataroot, "test" + side)
    truth = os.path.join(args.dataroot, "test%s_truth" % side)
    names = sorted(n for n in os.listdir(src) if n.lower().endswith((".png", ".jpg", ".jpeg")))

    with tempfile.TemporaryDirectory() as tmp:
        out = args.outputs
        if out is None:
            if not args.model:
                p.error("--model or --outputs")
            out = tmp
            subprocess.run([args.translate, "--model", args.model, "--direction", args.direction,
                            "--output-dir", out] + [os.path.join(src, n) for n in names],
                           check=True)
        base, got = [], []
        for n in names:
            t = load(os.path.join(truth, n))
            size = (t.shape[1], t.shape[0])
            base.append(psnr(load(os.path.join(src, n), size), t))
            stem = os.path.splitext(n)[0]
            cands = [f for f in os.listdir(out) if os.path.splitext(f)[0] in (stem, stem + "_fake_B", stem + "_fake_A")]
            if not cands:
                sys.exit("no output for %s in %s" % (n, out))
            got.append(psnr(load(os.path.join(out, cands[0]), size), t))
    print("images %d  do-nothing PSNR %.2f dB  model PSNR %.2f dB" %
          (len(names), np.mean(base), np.mean(got)))


if __name__ == "__main__":
    main()
