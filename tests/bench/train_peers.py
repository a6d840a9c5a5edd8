#!/usr/bin/python3
"""Training speed side by side: cyclegan-train against the official
pytorch-CycleGAN-and-pix2pix train.py, same data, same options, same number
of threads, alternating in one run.

The official code is not part of this repository: pass a checkout of
junyanz/pytorch-CycleGAN-and-pix2pix (or a fork carrying its history) with
--official. It runs on Debian's python3-torch, python3-torchvision and
python3-dominate, with --gpu_ids -1.

Per iteration, both sides are timed from picking the images to the end of
the optimizer steps: ours from loss_log.csv's `seconds` column, the official
from its `time` + `data` (printed every iteration with --print_freq 1). The
first WARMUP iterations of each run are dropped; a run's figure is the
median of the rest, a peer's figure the median over rounds.
"""
import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

CONFIGS = {
    # name: (ngf, ndf, n_blocks, load_size, crop_size)
    "small": (16, 16, 6, 143, 128),
    "default": (64, 64, 9, 286, 256),
}


def run_ours(args, cfg, ckdir):
    ngf, ndf, blocks, load, crop = cfg
    cmd = [args.train, "--dataroot", args.dataroot, "--name", "peer",
           "--checkpoints-dir", ckdir, "--ngf", str(ngf), "--ndf", str(ndf),
           "--n-blocks", str(blocks), "--load-size", str(load),
           "--crop-size", str(crop), "--threads", str(args.threads),
           "--max-iterations", str(args.iterations), "--seed", "1"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(os.path.join(ckdir, "peer", "loss_log.csv")) as f:
        secs = [float(r["seconds"]) for r in csv.DictReader(f)]
    return secs[args.warmup:]


def run_official(args, cfg, ckdir):
    ngf, ndf, blocks, load, crop = cfg
    cmd = ["/usr/bin/python3", "train.py", "--dataroot", args.dataroot,
           "--name", "peer", "--checkpoints_dir", ckdir,
           "--model", "cycle_gan", "--gpu_ids", "-1",
           "--ngf", str(ngf), "--ndf", str(ndf),
           "--netG", "resnet_%dblocks" % blocks,
           "--load_size", str(load), "--crop_size", str(crop),
           "--display_id", "0", "--no_html", "--print_freq", "1",
           "--num_threads", "0", "--max_dataset_size", str(args.iterations),
           "--n_epochs", "1", "--n_epochs_decay", "0"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, check=True, cwd=args.official, env=env,
                         capture_output=True, text=True).stdout
    secs = [float(t) + float(d) for t, d in
            re.findall(r"time: ([0-9.]+), data: ([0-9.]+)\)", out)]
    if not secs:
        sys.exit("no timings in the official code's output:\n" + out[-2000:])
    return secs[args.warmup:]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official", required=True,
                   help="checkout of pytorch-CycleGAN-and-pix2pix")
    p.add_argument("--dataroot", required=True)
    p.add_argument("--configs", default="small,default",
                   help="comma-separated: " + ", ".join(CONFIGS))
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train", default="build/src/tools/cyclegan-train")
    args = p.parse_args()
    args.train = os.path.abspath(args.train)
    args.dataroot = os.path.abspath(args.dataroot)
    if args.iterations <= args.warmup:
        sys.exit("--iterations must exceed --warmup")

    print("- OPENBLAS_CORETYPE: %s; threads %d; %d iterations per run, "
          "first %d dropped; %d rounds" % (
              os.environ.get("OPENBLAS_CORETYPE", "unset"), args.threads,
              args.iterations, args.warmup, args.rounds))
    rows = []
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        ours, theirs = [], []
        for _ in range(args.rounds):
            for who, fn, acc in (("ours", run_ours, ours),
                                 ("official", run_official, theirs)):
                ck = tempfile.mkdtemp(prefix="train-peer-")
                try:
                    acc.append(statistics.median(fn(args, cfg, ck)))
                finally:
                    shutil.rmtree(ck, ignore_errors=True)
                print("  %s %s: %.3f s/it" % (name, who, acc[-1]),
                      file=sys.stderr)
        rows.append((name, cfg, statistics.median(ours),
                     statistics.median(theirs), ours, theirs))

    print()
    print("| config | ngf/ndf/blocks/load/crop | ours s/it | official s/it "
          "| ours/official |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, cfg, o, t, _, _ in rows:
        print("| %s | %s | %.3f | %.3f | %.2f |" % (
            name, "/".join(map(str, cfg)), o, t, o / t))
    print()
    for name, _, _, _, o, t in rows:
        print("- %s rounds: ours %s; official %s" % (
            name, "/".join("%.3f" % x for x in o),
            "/".join("%.3f" % x for x in t)))


if __name__ == "__main__":
    main()
