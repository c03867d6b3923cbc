"""Search efficiency: the best sample FID found against cumulative training epochs, for three searches.

    python benchmarks/bench_search.py [--quick] [--seeds N] [--png benchmarks/search_efficiency.png]

Real `vaetune search` runs (subprocesses, their own Ray, storage and MLflow store in a temporary
folder) of the sprites space shrunk for a CPU (data.count, data.image_size 16, a few epochs):
- grid: an exhaustive grid over the space's ranges (lr and beta at both ends and the geometric
  middle, latent 8 and 32, no warm-up; Optuna GridSampler, FIFO: every trial runs every epoch),
  the reference;
- asha+tpe: the space as shipped (Optuna TPE, ASHA stopping at rungs 1, 3, ...);
- fifo+random: the same space, random sampling, every trial to the end.
No points_to_evaluate in any of them (the shipped space starts from a known good point).

Every epoch report of every trial (result.json), ordered by time, adds one epoch to the budget;
the curve is the best (lowest) eval/fid_sample reported so far: the FID of the trial's samples
against the validation split, computed as a search computes it, at ASHA's rungs and at a trial's
last epoch (train.fid_every = the epochs), on `fid_samples` images (CPU-sized: biased upwards
against FID on 10k, but the same N for every trial, so trials rank alike). FID evaluations are
not counted in the budget: it is training epochs, as in the issue's "fixed compute budget".
Figures: epochs each search needs to come within 5 % of the grid's best (ratio to the grid's
own), and the best value each has at the grid's total budget (ratio to the grid's best).
`--metric val/elbo` runs the same comparison on the validation ELBO (every epoch, no FID).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ROOT  # noqa: E402

SECTION = "search"
SPACE = ROOT / "search_spaces" / "sprites.yaml"
METRIC = "eval/fid_sample"
WITHIN = 0.05
UNITS = {"eval/fid_sample": "FID", "val/elbo": "nats/image"}


def sizes(mode: str) -> dict:
    """The grid spans the shipped space's ranges (log-spaced ends and middle of lr and beta); the
    other two search the shipped space itself. Quick: TPE barely leaves its 10 random start-up
    trials, so it shows little more than ASHA's early stopping."""
    lr, beta = [0.0001, 0.00055, 0.003], [0.001, 0.1, 10.0]
    if mode == "quick":
        grid = {"model.latent_dim": [16], "train.lr": lr, "train.beta": beta, "train.warmup_epochs": [0]}
        return {"count": 2000, "epochs": 4, "seeds": 1, "grid": grid, "random": 9, "asha": 16, "fid_samples": 32}
    grid = {"model.latent_dim": [8, 32], "train.lr": lr, "train.beta": beta, "train.warmup_epochs": [0]}
    return {"count": 4000, "epochs": 6, "seeds": 1, "grid": grid, "random": 18, "asha": 40, "fid_samples": 64}


def common_sets(s: dict, tmp: Path, name: str, seed: int, metric: str = METRIC) -> list[str]:
    # FID at the last epoch and at ASHA's rungs only (as a search computes it): ~6 images/s here
    fid = [f"train.fid_every={s['epochs']}", f"train.fid_samples={s['fid_samples']}"] \
        if metric.startswith("eval/") else ["train.fid_every=0"]
    return [f"name={name}", f"data.count={s['count']}", "data.image_size=16", f"train.epochs={s['epochs']}",
            f"data.cache_dir={tmp / 'cache'}", f"search.storage={tmp / 'results'}", f"search.seed={seed}",
            f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}", "search.points_to_evaluate=[]",
            f"search.metric={metric}", "search.mode=min", *fid]


def method_sets(method: str, s: dict) -> list[str]:
    if method == "grid":
        n = math.prod(len(v) for v in s["grid"].values())
        return ["search.sampler=grid", "search.scheduler=fifo", f"search.num_samples={n}"] + [
            f"{k}={json.dumps({'grid': v})}" for k, v in s["grid"].items()]
    if method == "asha+tpe":
        return ["search.sampler=tpe", "search.scheduler=asha", f"search.num_samples={s['asha']}"]
    return ["search.sampler=random", "search.scheduler=fifo", f"search.num_samples={s['random']}"]


