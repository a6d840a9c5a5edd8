#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Side-by-side peer benchmark: cyclegan-bench against PyTorch and ONNX Runtime.

For each configuration (ngf, residual blocks, frame size) the random generator
of cyclegan-bench is written once with `cyclegan-bench --save`; the very same
weights are loaded into the PyTorch reference (tests/reference/cyclegan_ref.py)
and exported to ONNX for ONNX Runtime (npm onnxruntime-node, via ort_bench.mjs).
Then the peers run alternately, ours, torch, ort, ours, torch, ort, ... for
--rounds rounds, each run a fresh process timing --frames frames after --warmup
untimed ones; a peer's result is the median of its per-round medians.

Run with Debian's python (it has torch and numpy):

    nice -n 5 /usr/bin/python3 tests/bench/peers.py --configs ngf16-6-320x240 \
        --frames 5 --rounds 2

See tests/bench/README.md.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
REFERENCE = os.path.join(ROOT, "tests", "reference")

DEFAULT_CONFIGS = ["ngf64-9-256x256", "ngf64-9-640x480", "ngf32-6-320x240",
                   "ngf16-6-320x240", "ngf16-6-640x480"]
ALIASES = {"official": "ngf64-9-256x256"}
CONFIG_RE = re.compile(r"^ngf(\d+)-(\d+)-(\d+)x(\d+)$")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_config(name):
    name = ALIASES.get(name, name)
    m = CONFIG_RE.match(name)
    if not m:
        raise SystemExit("peers.py: bad config %r (want ngfN-BLOCKS-WxH, e.g. ngf16-6-320x240, "
                         "or 'official')" % name)
    ngf, blocks, w, h = (int(g) for g in m.groups())
    if min(ngf, blocks, w, h) <= 0:
        raise SystemExit("peers.py: bad config %r" % name)
    return {"name": name, "ngf": ngf, "blocks": blocks, "width": w, "height": h}


def padded(n):
    """Our size rule: H and W are reflection-padded up to a multiple of 4."""
    return n + (-n % 4)


def median(xs):
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------
# PyTorch worker: runs in its own process (python3 peers.py --torch-worker ...)
# so that it gets the same fresh-process treatment as the other peers and its
# OpenMP threads do not linger beside them.

def torch_worker(args):
    sys.path.insert(0, REFERENCE)
    import torch
    torch.set_num_threads(args.threads)
    import cyclegan_ref
    import st

    gen = cyclegan_ref.ResnetGenerator(3, 3, args.ngf, args.blocks)
    cyclegan_ref.load_numpy(gen, st.read(args.model).tensors)
    gen = gen.to(torch.float32).eval()
    torch.manual_seed(0)
    x = torch.rand(1, 3, args.height, args.width, dtype=torch.float32) * 2 - 1
    needs_pad = args.height % 4 or args.width % 4
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.frames):
            t0 = time.perf_counter()
            if needs_pad:
                y = cyclegan_ref.translate(gen, x)   # pad, run, crop: our size rule
            else:
                y = gen(x)
            t1 = time.perf_counter()
            if i >= args.warmup:
                times.append((t1 - t0) * 1e3)
    assert y.shape == (1, 3, args.height, args.width)
    print("version %s" % torch.__version__)
    print("median_ms %.3f" % median(times))
    print("min_ms %.3f" % min(times))


# --------------------------------------------------------------------------
# Peers, each run as a child process that prints what we parse.

def run(cmd, env=None, timeout=None):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode,
                                                    p.stdout[-2000:], p.stderr[-2000:]))
    return p.stdout


def parse_kv(text, key):
    m = re.search(r"^%s\s+(\S+)" % re.escape(key), text, re.M)
    if not m:
        raise RuntimeError("no %r in output:\n%s" % (key, text))
    return m.group(1)


