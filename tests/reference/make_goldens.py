#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write the golden files the C tests check against.

    /usr/bin/python3 tests/reference/make_goldens.py tests/golden

Deterministic (fixed seeds). Weights are PyTorch's default init (not
N(0, 0.02), so outputs are far from zero), stored as float32 (or F16/BF16);
every expected output is computed in float64 from the stored values and
written as F32. Model inputs are exact 8-bit levels, v / 127.5 - 1.

Model files and their cases (<m>_io.safetensors: caseK.input/output [3,H,W],
metadata caseK.direction = a2b|b2a and n_cases):

    tiny      ngf 4, 2 blocks, G_A. + G_B., F32, domain metadata
    dropout   ngf 4, 3 blocks, dropout layout, one generator (a2b), F32
    half      ngf 8, 2 blocks, G_A. + G_B., F16
    bhalf     ngf 4, 1 block, one generator (a2b), BF16
    nonorm    ngf 4, 2 blocks, G_A. + G_B., F32, norm none (no IN, no bias
              but the last conv's)

layers.safetensors: one case per prefix, <case>.input/.weight/.bias/.output,
tensors [C, H, W] without batch dimension; conv weights [Cout, Cin, k, k],
transposed conv weights [Cin, Cout, k, k].
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cyclegan_ref as ref  # noqa: E402
import st  # noqa: E402

# name: (ngf, n_blocks, dropout, both generators, dtype, seed, metadata,
#        cases [(direction, H, W)][, norm])
MODELS = {
    "tiny": (4, 2, False, True, "F32", 101,
             {"domain_a": "photo", "domain_b": "vintage", "source": "make_goldens.py"},
             [("a2b", 16, 16), ("b2a", 16, 16), ("a2b", 13, 11), ("b2a", 18, 22)]),
    "dropout": (4, 3, True, False, "F32", 202, {"source": "make_goldens.py"},
                [("a2b", 12, 20), ("a2b", 9, 7)]),
    "half": (8, 2, False, True, "F16", 303, {"source": "make_goldens.py"},
             [("a2b", 20, 16), ("b2a", 15, 17)]),
    "bhalf": (4, 1, False, False, "BF16", 404, {"source": "make_goldens.py"},
              [("a2b", 8, 12)]),
    "nonorm": (4, 2, False, True, "F32", 505, {"source": "make_goldens.py"},
               [("a2b", 16, 12), ("b2a", 11, 13)], "none"),
}


def pixels_input(rng, h, w):
    """[3, H, W] float32 of exact 8-bit levels v / 127.5 - 1."""
    v = rng.integers(0, 256, size=(3, h, w))
    return (v / 127.5 - 1.0).astype(np.float32)


def run64(gen, x):
    """Our size rule in float64 on float32 input; float32 result."""
    return ref.translate(gen, torch.from_numpy(x).double()).float().numpy()


def write_model(outdir, name, spec):
    ngf, n_blocks, dropout, both, dtype, seed, metadata, cases = spec[:8]
    norm = spec[8] if len(spec) > 8 else "instance"
    prefixes = ["G_A.", "G_B."] if both else [""]
    gens, tensors = {}, []
    for i, prefix in enumerate(prefixes):
        gen = ref.make_generator(ngf, n_blocks, dropout, seed + i, norm=norm)
        # The reference runs on exactly the values the file stores.
        pairs = [(k, st.round_to(v, dtype)) for k, v in ref.state_dict_numpy(gen, prefix)]
        ref.load_numpy(gen, dict(pairs), prefix)
        gens["a2b" if i == 0 else "b2a"] = gen.double()
        tensors += pairs
    st.write(os.path.join(outdir, name + ".safetensors"), tensors, metadata, dtype)

    rng = np.random.default_rng(seed)
    io, meta = [], {"n_cases": str(len(cases)), "model": name + ".safetensors"}
    for k, (direction, h, w) in enumerate(cases):
        x = pixels_input(rng, h, w)
        io += [("case%d.input" % k, x), ("case%d.output" % k, run64(gens[direction], x))]
        meta["case%d.direction" % k] = direction
    st.write(os.path.join(outdir, name + "_io.safetensors"), io, meta)


def f32(t):
    return t.detach().to(torch.float32).numpy().copy()


def d64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32)).double().unsqueeze(0)


def uniform(*shape):
    return f32(torch.rand(*shape) * 2 - 1)


def conv_case(cin, cout, k, shape, **kw):
    """(input, weight, bias) of a default-init Conv2d and a [-1, 1] input."""
    conv = nn.Conv2d(cin, cout, k, **kw)
    return uniform(*shape), f32(conv.weight), f32(conv.bias)


