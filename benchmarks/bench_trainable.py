"""Trainable overhead: epochs/s of a bare PyTorch loop against the same training inside vaetune.

    python benchmarks/bench_trainable.py [--quick|--smoke] [--reps N]

Variants, each a fresh process at Ray's worker niceness, one of each per repetition (rotating):
- bare: the minimal loop written below: the same model (vaetune.models.build_model), the same
  uint8 batches indexed from one tensor, AdamW, BCE + beta * KL, gradient clipping as configured;
  no validation, no reporting, no checkpoints, no grids.
- train: `vaetune.train.train` as `vaetune train` runs it: beta and lr schedules, validation
  (recon, KL, ELBO, MSE, PSNR, SSIM, active units) every epoch, grids and checkpoints at the
  space's grid_every / checkpoint_every, a report callback.
- train_every1: the same with grid_every = checkpoint_every = 1 (the library defaults).
- tune: a real `vaetune search` of one trial (Ray Tune, Optuna, FIFO, the MLflow callback on
  sqlite, checkpoints shipped to the trial's storage), epoch time from the trial's result.json
  (`time_this_iter_s`: everything between two reports).

An epoch's time is the mean over epochs 2 .. E-1: the first pays for warm-up, the last always
writes grids and a checkpoint. Ratio = epochs/s of the variant / epochs/s of bare; goal >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ROOT, interleave, ratio_row, run_worker  # noqa: E402

SPACE = ROOT / "search_spaces" / "sprites.yaml"
SECTION = "trainable"


def sizes(mode: str) -> dict:
    """Data and repetition sizes per mode; full is the sprites quick-start as shipped."""
    return {
        "smoke": {"count": 600, "image_size": 16, "epochs": 3, "reps": 2, "variants": ["bare", "train"]},
        "quick": {"count": 3000, "image_size": 32, "epochs": 5, "reps": 2,
                  "variants": ["bare", "train", "train_every1", "tune"]},
        "full": {"count": 6000, "image_size": 32, "epochs": 6, "reps": 4,
                 "variants": ["bare", "train", "train_every1", "tune"]},
    }[mode]


def overrides(s: dict, cache_dir: str) -> list[str]:
    return [f"data.count={s['count']}", f"data.image_size={s['image_size']}", f"train.epochs={s['epochs']}",
            f"data.cache_dir={cache_dir}"]


# ---------------------------------------------------------------------------------------------
# Workers (run in their own process)


def _config(sets: list[str]):
    from vaetune.spec import load_space

    return load_space(str(SPACE), sets).default_config()


def bare_loop(sets: list[str]) -> list[float]:
    """The minimal training loop; returns the end time of each epoch (s since the loop began)."""
    import torch
    import torch.nn.functional as F

    from vaetune.data import load_data
    from vaetune.models import build_model

    config = _config(sets)
    tc = config.train
    torch.set_num_threads(tc.num_threads or torch.get_num_threads())
    torch.manual_seed(tc.seed)
    data = load_data(config.data)
    images, _ = data.subset("train")  # uint8 (N, C, H, W)
    model = build_model(config.model, tuple(data.images.shape[1:]))
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr)
    gen = torch.Generator().manual_seed(tc.seed)
    ends, start = [], time.perf_counter()
    for _ in range(tc.epochs):
        model.train()
        order = torch.randperm(len(images), generator=gen)
        for i in range(0, len(images), tc.batch_size):
            x = images[order[i:i + tc.batch_size]].float().div_(255)
            out = model(x)
            recon = F.binary_cross_entropy_with_logits(out.logits, x, reduction="sum") / len(x)
            kl = 0.5 * (out.mu.pow(2) + out.logvar.exp() - 1 - out.logvar).sum(1).mean()
            loss = recon + tc.beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
        ends.append(time.perf_counter() - start)
    return ends


def vaetune_train(sets: list[str]) -> list[float]:
    """`vaetune.train.train` with a report callback; returns the time of each report."""
    from vaetune.data import load_data
    from vaetune.train import train

    config = _config(sets)
    data = load_data(config.data)
    ends: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        train(config, lambda m, c, a: ends.append(time.perf_counter() - start), out, data=data)
    return ends


WORKERS = {"bare": bare_loop, "train": vaetune_train}


# ---------------------------------------------------------------------------------------------
# The driver side


def epoch_seconds(ends: list[float]) -> float:
    """Mean epoch time over epochs 2 .. E-1 (or 2 .. E when E < 4) from epoch end times."""
    durations = [b - a for a, b in zip(ends[:-1], ends[1:], strict=True)]  # epochs 2 .. E
    steady = durations[:-1] if len(durations) >= 3 else durations
    return statistics.fmean(steady)


def _local(variant: str, sets: list[str], in_process: bool = False) -> float:
    if in_process:  # --smoke: proves the code runs; a process per variant costs more than it measures
        return epoch_seconds(WORKERS[variant](sets))
    out = run_worker([str(Path(__file__).resolve()), "--worker", variant, "--sets", json.dumps(sets)])
    return epoch_seconds(json.loads(out.strip().splitlines()[-1]))


def _tune(sets: list[str], tmp: Path, run: int) -> float:
    """One `vaetune search` of one trial (FIFO, the space's first point); mean epoch seconds."""
    import subprocess

    name = f"overhead{run}"
    args = [PYTHON, "-m", "vaetune.cli", "search", str(SPACE)]
    for s in sets + [f"name={name}", "search.num_samples=1", "search.scheduler=fifo",
                     f"search.storage={tmp / 'results'}", f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}"]:
        args += ["--set", s]
    proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"vaetune search failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    (result,) = (tmp / "results" / name).glob("*/result.json")
    rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: r["epoch"])
    durations = [r["time_this_iter_s"] for r in rows[1:]]  # epochs 2 .. E
    steady = durations[:-1] if len(durations) >= 3 else durations
    return statistics.fmean(steady)


