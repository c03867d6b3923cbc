"""How many small VAE trials should share one GPU? Throughput of 1, 2, 4, 8 trials per GPU.

    python benchmarks/bench_gpu_sharing.py                     # on a machine with one GPU
    python benchmarks/bench_gpu_sharing.py --shares 1,2,4 --epochs 6 --image-size 64
    python benchmarks/bench_gpu_sharing.py --smoke             # CPU: proves the code runs; numbers meaningless
    python benchmarks/bench_gpu_sharing.py --cpu --shares 1,2,1,2   # CPU machine: 1 trial x 2 threads vs 2 x 1

`--cpu` asks the same question of a CPU-only machine's cores: k trials at once, each with
`train.num_threads` = `resources.cpu` = cores / k, on the sprites quick-start's model and sizes
(conv width 32, 32 px, batch 32): is one trial using every core faster in aggregate than one
trial per core? (The sprites space ships `num_threads: 1`, `max_concurrent: 2` for 2 cores.)
A k given more than once is measured again (alternate them: `1,2,1,2`); rows are per run.

For each k it runs a real `vaetune search` of k identical trials (only `train.seed` differs)
with `resources.gpu = 1/k`, so Ray packs all k onto the one GPU at once, exactly as a search
with fractional `resources.gpu` does on a cluster node. Every trial is the same job: the conv VAE
of the ygo/apples searches (width 32, latent 128) on built-in sprites, batch 128, FIFO, no FID.

Per k it reports, from the trials' own per-epoch metrics (first epoch dropped: CUDA warm-up):
  - per-trial training images/s (median over trials of each trial's median epoch);
  - aggregate images/s: the images of all k trials (epochs incl. validation) within the window
    in which all k were training at once (what the shared GPU delivered), and its ratio to k = 1;
  - peak GPU memory per trial (`sys/gpu_peak_mem_mb`, torch's allocated peak, and the reserved
    peak); the CUDA context (~0.5 GB per process) comes on top of both;
  - wall time of the whole search (Ray start-up included).
Sharing pays while the aggregate keeps rising; choose the k where it flattens and peak reserved
memory x k (plus contexts) still fits the GPU. Results: a table on stdout and --out CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["k", "gpu_per_trial", "cpu_per_trial", "trials_ok", "per_trial_img_s", "aggregate_img_s",
          "speedup_vs_1", "peak_alloc_mb", "peak_reserved_mb", "wall_s", "device"]


def space(k: int, args: argparse.Namespace, cpus: int) -> dict:
    if args.cpu:  # the sprites quick-start's model; every trial gets cores / k threads
        threads = max(1, cpus // k)
        name, latent, lr, device, cpu, gpu = "cpushare", 16, 0.002, "cpu", threads, 0
    else:  # the ygo/apples searches' model; one thread, the GPU shared k ways
        threads, name, latent, lr, cpu = 1, "gpushare", 128, 0.001, max(1, (cpus - 1) // k)
        device, gpu = ("cpu", 0) if args.smoke else ("cuda", round(1 / k, 4))
    return {
        "name": f"{name}-k{k}-{args.run}",
        "data": {"source": "builtin:sprites", "image_size": args.image_size, "count": args.count},
        "model": {"arch": "conv", "width": 32, "latent_dim": latent},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": lr, "recon_loss": "bce",
                  "seed": {"randint": [0, 1_000_000]}, "grid_every": 1000, "checkpoint_every": 1000,
                  "num_threads": threads, "device": device},
        "search": {"num_samples": k, "max_concurrent": k, "scheduler": "fifo", "sampler": "random",
                   "max_failures": 0},
        "resources": {"cpu": cpu, "gpu": gpu},
    }


def run_one(k: int, args: argparse.Namespace, workdir: Path, cpus: int) -> dict:
    import yaml

    spec = space(k, args, cpus)
    path = workdir / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {key: v for key, v in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vaetune.cli", "search", str(path)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"k={k}: vaetune search failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return summarise(k, spec, workdir / "results" / spec["name"], wall, "cpu" if args.smoke or args.cpu else "cuda")


def _epochs(trial_dir: Path) -> list[dict]:
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def summarise(k: int, spec: dict, results: Path, wall: float, device: str) -> dict:
    import pandas as pd

    summary = pd.read_csv(results / "summary.csv")
    n_train = int(spec["data"]["count"] * 0.8)  # the default split
    trials = [_epochs(Path(p)) for p in summary["trial_path"]]
    trials = [t[1:] or t for t in trials]  # epoch 1 warms CUDA up (and allocates)
    per_trial = [statistics.median(e["time/train_images_per_s"] for e in t) for t in trials]
    intervals = [[(e["timestamp"] - e["time/epoch_s"], e["timestamp"]) for e in t] for t in trials]
    # the window in which all k trials were training at once: what the shared GPU delivered
    lo, hi = max(iv[0][0] for iv in intervals), min(iv[-1][1] for iv in intervals)
    done = sum(n_train * max(0.0, min(b, hi) - max(a, lo)) / (b - a) for iv in intervals for a, b in iv if b > a)
    alloc = max(e.get("sys/gpu_peak_mem_mb", 0.0) for t in trials for e in t)
    reserved = max(e.get("sys/gpu_peak_reserved_mb", 0.0) for t in trials for e in t)
    return {
        "k": k, "gpu_per_trial": spec["resources"]["gpu"], "cpu_per_trial": spec["resources"]["cpu"],
        "trials_ok": int((summary["status"] == "completed").sum()),
        "per_trial_img_s": round(statistics.median(per_trial), 1),
        "aggregate_img_s": round(done / (hi - lo), 1) if hi > lo else float("nan"),  # nan: never all at once
        "speedup_vs_1": None, "peak_alloc_mb": round(alloc, 1), "peak_reserved_mb": round(reserved, 1),
        "wall_s": round(wall, 1), "device": device,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shares", default="1,2,4,8", help="trials per GPU to measure, comma-separated")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--count", type=int, default=20000, help="built-in sprites (80%% train)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per search")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny: a code check, numbers meaningless")
    parser.add_argument("--cpu", action="store_true", help="split a CPU machine's cores among k trials instead")
    parser.add_argument("--out", default=None,
                        help="CSV (default benchmarks/results_gpu_sharing.csv, with --cpu results_cpu_sharing.csv)")
    args = parser.parse_args(argv)
    args.out = args.out or str(ROOT / "benchmarks" / f"results_{'cpu' if args.cpu else 'gpu'}_sharing.csv")
    shares = [int(s) for s in args.shares.split(",")]
    if args.cpu:  # the CPU demo's sizes, where the GPU-sized defaults were not changed on the command line
        for key, cpu_value in {"image_size": 32, "count": 6000, "batch_size": 32, "epochs": 4}.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, cpu_value)
    elif args.smoke:
        args.image_size, args.count, args.epochs, args.batch_size = 16, 256, 3, 64
        shares = [s for s in shares if s <= 2] or [1]
    else:
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device: run on a GPU machine, or --smoke for a CPU code check", file=sys.stderr)
            return 2
        print(f"GPU: {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
    cpus = os.cpu_count() or 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-sharing-") as tmp:
        for run, k in enumerate(shares):
            args.run = run
            row = run_one(k, args, Path(tmp), cpus)
            rows.append(row)
            print(f"k={k}: {row}", flush=True)
    ones = [r["aggregate_img_s"] for r in rows if r["k"] == 1]
    base = statistics.median(ones) if ones else None  # k given twice: both runs, against k = 1's median
    for r in rows:
        r["speedup_vs_1"] = round(r["aggregate_img_s"] / base, 2) if base else None
    print("\n" + " | ".join(FIELDS))
    for r in rows:
        print(" | ".join(str(r[f]) for f in FIELDS))
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"\n{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
