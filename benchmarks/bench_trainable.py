"""Trainable overhead: epochs/s of a bare PyTorch loop against the same training inside vaetune.

    python benchmarks/bench_trainable.py [--quick|--smoke] [--reps N]

Variants, each a fresh process at Ray's worker niceness, one of each per repetition (rotating):
- train: `vaetune.train.train` as `vaetune train` runs it: beta and lr schedules, validation
  (recon, KL, ELBO, MSE, PSNR, SSIM, active units) every epoch, grids and checkpoints at the
  space's grid_every / checkpoint_every, a report callback;
- train_every1: train with grid_every = checkpoint_every = 1 (the library defaults);
- tune: a real `vaetune search` of one trial (Ray Tune, Optuna, FIFO, the MLflow callback on
  sqlite, checkpoints with grids shipped to the trial's storage). Two figures come from it:
  the time between two reports (`time_this_iter_s`) against a bare-loop process run just
  before it, and, inside the same trial, the epoch as train() times it (`time/epoch_s`, up to
  the validation metrics) against the time between two reports: the share of an epoch that
  grids, checkpoints, `tune.report`, checkpoint persistence and the driver's round trip
  (Optuna, ASHA/FIFO, the MLflow callback) take.

The baseline, the bare loop, is written minimal below: the same model (build_model), the same
uint8 batches indexed from one tensor, AdamW, BCE + beta * KL, gradient clipping as configured;
no validation, reporting, checkpoints or grids. "bare loop + val ELBO" adds the least a search
needs every epoch to rank a trial: the validation ELBO (one forward pass over the validation
split, as any training script that selects models computes). It is the like-for-like baseline;
the bare loop without it shows what the validation pass itself costs (about val / (3 x train)
of an epoch: a forward pass over the validation split against forward + backward over the
training split). The train variants run a bare epoch inside each of their report callbacks, so
vaetune and bare epochs alternate in one process (the finest interleaving there is); the ratio
uses both wall-clock and thread CPU time (the latter barely moved by other processes on a busy
machine).

An epoch's time is the mean over epochs 2 .. E-1: the first pays for warm-up, the last always
writes grids and a checkpoint. The space's model, batch size, grid_every and checkpoint_every
are used as shipped; FID is turned off (train.fid_every=0), its cost is the fid section's.
Ratio = epochs/s of the variant / epochs/s of the baseline; goal >= 0.95.
"""

from __future__ import annotations

import argparse
import json
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
        "smoke": {"count": 600, "image_size": 16, "epochs": 3, "reps": 2, "variants": ["train"]},
        "quick": {"count": 3000, "image_size": 32, "epochs": 4, "reps": 2,
                  "variants": ["train", "train_every1", "tune"]},
        "full": {"count": 6000, "image_size": 32, "epochs": 4, "reps": 3,
                 "variants": ["train", "train_every1", "tune"]},
    }[mode]


def overrides(s: dict, cache_dir: str) -> list[str]:
    # FID off: it is a measurement (its cost is the fid section's), not overhead of the loop
    return [f"data.count={s['count']}", f"data.image_size={s['image_size']}", f"train.epochs={s['epochs']}",
            f"data.cache_dir={cache_dir}", "train.fid_every=0", "search.metric=val/elbo"]


# ---------------------------------------------------------------------------------------------
# Workers (run in their own process)


def _config(sets: list[str]):
    from vaetune.spec import load_space

    return load_space(str(SPACE), sets).default_config()