def run(mode: str = "quick", reps: int | None = None) -> list[dict]:
    from vaetune.data import load_data

    s = sizes(mode)
    reps = reps or s["reps"]
    with tempfile.TemporaryDirectory(prefix="vaetune-bench-") as tmp_:
        tmp = Path(tmp_)
        sets = overrides(s, str(tmp / "cache"))
        load_data(_config(sets).data)  # fill the cache once: every variant starts from a cache hit
        every1 = sets + ["train.grid_every=1", "train.checkpoint_every=1"]
        counter, inproc = iter(range(1000)), mode == "smoke"
        variants = {
            "bare": lambda: _local("bare", sets, inproc),
            "train": lambda: _local("train", sets, inproc),
            "train_every1": lambda: _local("train", every1, inproc),
            "tune": lambda: _tune(sets, tmp, next(counter)),
        }
        seconds = interleave({k: variants[k] for k in s["variants"]}, reps)
    config = _config(sets)
    shape = (f"sprites {s['count']} images {s['image_size']}px, conv width {config.model.width}, "
              f"batch {config.train.batch_size}, {config.train.num_threads} thread, {s['epochs']} epochs")
    bare_eps = [1 / t for t in seconds["bare"]]
    notes = {
        "train": f"vaetune.train.train, grid/checkpoint every {config.train.grid_every}; {shape}",
        "train_every1": f"vaetune.train.train, grid/checkpoint every epoch (library defaults); {shape}",
        "tune": f"1-trial vaetune search (Ray Tune + Optuna + MLflow), time_this_iter_s; {shape}",
    }
    rows = []
    for name in s["variants"][1:]:
        eps = [1 / t for t in seconds[name]]
        rows.append(ratio_row(SECTION, f"epochs/s, {name} / bare loop", name, eps, "bare", bare_eps,
                              unit="epochs/s", goal=">= 0.95", note=notes[name]))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--sets", default="[]", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--reps", type=int, default=None)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(args.sets))))
        return
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    for row in run(mode, args.reps):
        print(f"{row['figure']:<40} {row['ratio']:.3f} ({row['ratio_min']:.3f}..{row['ratio_max']:.3f})  {row['note']}")


if __name__ == "__main__":
    main()
