#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cyclegan-convert on fake official checkpoints, read back with st.py.

    test_convert.py [PATH_TO_cyclegan-convert]

Exits 77 (skip) where PyTorch is missing.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import torch
except ImportError:
    print("SKIP: PyTorch is not importable by %s" % sys.executable)
    sys.exit(77)

import numpy as np  # noqa: E402

sys.path.insert(0, HERE)
import cyclegan_ref as ref  # noqa: E402
import st  # noqa: E402

CONVERTER = sys.argv[1] if len(sys.argv) > 1 else st.CONVERTER
failures = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def official_checkpoint(gen, path, data_parallel=False, legacy_file=False):
    """Save like the official repo does, plus what old checkpoints carry:
    InstanceNorm running stats and num_batches_tracked, maybe "module."."""
    sd = dict(gen.state_dict())
    for name, module in gen.named_modules():
        if isinstance(module, torch.nn.InstanceNorm2d):
            n = module.num_features
            sd[name + ".running_mean"] = torch.zeros(n)
            sd[name + ".running_var"] = torch.ones(n)
            sd[name + ".num_batches_tracked"] = torch.tensor(7)
    if data_parallel:
        sd = {"module." + k: v for k, v in sd.items()}
    torch.save(sd, path, _use_new_zipfile_serialization=not legacy_file)


def convert(*args):
    p = subprocess.run([sys.executable, CONVERTER] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout + p.stderr


def expect_tensors(path, gens, dtype):
    """gens: [(prefix, generator)]. Every tensor present, in network order,
    of `dtype`, equal to the generator's weights rounded to it."""
    f = st.read(path)
    want = []
    for prefix, gen in gens:
        want += ref.state_dict_numpy(gen, prefix)
    check(list(f.tensors) == [k for k, _ in want],
          "%s: tensor names in network order (%d)" % (os.path.basename(path), len(want)))
    check(set(f.dtypes.values()) == {dtype}, "%s: all tensors %s" % (os.path.basename(path), dtype))
    bad = [k for k, v in want
           if k not in f or f[k].shape != v.shape or not np.array_equal(f[k], st.round_to(v, dtype))]
    check(not bad, "%s: every tensor equal%s" % (os.path.basename(path), " (not %s)" % bad if bad else ""))
    return f


def main():
    tmp = tempfile.mkdtemp(prefix="cg-convert-")
    a = ref.make_generator(4, 2, False, seed=1)
    b = ref.make_generator(4, 2, False, seed=2)
    pa, pb = os.path.join(tmp, "latest_net_G_A.pth"), os.path.join(tmp, "latest_net_G_B.pth")
    official_checkpoint(a, pa)
    official_checkpoint(b, pb, data_parallel=True, legacy_file=True)

    rc, out = convert("--help")
    check(rc == 0 and "--g-a" in out, "--help")

    out_pair = os.path.join(tmp, "pair.safetensors")
    rc, out = convert("--g-a", pa, "--g-b", pb, "--domain-a", "photo", "--domain-b", "monet",
                      "-o", out_pair)
    check(rc == 0, "convert a pair: %s" % out.strip())
    if rc == 0:
        f = expect_tensors(out_pair, [("G_A.", a), ("G_B.", b)], "F32")
        md = f.metadata
        check(md.get("domain_a") == "photo" and md.get("domain_b") == "monet", "domains in metadata")
        check(md.get("source_g_a") == "latest_net_G_A.pth"
              and md.get("source_g_b") == "latest_net_G_B.pth", "source names in metadata")
        check(md.get("converter", "").startswith("cyclegan-convert "), "converter version in metadata")

    d = ref.make_generator(4, 3, True, seed=3)
    pd = os.path.join(tmp, "horse2zebra.pth")
    official_checkpoint(d, pd)
    for dtype in ("F32", "F16", "BF16"):
        out_one = os.path.join(tmp, "one-%s.safetensors" % dtype)
        rc, out = convert(pd, "--dtype", dtype.lower(), "-o", out_one)
        check(rc == 0, "convert one dropout-layout generator, %s: %s" % (dtype, out.strip()))
        if rc == 0:
            f = expect_tensors(out_one, [("", d)], dtype)
            check(f.metadata.get("source") == "horse2zebra.pth", "source name in metadata")

    # --norm none: no norm and no bias but the last conv's
    n = ref.make_generator(4, 2, False, seed=4, norm="none")
    pn = os.path.join(tmp, "latest_net_G_A_nonorm.pth")
    official_checkpoint(n, pn)
    out_none = os.path.join(tmp, "nonorm.safetensors")
    rc, out = convert(pn, "-o", out_none)
    check(rc == 0, "convert a generator trained with --norm none: %s" % out.strip())
    if rc == 0:
        expect_tensors(out_none, [("", n)], "F32")

    # Refusals: a clear message, exit status 1, no output file.
    bad_cases = []
    sd = dict(a.state_dict())
    bad_cases.append(("not a generator", {"model.0.weight": torch.zeros(64, 3, 4, 4)},
                      "not a CycleGAN ResNet generator"))
    missing = dict(sd)
    del missing["model.15.bias"]
    bad_cases.append(("a missing tensor", missing, "missing tensor \"model.15.bias\""))
    shape = dict(sd)
    shape["model.4.weight"] = torch.zeros(8, 4, 5, 5)
    bad_cases.append(("a wrong shape", shape, "\"model.4.weight\" has shape [8, 4, 5, 5]"))
    bn = dict(sd)
    bn["model.2.weight"] = torch.ones(4)
    bad_cases.append(("affine norm weights", bn, "unexpected tensors ['model.2.weight']"))
    for what, state, message in bad_cases:
        p = os.path.join(tmp, "bad.pth")
        torch.save(state, p)
        o = os.path.join(tmp, "bad.safetensors")
        rc, out = convert(p, "-o", o)
        check(rc == 1 and message in out and not os.path.exists(o),
              "refuses %s: %s" % (what, out.strip()))

    rc, out = convert("--g-a", pa, "-o", os.path.join(tmp, "x.safetensors"))
    check(rc == 2, "--g-a without --g-b is a usage error")

    if failures:
        print("%d check(s) failed (files kept in %s)" % (len(failures), tmp))
        return 1
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