def run_search(method: str, s: dict, tmp: Path, seed: int,
               metric: str = METRIC) -> tuple[list[tuple[float, int, float]], float]:
    """One `vaetune search`; returns its epoch reports (timestamp, epoch, metric) and wall seconds."""
    name = f"{method.replace('+', '_')}_s{seed}"
    args = [PYTHON, "-m", "vaetune.cli", "search", str(SPACE)]
    for item in common_sets(s, tmp, name, seed, metric) + method_sets(method, s):
        args += ["--set", item]
    t = time.perf_counter()
    proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t
    (tmp / f"{name}.log").write_text(proc.stdout[-20000:] + proc.stderr[-20000:])
    if proc.returncode != 0:
        raise RuntimeError(f"vaetune search {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return reports(tmp / "results" / name, metric), wall


def reports(experiment: Path, metric: str = METRIC) -> list[tuple[float, int, float]]:
    """(timestamp, epoch, metric) of every epoch report of every trial, in time order; the metric
    is inf where the report has none (an epoch before the trial's first FID carries NaN)."""
    rows = []
    for result in experiment.glob("*/result.json"):
        for line in result.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                value = r.get(metric)
                value = float(value) if value is not None else math.inf
                rows.append((float(r["timestamp"]), int(r["epoch"]), value if math.isfinite(value) else math.inf))
    return sorted(rows)


def best_curve(rows: list[tuple[float, int, float]]) -> list[tuple[int, float]]:
    """(cumulative epochs, best metric so far) after each report."""
    curve, best = [], math.inf
    for i, (_, _, value) in enumerate(rows, start=1):
        best = min(best, value)
        curve.append((i, best))
    return curve


def budget_to_reach(curve: list[tuple[int, float]], target: float) -> float:
    """Cumulative epochs at which the curve first reaches target (min mode); inf if never."""
    return next((float(e) for e, v in curve if v <= target), math.inf)


def best_at(curve: list[tuple[int, float]], budget: int) -> float:
    return min((v for e, v in curve if e <= budget), default=math.inf)


def figures(curves: dict[str, list[list[tuple[int, float]]]], metric: str = METRIC) -> list[dict]:
    """Rows: epochs to within WITHIN of the grid's best, and the best at the grid's budget."""
    grid = curves["grid"][0]
    grid_best, grid_budget = grid[-1][1], grid[-1][0]
    target = grid_best * (1 + WITHIN) if grid_best > 0 else grid_best * (1 - WITHIN)
    grid_need = budget_to_reach(grid, target)
    rows = []
    for method, runs in curves.items():
        exact = [budget_to_reach(c, grid_best) / budget_to_reach(grid, grid_best) for c in runs]
        rows.append({
            "section": SECTION, "figure": f"epochs to reach the grid's best, {method} / grid", "a": method,
            "b": "grid", "a_value": statistics.median(budget_to_reach(c, grid_best) for c in runs),
            "b_value": budget_to_reach(grid, grid_best), "unit": "epochs", "ratio": statistics.median(exact),
            "ratio_min": min(exact), "ratio_max": max(exact), "reps": len(runs), "goal": "",
            "note": "inf: never as good as the grid's best within its own budget",
        })
        need = [budget_to_reach(c, target) for c in runs]
        at = [best_at(c, grid_budget) for c in runs]
        total = [c[-1][0] for c in runs]
        ratios = [n / grid_need for n in need]
        finite = [r for r in ratios if math.isfinite(r)]
        rows.append({
            "section": SECTION, "figure": f"epochs to within 5% of grid best, {method} / grid", "a": method,
            "b": "grid", "a_value": statistics.median(need), "b_value": grid_need, "unit": "epochs",
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "reps": len(runs), "goal": "< 1 (asha+tpe)",
            "note": (f"grid best {metric} {grid_best:.2f} in {grid_budget} epochs; {method} ran "
                     f"{', '.join(str(t) for t in total)} epochs"
                     + ("" if len(finite) == len(ratios) else f"; {len(ratios) - len(finite)} run(s) never within 5%")),
        })
        rows.append({
            "section": SECTION, "figure": f"best {metric} at the grid's budget, {method} / grid best", "a": method,
            "b": "grid", "a_value": statistics.median(at), "b_value": grid_best, "unit": UNITS.get(metric, ""),
            "ratio": statistics.median(at) / grid_best, "ratio_min": min(at) / grid_best,
            "ratio_max": max(at) / grid_best, "reps": len(runs), "goal": "<= 1.05",
            "note": f"budget {grid_budget} epochs (the exhaustive grid's); lower is better",
        })
    return rows


def plot(curves: dict[str, list[list[tuple[int, float]]]], png: Path, title: str, metric: str = METRIC) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"grid": "black", "asha+tpe": "tab:blue", "fifo+random": "tab:orange"}
    grid_best = curves["grid"][0][-1][1]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, runs in curves.items():
        for i, c in enumerate(runs):
            xs, ys = zip(*c, strict=True)
            ax.step(xs, ys, where="post", color=colours.get(method), alpha=1 if i == 0 else 0.5,
                    label=method if i == 0 else None)
    ax.axhline(grid_best * (1 + WITHIN), color="grey", linestyle="--", label="grid best + 5%")
    finite = [v for runs in curves.values() for c in runs for _, v in c if math.isfinite(v)]
    ax.set_ylim(min(finite) - 0.02 * grid_best, min(max(finite), grid_best * 1.6))
    ax.set_xlabel("cumulative training epochs (all trials)")
    ax.set_ylabel(f"best {metric} so far (lower is better)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def run(mode: str = "full", seeds: int | None = None, png: Path | None = None, keep: Path | None = None,
        metric: str = METRIC) -> list[dict]:
    """Run the searches (in `keep`, kept afterwards, or a temporary folder) and return the rows."""
    s = sizes(mode)
    seeds = seeds or s["seeds"]
    curves: dict[str, list] = {"grid": [], "asha+tpe": [], "fifo+random": []}
    walls: dict[str, list[float]] = {k: [] for k in curves}
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    folder = contextlib.nullcontext(str(keep)) if keep else tempfile.TemporaryDirectory(prefix="vaetune-bench-search-")
    with folder as tmp_:
        tmp = Path(tmp_)
        (tmp / "cache").mkdir(exist_ok=True)
        for seed in range(seeds):
            methods = ["grid", "asha+tpe", "fifo+random"] if seed == 0 else ["asha+tpe", "fifo+random"]
            for method in methods[seed % len(methods):] + methods[:seed % len(methods)]:
                rows, wall = run_search(method, s, tmp, seed, metric)
                curves[method].append(best_curve(rows))
                walls[method].append(wall)
    rows = figures(curves, metric)
    for method in ("asha+tpe", "fifo+random"):
        rows.append({
            "section": SECTION, "figure": f"wall-clock of the whole search, {method} / grid", "a": method, "b": "grid",
            "a_value": statistics.median(walls[method]), "b_value": walls["grid"][0], "unit": "s",
            "ratio": statistics.median(walls[method]) / walls["grid"][0],
            "ratio_min": min(walls[method]) / walls["grid"][0], "ratio_max": max(walls[method]) / walls["grid"][0],
            "reps": len(walls[method]), "goal": "",
            "note": "includes Ray start-up and per-trial process start (the searches ran one after another)",
        })
    if png is not None:
        fid = f"; FID of {s['fid_samples']} samples" if metric.startswith("eval/") else ""
        plot(curves, png, f"sprites {s['count']} images 16px, {s['epochs']} epochs/trial; grid "
                          f"{math.prod(len(v) for v in s['grid'].values())} points; {seeds} seed(s){fid}", metric)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--png", default=str(Path(__file__).resolve().parent / "search_efficiency.png"))
    p.add_argument("--keep", default=None, help="run the searches under this folder and keep them (logs, results)")
    p.add_argument("--metric", default=METRIC, choices=sorted(UNITS), help="what 'best' means (default: sample FID)")
    args = p.parse_args(argv)
    keep = Path(args.keep) if args.keep else None
    for row in run("quick" if args.quick else "full", args.seeds, Path(args.png), keep, args.metric):
        print(f"{row['figure']:<60} {row['ratio']:.3f}  {row['note']}")


if __name__ == "__main__":
    main()