def ours_env(coretype):
    """The child's environment for one OPENBLAS_CORETYPE variant:
    None = inherit ours, 'unset' = remove the variable, else set it."""
    env = dict(os.environ)
    if coretype is None:
        return env
    if coretype.lower() == "unset":
        env.pop("OPENBLAS_CORETYPE", None)
    else:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def run_ours(opts, cfg, model, coretype):
    out = run([opts.bench, "--model", model, "--size", "%dx%d" % (cfg["width"], cfg["height"]),
               "--threads", str(opts.threads), "--frames", str(opts.frames),
               "--warmup", str(opts.warmup)], env=ours_env(coretype))
    m = re.search(r"^ms/frame\s+min\s+(\S+)\s+median\s+(\S+)", out, re.M)
    g = re.search(r"^GMAC\s+(\S+)", out, re.M)
    t = re.search(r"^threads\s+(.*)$", out, re.M)
    if not (m and g and t):
        raise RuntimeError("cannot parse cyclegan-bench output:\n" + out)
    return {"median_ms": float(m.group(2)), "min_ms": float(m.group(1)),
            "gmac": float(g.group(1)), "threads_line": t.group(1).strip()}


def run_torch(opts, cfg, model):
    out = run([sys.executable, os.path.abspath(__file__), "--torch-worker",
               "--model", model, "--ngf", str(cfg["ngf"]), "--blocks", str(cfg["blocks"]),
               "--height", str(cfg["height"]), "--width", str(cfg["width"]),
               "--threads", str(opts.threads), "--frames", str(opts.frames),
               "--warmup", str(opts.warmup)])
    return {"median_ms": float(parse_kv(out, "median_ms")), "version": parse_kv(out, "version")}


def run_ort(opts, cfg, onnx_path):
    out = run(["node", os.path.join(HERE, "ort_bench.mjs"), "--modules", opts.ort_modules,
               "--model", onnx_path, "--height", str(padded(cfg["height"])),
               "--width", str(padded(cfg["width"])), "--threads", str(opts.threads),
               "--frames", str(opts.frames), "--warmup", str(opts.warmup)])
    return {"median_ms": float(parse_kv(out, "median_ms")), "version": parse_kv(out, "version")}


# --------------------------------------------------------------------------
# ONNX Runtime availability and model export.

def ort_setup(opts):
    """Returns (version, None) or (None, reason)."""
    if opts.no_ort:
        return None, "disabled (--no-ort)"
    if not shutil.which("node"):
        return None, "node not found"
    pkg = os.path.join(opts.ort_modules, "onnxruntime-node")
    if not os.path.isdir(pkg):
        if opts.no_install:
            return None, "onnxruntime-node not in %s (--no-install)" % opts.ort_modules
        if not shutil.which("npm"):
            return None, "npm not found"
        prefix = os.path.dirname(os.path.abspath(opts.ort_modules))
        log("installing onnxruntime-node into %s ..." % opts.ort_modules)
        # The CPU provider is bundled in the package; its install script only
        # fetches optional GPU providers from nuget.org, so skip that part.
        env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")
        cmd = ["npm", "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
               "--prefix", prefix, "onnxruntime-node"]
        ok = False
        for extra in ([], ["--ignore-scripts"]):
            p = subprocess.run(cmd + extra, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True)
            if p.returncode == 0:
                ok = True
                break
            log("npm install failed%s:\n%s" % (" (retrying with --ignore-scripts)" if not extra
                                               else "", p.stdout[-1500:]))
        if not ok:
            return None, "npm install onnxruntime-node failed"
    try:
        out = run(["node", os.path.join(HERE, "ort_bench.mjs"), "--probe",
                   "--modules", opts.ort_modules], timeout=120)
        return parse_kv(out, "version"), None
    except Exception as e:  # e.g. no linux-x64 binary in the package
        return None, "onnxruntime-node does not load: %s" % str(e).strip().splitlines()[-1]