class BareLoop:
    """The minimal training loop, one epoch per call, on its own model and optimizer."""

    def __init__(self, config, data):
        import torch

        from vaetune.models import build_model

        tc = self.tc = config.train
        torch.set_num_threads(tc.num_threads or torch.get_num_threads())
        torch.manual_seed(tc.seed)
        self.images, _ = data.subset("train")  # uint8 (N, C, H, W)
        self.model = build_model(config.model, tuple(data.images.shape[1:]))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=tc.lr)
        self.gen = torch.Generator().manual_seed(tc.seed)
        self.val, _ = data.subset("val")

    def validate(self) -> tuple[float, float]:
        """The least a search needs: the validation ELBO (BCE summed over pixels + KL), in
        batches of 512 as vaetune's validation; returns its (wall, thread CPU) seconds."""
        import torch
        import torch.nn.functional as F

        wall, cpu = time.perf_counter(), time.thread_time()
        self.model.eval()
        total = torch.zeros(())
        with torch.inference_mode():
            for i in range(0, len(self.val), 512):
                x = self.val[i:i + 512].float().div_(255)
                out = self.model(x)
                total += F.binary_cross_entropy_with_logits(out.logits, x, reduction="sum")
                total += 0.5 * (out.mu.pow(2) + out.logvar.exp() - 1 - out.logvar).sum()
        float(total / len(self.val))
        return time.perf_counter() - wall, time.thread_time() - cpu

    def epoch(self) -> tuple[float, float]:
        """Train one epoch; returns its (wall, thread CPU) seconds."""
        import torch
        import torch.nn.functional as F

        wall, cpu = time.perf_counter(), time.thread_time()
        tc, images = self.tc, self.images
        self.model.train()
        order = torch.randperm(len(images), generator=self.gen)
        for i in range(0, len(images), tc.batch_size):
            x = images[order[i:i + tc.batch_size]].float().div_(255)
            out = self.model(x)
            recon = F.binary_cross_entropy_with_logits(out.logits, x, reduction="sum") / len(x)
            kl = 0.5 * (out.mu.pow(2) + out.logvar.exp() - 1 - out.logvar).sum(1).mean()
            loss = recon + tc.beta * kl
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
            self.opt.step()
        return time.perf_counter() - wall, time.thread_time() - cpu


def bare_loop(sets: list[str]) -> list[list[float]]:
    """Epochs of the bare loop alone, each followed by its validation ELBO:
    [(wall, cpu, val wall, val cpu)] per epoch (paired with a Tune run)."""
    from vaetune.data import load_data

    config = _config(sets)
    loop = BareLoop(config, load_data(config.data))
    return [[*loop.epoch(), *loop.validate()] for _ in range(config.train.epochs)]


def paired(sets: list[str]) -> list[list[float]]:
    """`vaetune.train.train` with one bare-loop epoch (and its minimal validation) run inside each
    report callback, so the two alternate epoch by epoch in one process: [(train wall, train cpu,
    bare wall, bare cpu, bare val wall, bare val cpu)] per epoch, the train times running from
    the end of the previous callback to this one."""
    from vaetune.data import load_data
    from vaetune.train import EachEpoch, standard_callbacks, train

    config = _config(sets)
    data = load_data(config.data)
    loop = BareLoop(config, data)
    pairs: list[list[float]] = []
    mark = [time.perf_counter(), time.thread_time()]

    def report(end) -> None:
        wall, cpu = time.perf_counter() - mark[0], time.thread_time() - mark[1]
        pairs.append([wall, cpu, *loop.epoch(), *loop.validate()])
        mark[:] = [time.perf_counter(), time.thread_time()]

    with tempfile.TemporaryDirectory() as out:
        mark[:] = [time.perf_counter(), time.thread_time()]
        train(config, [*standard_callbacks(config, out), EachEpoch(report)], data=data)
    return pairs


WORKERS = {"bare": bare_loop, "paired": paired}


# ---------------------------------------------------------------------------------------------
# The driver side


def steady(per_epoch: list) -> list:
    """Epochs 2 .. E-1 (2 .. E when E < 4): the first pays for warm-up, the last always writes
    grids and a checkpoint."""
    rest = per_epoch[1:]
    return rest[:-1] if len(rest) >= 3 else rest


def _worker(variant: str, sets: list[str], in_process: bool) -> list[list[float]]:
    if in_process:  # --smoke: proves the code runs; a process per variant costs more than it measures
        return WORKERS[variant](sets)
    out = run_worker([str(Path(__file__).resolve()), "--worker", variant, "--sets", json.dumps(sets)])
    return json.loads(out.strip().splitlines()[-1])


def _paired(variant: str, sets: list[str], in_process: bool) -> dict[str, float]:
    """epochs/s of train and of the bare loop, wall and CPU, over the steady epochs of one run."""
    epochs = steady(_worker(variant, sets, in_process))
    n = len(epochs)
    tw, tc, bw, bc, vw, vc = (sum(e[i] for e in epochs) for i in range(6))
    return {"train_wall": n / tw, "train_cpu": n / tc, "bare_wall": n / bw, "bare_cpu": n / bc,
            "bareval_wall": n / (bw + vw), "bareval_cpu": n / (bc + vc)}


