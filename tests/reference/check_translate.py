#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Acceptance check on an unseen model: cyclegan-translate against PyTorch.

    check_translate.py --translate build/src/tools/cyclegan-translate \\
        --ngf 16 --blocks 3 --size 61x47 --seed 5 --dtype f16 --both

Draws a random generator (PyTorch's default init; two with --both), writes
it as a model file, writes a random RGB PNG, runs cyclegan-translate for
each direction and compares its PNG with PyTorch run in float64 on the
stored weights, under our size rule. Fails when any pixel is off by more
than one 8-bit level. Exits 77 (skip) where PyTorch is missing.
"""

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import zlib

try:
    import torch
except ImportError:
    print("SKIP: PyTorch is not importable by %s" % sys.executable)
    sys.exit(77)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cyclegan_ref as ref  # noqa: E402
import st  # noqa: E402

try:
    from PIL import Image
except ImportError:
    Image = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- PNG without PIL: 8-bit, non-interlaced ------------------------------


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_write_zlib(path, rgb):
    """rgb: uint8 [H, W, 3]. Filter type 0 on every row."""
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)
    with open(path, "wb") as f:
        f.write(PNG_SIGNATURE)
        f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)))
        f.write(_chunk(b"IEND", b""))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind, line, prev, bpp):
    """One scanline (bytearray, filtered in place -> raw) given the raw
    previous one."""
    n = len(line)
    if kind == 0:
        pass
    elif kind == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(n):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            upleft = prev[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + _paeth(left, prev[i], upleft)) & 0xFF
    else:
        raise ValueError("PNG filter type %d" % kind)
    return line


def png_read_zlib(path):
    """-> uint8 [H, W, 3]. 8-bit gray, gray+alpha, RGB, RGBA or palette;
    alpha is dropped."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("%s: not a PNG" % path)
    pos, idat, palette, ihdr = 8, [], None, None
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, color, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    if depth != 8 or interlace:
        raise ValueError("%s: only 8-bit non-interlaced PNGs (depth %d, interlace %d)"
                         % (path, depth, interlace))
    raw = zlib.decompress(b"".join(idat))
    stride = w * channels
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), prev, channels)
        rows.append(bytes(line))
        prev = line
    px = np.frombuffer(b"".join(rows), np.uint8).reshape(h, w, channels)
    if color == 3:
        return palette[px[..., 0]]
    if channels <= 2:
        return np.repeat(px[..., :1], 3, axis=2)
    return px[..., :3].copy()


def png_write(path, rgb, use_pil=True):
    if use_pil and Image is not None:
        Image.fromarray(rgb, "RGB").save(path)
    else:
        png_write_zlib(path, rgb)


def png_read(path, use_pil=True):
    if use_pil and Image is not None:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).copy()
    return png_read_zlib(path)


# --- the check ------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--translate", required=True, help="path to cyclegan-translate")
    p.add_argument("--ngf", type=int, default=8, help="filters of the first layer (default 8)")
    p.add_argument("--blocks", type=int, default=2, help="residual blocks (default 2)")
    p.add_argument("--dropout", action="store_true", help="dropout layout of the blocks")
    p.add_argument("--size", default="37x29", help="image size WxH (default 37x29)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dtype", choices=("f32", "f16", "bf16"), default="f32",
                   help="storage type of the weights (default f32)")
    p.add_argument("--both", action="store_true",
                   help="two generators (G_A., G_B.): check a2b and b2a; "
                        "otherwise one un-prefixed generator, a2b")
    p.add_argument("--no-pil", action="store_true", help="read and write PNGs without PIL")
    p.add_argument("--keep", metavar="DIR", help="write the files into DIR and keep them")
    args = p.parse_args()

    w, h = (int(v) for v in args.size.lower().split("x"))
    dtype = args.dtype.upper()
    use_pil = not args.no_pil
    torch.set_num_threads(1)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    tmp = args.keep or tempfile.mkdtemp(prefix="cg-check-")

    prefixes = ["G_A.", "G_B."] if args.both else [""]
    gens, tensors = {}, []
    for i, prefix in enumerate(prefixes):
        gen = ref.make_generator(args.ngf, args.blocks, args.dropout, args.seed * 2 + i)
        pairs = [(k, st.round_to(v, dtype)) for k, v in ref.state_dict_numpy(gen, prefix)]
        ref.load_numpy(gen, dict(pairs), prefix)
        gens["a2b" if i == 0 else "b2a"] = gen.double()
        tensors += pairs
    model = os.path.join(tmp, "model.safetensors")
    st.write(model, tensors, {"domain_a": "a", "domain_b": "b", "source": "check_translate.py"},
             dtype)

    rgb = np.random.default_rng(args.seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    src = os.path.join(tmp, "in.png")
    png_write(src, rgb, use_pil)
    x = torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1.0)

    print("model: ngf %d, %d blocks%s, %s, %s; image %dx%d, seed %d; PNG via %s"
          % (args.ngf, args.blocks, ", dropout" if args.dropout else "", dtype,
             "G_A + G_B" if args.both else "one generator", w, h, args.seed,
             "PIL" if use_pil and Image is not None else "zlib"))
    worst = 0
    for direction, gen in gens.items():
        y = ref.translate(gen, x).numpy()
        exact = (y.transpose(1, 2, 0) + 1.0) * 127.5
        want = np.clip(np.floor(exact + 0.5), 0, 255)
        dst = os.path.join(tmp, "out-%s.png" % direction)
        cmd = [args.translate, "--model", model, "--direction", direction, src, dst]
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0:
            print("%s: %s exited with %d:\n%s" % (direction, " ".join(cmd), run.returncode,
                                                 run.stdout.rstrip()))
            print("FAIL (files kept in %s)" % tmp)
            return 1
        got = png_read(dst, use_pil).astype(np.float64)
        if got.shape != want.shape:
            print("%s: output is %dx%d, expected %dx%d"
                  % (direction, got.shape[1], got.shape[0], w, h))
            print("FAIL (files kept in %s)" % tmp)
            return 1
        diff = np.abs(got - want)
        print("%s: max |diff| %d level(s), %d of %d values differ, max |out - exact| %.3f"
              % (direction, diff.max(), np.count_nonzero(diff), diff.size,
                 np.abs(got - np.clip(exact, 0, 255)).max()))
        worst = max(worst, diff.max())
    if worst > 1:
        print("FAIL: max difference %d levels, limit 1 (files kept in %s)" % (worst, tmp))
        return 1
    print("PASS: max difference %d level(s), limit 1" % worst)
    if not args.keep:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