def export_onnx(cfg, model, path):
    sys.path.insert(0, REFERENCE)
    import torch
    import cyclegan_ref
    import st
    torch.set_num_threads(1)
    gen = cyclegan_ref.ResnetGenerator(3, 3, cfg["ngf"], cfg["blocks"])
    cyclegan_ref.load_numpy(gen, st.read(model).tensors)
    gen.eval()
    x = torch.zeros(1, 3, padded(cfg["height"]), padded(cfg["width"]), dtype=torch.float32)
    # The exporter warns that InstanceNorm is exported with train=True: without
    # running stats that is the same computation; and that the reflection pads'
    # Slice ops are not constant-folded. Neither matters here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(gen, x, path, opset_version=13, input_names=["input"],
                          output_names=["output"], do_constant_folding=True)
    return gen


def check_ort(opts, cfg, gen, onnx_path, workdir):
    """Max |ORT - PyTorch| on one random frame: is ORT running the same model?"""
    import numpy as np
    import torch
    h, w = padded(cfg["height"]), padded(cfg["width"])
    torch.manual_seed(1)
    x = torch.rand(1, 3, h, w, dtype=torch.float32) * 2 - 1
    with torch.no_grad():
        ref = gen(x).numpy().ravel()
    inp, out = os.path.join(workdir, "check-in.f32"), os.path.join(workdir, "check-out.f32")
    x.numpy().astype("<f4").tofile(inp)
    run(["node", os.path.join(HERE, "ort_bench.mjs"), "--modules", opts.ort_modules,
         "--model", onnx_path, "--height", str(h), "--width", str(w), "--threads",
         str(opts.threads), "--frames", "1", "--warmup", "0", "--input", inp, "--dump", out])
    y = np.fromfile(out, dtype="<f4")
    if y.shape != ref.shape:
        raise RuntimeError("ORT output has %d values, PyTorch %d" % (y.size, ref.size))
    return float(np.max(np.abs(y - ref)))


# --------------------------------------------------------------------------

def git_describe():
    try:
        return subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True).stdout.strip() or "?"
    except OSError:
        return "?"


def fmt(x, spec="%.1f"):
    return "–" if x is None else spec % x