def _tune_pair(sets: list[str], tmp: Path, run: int) -> dict[str, float]:
    """A bare-loop process, then a 1-trial search: epochs/s of each over their steady epochs, and
    inside the trial the epoch as train() times it against the time between two reports."""
    bare = steady(_worker("bare", sets, False))
    tune = steady(_tune_epochs(sets, tmp, run))
    between = sum(t for t, _ in tune)
    return {"tune_wall": len(tune) / between, "bare_wall": len(bare) / sum(w for w, _, _, _ in bare),
            "bareval_wall": len(bare) / sum(w + vw for w, _, vw, _ in bare),
            "epoch_s": sum(e for _, e in tune), "between_s": between}


def _tune_epochs(sets: list[str], tmp: Path, run: int) -> list[tuple[float, float]]:
    """One `vaetune search` of one trial (FIFO, the space's first point): per epoch, the seconds
    between two reports (time_this_iter_s) and the epoch as train() timed it (time/epoch_s)."""
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
    return [(r["time_this_iter_s"], r["time/epoch_s"]) for r in sorted(rows, key=lambda r: r["epoch"])]


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
            "train": lambda: _paired("paired", sets, inproc),
            "train_every1": lambda: _paired("paired", every1, inproc),
            "tune": lambda: _tune_pair(sets, tmp, next(counter)),
        }
        got = interleave({k: variants[k] for k in s["variants"]}, reps)
    config = _config(sets)
    shape = (f"sprites {s['count']} images {s['image_size']}px, conv width {config.model.width}, no FID, "
             f"batch {config.train.batch_size}, {config.train.num_threads} thread, {s['epochs']} epochs, "
             f"epochs 2..{s['epochs'] - 1 if s['epochs'] >= 4 else s['epochs']}")
    what = {
        "train": f"vaetune.train.train (grids/checkpoints every {config.train.grid_every}/"
                 f"{config.train.checkpoint_every} epochs, as the sprites space)",
        "train_every1": "vaetune.train.train, grids and checkpoints every epoch (the library defaults)",
    }
    rows = []
    for name in s["variants"]:
        runs = got[name]
        if name == "tune":
            tune_note = (f"vaetune search (Ray Tune + Optuna + MLflow on sqlite), time_this_iter_s; bare loop in "
                         f"its own process just before; {shape}")
            for base, label in (("bareval", "bare loop + val ELBO"), ("bare", "bare loop")):
                rows.append(ratio_row(SECTION, f"epochs/s, 1-trial Tune search / {label}", "tune",
                                      [r["tune_wall"] for r in runs], base, [r[f"{base}_wall"] for r in runs],
                                      unit="epochs/s", goal=">= 0.95" if base == "bareval" else "",
                                      note=tune_note))
            rows.append(ratio_row(SECTION, "seconds, epoch in train() / between two Tune reports", "epoch",
                                  [r["epoch_s"] for r in runs], "between reports", [r["between_s"] for r in runs],
                                  unit="s", goal=">= 0.95",
                                  note="one trial's own clocks, same epochs: what grids, checkpoints, tune.report, "
                                       f"checkpoint persistence and the driver's round trip add; {shape}"))
            continue
        for base, label in (("bareval", "bare loop + val ELBO"), ("bare", "bare loop")):
            for clock in ("wall", "cpu"):
                rows.append(ratio_row(
                    SECTION, f"epochs/s ({clock}), {name} / {label}", name, [r[f"train_{clock}"] for r in runs],
                    base, [r[f"{base}_{clock}"] for r in runs], unit="epochs/s",
                    goal=">= 0.95" if base == "bareval" else "",
                    note=f"{what[name]}; alternating epochs with the {label} in one process; {shape}"))
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
        print(f"{row['figure']:<50} {row['ratio']:.3f} ({row['ratio_min']:.3f}..{row['ratio_max']:.3f})  {row['note']}")


if __name__ == "__main__":
    main()