def layer_cases():
    """(case, op description, [(suffix, array)]) in file order."""
    cases = []

    def add(name, op, seed, fn):
        torch.manual_seed(seed)
        cases.append((name, op, fn()))

    def pad(p, shape):
        x = uniform(*shape)
        return [("input", x), ("output", f32(F.pad(d64(x), (p,) * 4, mode="reflect")[0]))]

    def conv_reflect(cin, cout, k, shape):
        x, w, b = conv_case(cin, cout, k, shape)
        y = F.conv2d(F.pad(d64(x), (k // 2,) * 4, mode="reflect"), d64(w)[0], d64(b)[0])
        return [("input", x), ("weight", w), ("bias", b), ("output", f32(y[0]))]

    def conv_s2(shape):
        x, w, b = conv_case(5, 6, 3, shape, stride=2, padding=1)
        y = F.conv2d(d64(x), d64(w)[0], d64(b)[0], stride=2, padding=1)
        return [("input", x), ("weight", w), ("bias", b), ("output", f32(y[0]))]

    def conv_t():
        conv = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
        x, w, b = uniform(6, 7, 6), f32(conv.weight), f32(conv.bias)
        y = F.conv_transpose2d(d64(x), d64(w)[0], d64(b)[0], stride=2, padding=1,
                               output_padding=1)
        return [("input", x), ("weight", w), ("bias", b), ("output", f32(y[0]))]

    def norm_input():
        # Per channel: mean in [-2, 2], scale from 0.05 to 5; the last
        # channel constant (zero variance: the output must be 0).
        mean = torch.tensor([-2.0, 1.5, 0.3, -0.7, 2.0, 0.75]).view(6, 1, 1)
        scale = torch.tensor([0.05, 5.0, 1.0, 0.3, 2.0, 0.0]).view(6, 1, 1)
        return f32(mean + scale * torch.randn(6, 9, 7))

    def instnorm(relu):
        x = norm_input()
        y = F.instance_norm(d64(x), eps=1e-5)
        if relu:
            y = F.relu(y)
        return [("input", x), ("output", f32(y[0]))]

    def resblock():
        block = ref.ResnetBlock(6)
        x = f32(torch.randn(6, 9, 7))
        c1, c2 = block.conv_block[1], block.conv_block[5]
        tensors = [("input", x), ("weight1", f32(c1.weight)), ("bias1", f32(c1.bias)),
                   ("weight2", f32(c2.weight)), ("bias2", f32(c2.bias))]
        block = block.double().eval()
        with torch.no_grad():
            y = block(d64(x))
        return tensors + [("output", f32(y[0]))]

    def tanh():
        x = f32(torch.rand(3, 5, 7) * 8 - 4)
        return [("input", x), ("output", f32(torch.tanh(d64(x))[0]))]

    add("reflpad3", "ReflectionPad2d(3)", 1, lambda: pad(3, (3, 13, 11)))
    add("reflpad1", "ReflectionPad2d(1)", 2, lambda: pad(1, (5, 6, 9)))
    add("conv7_reflect", "ReflectionPad2d(3) + Conv2d(3, 5, 7)", 3,
        lambda: conv_reflect(3, 5, 7, (3, 13, 11)))
    add("conv3_reflect", "ReflectionPad2d(1) + Conv2d(6, 6, 3)", 4,
        lambda: conv_reflect(6, 6, 3, (6, 9, 7)))
    add("conv3_s2", "Conv2d(5, 6, 3, stride=2, padding=1)", 5, lambda: conv_s2((5, 13, 11)))
    add("conv3_s2_even", "Conv2d(5, 6, 3, stride=2, padding=1)", 6, lambda: conv_s2((5, 12, 16)))
    add("convT", "ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)", 7, conv_t)
    add("instnorm", "InstanceNorm2d(eps=1e-5, affine=False)", 8, lambda: instnorm(False))
    add("instnorm_relu", "InstanceNorm2d(eps=1e-5, affine=False) + ReLU", 9,
        lambda: instnorm(True))
    add("resblock", "x + [ReflPad1, Conv3, IN, ReLU, ReflPad1, Conv3, IN](x)", 10, resblock)
    add("tanh", "Tanh", 11, tanh)
    return cases


def write_layers(outdir):
    tensors, meta = [], {}
    for name, op, items in layer_cases():
        meta[name + ".op"] = op
        tensors += [("%s.%s" % (name, suffix), a) for suffix, a in items]
    st.write(os.path.join(outdir, "layers.safetensors"), tensors, meta)


def main():
    if len(sys.argv) != 2:
        print("usage: %s OUTDIR" % sys.argv[0], file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    write_layers(outdir)
    for name, spec in MODELS.items():
        write_model(outdir, name, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