def ratio(a, b):
    return None if a is None or b is None else a / b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                    help="comma-separated ngfN-BLOCKS-WxH (default: %(default)s)")
    ap.add_argument("--frames", type=int, default=10, help="timed frames per run (10)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed frames per run first (2)")
    ap.add_argument("--threads", type=int, default=2, help="threads of every peer (2)")
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the peers (3)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random weights (1)")
    ap.add_argument("--coretypes", default="",
                    help="comma-separated OPENBLAS_CORETYPE values (or 'unset') to run our "
                         "side under as extra columns, e.g. Haswell,SkylakeX")
    ap.add_argument("--bench", default=os.environ.get(
        "CYCLEGAN_BENCH", os.path.join(ROOT, "build", "src", "tools", "cyclegan-bench")),
        help="the cyclegan-bench executable (build/src/tools/cyclegan-bench)")
    ap.add_argument("--ort-modules", default=os.environ.get(
        "ORT_NODE_MODULES", os.path.join(HERE, "node_modules")),
        help="node_modules folder with onnxruntime-node (tests/bench/node_modules)")
    ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    ap.add_argument("--no-install", action="store_true",
                    help="do not npm-install onnxruntime-node when it is missing")
    ap.add_argument("--check", action="store_true",
                    help="once per config, compare ORT's output with PyTorch's on one frame")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--keep", metavar="DIR", help="keep the .safetensors/.onnx files in DIR")
    # internal: the PyTorch child
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--ngf", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--blocks", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--height", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--width", type=int, help=argparse.SUPPRESS)
    opts = ap.parse_args()

    if opts.torch_worker:
        return torch_worker(opts)

    if min(opts.frames, opts.threads, opts.rounds) < 1 or opts.warmup < 0:
        raise SystemExit("peers.py: --frames, --threads, --rounds must be >= 1, --warmup >= 0")
    configs = [parse_config(c.strip()) for c in opts.configs.split(",") if c.strip()]
    coretypes = [c.strip() for c in opts.coretypes.split(",") if c.strip()]
    if not os.access(opts.bench, os.X_OK):
        raise SystemExit("peers.py: %s not found; build it with `ninja -C build`" % opts.bench)
    try:
        import torch  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        raise SystemExit("peers.py: no torch in %s; run it with Debian's /usr/bin/python3"
                         % sys.executable)

    ort_version, ort_reason = ort_setup(opts)
    log("ONNX Runtime: %s" % (("onnxruntime-node " + ort_version) if ort_version
                              else "unavailable, " + ort_reason))

    variants = [None] + coretypes          # None: our side in the inherited environment
    load_before = os.getloadavg()
    workdir = opts.keep or tempfile.mkdtemp(prefix="cyclegan-peers-")
    os.makedirs(workdir, exist_ok=True)
    results = []
    torch_version = None
    try:
        # Run a private copy (libcyclegan is linked statically): others may
        # rebuild build/ while this runs, and all rounds must time one binary.
        bench_src, opts.bench = opts.bench, os.path.join(workdir, "cyclegan-bench")
        for attempt in range(10):
            try:
                shutil.copy2(bench_src, opts.bench)
                break
            except OSError as e:   # being relinked right now
                if attempt == 9:
                    raise SystemExit("peers.py: cannot copy %s: %s" % (bench_src, e))
                time.sleep(3)
        bench_time = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(bench_src)))
        for cfg in configs:
            model = os.path.join(workdir, cfg["name"] + ".safetensors")
            run([opts.bench, "--ngf", str(cfg["ngf"]), "--blocks", str(cfg["blocks"]),
                 "--seed", str(opts.seed), "--size", "8x8", "--threads", "1",
                 "--frames", "1", "--warmup", "0", "--save", model])
            onnx_path, ort_diff = None, None
            if ort_version:
                onnx_path = os.path.join(workdir, cfg["name"] + ".onnx")
                gen = export_onnx(cfg, model, onnx_path)
                if opts.check:
                    ort_diff = check_ort(opts, cfg, gen, onnx_path, workdir)
                    log("%s: max |ORT - PyTorch| = %.3g" % (cfg["name"], ort_diff))
                del gen
            rounds = {"ours": {v: [] for v in variants}, "torch": [], "ort": []}
            gmac, threads_lines = None, {}
            for r in range(opts.rounds):
                line = []
                for v in variants:
                    res = run_ours(opts, cfg, model, v)
                    rounds["ours"][v].append(res["median_ms"])
                    gmac = res["gmac"]
                    threads_lines[v] = res["threads_line"]
                    line.append("ours%s %.1f" % ("" if v is None else "[%s]" % v, res["median_ms"]))
                res = run_torch(opts, cfg, model)
                torch_version = res["version"]
                rounds["torch"].append(res["median_ms"])
                line.append("torch %.1f" % res["median_ms"])
                if onnx_path:
                    res = run_ort(opts, cfg, onnx_path)
                    rounds["ort"].append(res["median_ms"])
                    line.append("ort %.1f" % res["median_ms"])
                log("%s round %d/%d: %s ms" % (cfg["name"], r + 1, opts.rounds, ", ".join(line)))
            results.append({"config": cfg, "gmac": gmac, "rounds": rounds, "ort_diff": ort_diff,
                            "threads_lines": threads_lines,
                            "ours_ms": {v: median(rounds["ours"][v]) for v in variants},
                            "torch_ms": median(rounds["torch"]),
                            "ort_ms": median(rounds["ort"])})
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    # ---- report
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parent_ct = os.environ.get("OPENBLAS_CORETYPE")
    print("## cyclegan peers: %s, %d threads, batch 1, fp32" % (time.strftime("%Y-%m-%d %H:%M"),
                                                                opts.threads))
    print()
    print("- machine: %s, %d cores (%s), load average %.2f before / %.2f after"
          % (cpu, os.cpu_count(), platform.machine(), load_before[0], load_after[0]))
    print("- runs: %d rounds of ours → PyTorch → ORT, each run a fresh process timing %d frames "
          "after %d warm-up; a cell is the median of the round medians"
          % (opts.rounds, opts.frames, opts.warmup))
    print("- ours: %s (built %s, tree %s), `threads %s`" % (
        os.path.relpath(bench_src, ROOT), bench_time, git_describe(),
        results[0]["threads_lines"][None] if results else "?"))
    for v in coretypes:
        print("- ours, CORETYPE=%s: `threads %s`" % (v, results[0]["threads_lines"][v]
                                                     if results else "?"))
    print("- OPENBLAS_CORETYPE in this shell: %s" % (parent_ct if parent_ct is not None
                                                     else "(unset)"))
    print("- PyTorch %s, torch.set_num_threads(%d), eval, no_grad (ran with "
          "OPENBLAS_CORETYPE=%s, inherited from this shell; --coretypes applies to ours only)"
          % (torch_version or "?", opts.threads, parent_ct if parent_ct is not None else "(unset)"))
    print("- ONNX Runtime: %s" % (("onnxruntime-node %s, CPU provider, intraOpNumThreads %d, "
                                   "interOpNumThreads 1, graph optimizations all, sequential"
                                   % (ort_version, opts.threads)) if ort_version
                                  else "unavailable (%s)" % ort_reason))
    print()
    head = ["config", "GMAC", "ours ms"]
    head += ["ours ms, CORETYPE=%s" % v for v in coretypes]
    head += ["PyTorch ms", "ORT ms", "PyTorch/ours", "ORT/ours", "ours fps"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join([" --- "] + [" ---: "] * (len(head) - 1)) + "|")
    for res in results:
        ours = res["ours_ms"][None]
        row = [res["config"]["name"], fmt(res["gmac"], "%.2f"), fmt(ours)]
        row += [fmt(res["ours_ms"][v]) for v in coretypes]
        row += [fmt(res["torch_ms"]), fmt(res["ort_ms"]),
                fmt(ratio(res["torch_ms"], ours), "%.2f×"), fmt(ratio(res["ort_ms"], ours), "%.2f×"),
                fmt(ratio(1000.0, ours), "%.1f")]
        print("| " + " | ".join(row) + " |")
    print()
    print("Round medians (ms), in run order:")
    print()
    for res in results:
        parts = ["ours " + "/".join("%.1f" % x for x in res["rounds"]["ours"][None])]
        parts += ["ours[%s] " % v + "/".join("%.1f" % x for x in res["rounds"]["ours"][v])
                  for v in coretypes]
        parts.append("PyTorch " + "/".join("%.1f" % x for x in res["rounds"]["torch"]))
        if res["rounds"]["ort"]:
            parts.append("ORT " + "/".join("%.1f" % x for x in res["rounds"]["ort"]))
        print("- %s: %s" % (res["config"]["name"], "; ".join(parts)))
    diffs = ["%s %.2g" % (r["config"]["name"], r["ort_diff"]) for r in results
             if r["ort_diff"] is not None]
    if diffs:
        print()
        print("max |ORT - PyTorch| on one frame: " + ", ".join(diffs))
    if max(load_before[0], load_after[0]) > 1.0:
        print()
        print("Note: load average above 1 on a %d-core machine; other jobs distort these timings."
              % os.cpu_count())

    if opts.json:
        out = {"threads": opts.threads, "frames": opts.frames, "warmup": opts.warmup,
               "rounds": opts.rounds, "torch": torch_version, "ort": ort_version,
               "openblas_coretype": parent_ct, "load": [load_before[0], load_after[0]],
               "results": [{"config": r["config"]["name"], "gmac": r["gmac"],
                            "ours_ms": r["ours_ms"][None],
                            "ours_ms_coretype": {v: r["ours_ms"][v] for v in coretypes},
                            "torch_ms": r["torch_ms"], "ort_ms": r["ort_ms"],
                            "ort_minus_torch_max": r["ort_diff"],
                            "threads_line": r["threads_lines"][None],
                            "rounds": {"ours": r["rounds"]["ours"][None],
                                       "torch": r["rounds"]["torch"], "ort": r["rounds"]["ort"]}}
                           for r in results]}
        with open(opts.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
