"""The portfolio proved leaving one collection out: real searches with it, without it, and with
Optuna's default TPE, on a collection the portfolio never saw.

    python benchmarks/bench_portfolio_loo.py [--quick] [--seeds N] [--trials N] [--collections a,b]

For each real collection (_real_collections.py) in turn: a portfolio chosen from the offline table
without it (bench_portfolio.py's greedy choice over bench_rungs.py's other collections), then, for
each seed, three `vaetune search` runs of its shipped space, differing in one setting:

    portfolio      search.portfolio: that file (vaetune's sampler sizing, start-up trials = its points)
    no portfolio   search.portfolio: none (the same sizing, start-up trials at random)
    Optuna TPE     search.sampler: tpe (Optuna's defaults: 10 random trials first)

The space's own starting point comes first in all three. After each search, for every k up to its
trials: the model vaetune would hand out had the search stopped after its first k trials (summary
rows in trial order, ranked by the one rule of vaetune.ranking), judged by the benchmarks' one
evaluator: held-out test FID of the samples it hands out (the fitted mixture's). Each distinct
model is judged once. Rows go to results_portfolio_loo.csv as they are judged, so a stopped run
resumes; a search that finished is not run again.

The table: per held-out collection and k in 8, 16, 24, each method's best FID (mean, min..max
over seeds), and the trials each needed to come within 5 % of the best any method found there.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ROOT, nice_worker  # noqa: E402
from _evaluator import Evaluator, vaetune_decoder  # noqa: E402
from _real_collections import COLLECTIONS  # noqa: E402
from bench_portfolio import loo_portfolio  # noqa: E402
from bench_rungs import OUT as TABLE  # noqa: E402

OUT = Path(__file__).resolve().parent / "results_portfolio_loo.csv"
FIELDS = ["collection", "method", "seed", "k", "trial", "fid", "search_s"]
METHODS = {"portfolio": None, "no portfolio": ["search.portfolio=none"], "optuna tpe": ["search.sampler=tpe"]}
BUDGETS = (8, 16, 24)
WITHIN = 0.05  # "within 5 % of the best any method found"


def sizes(mode: str) -> dict:
    if mode == "quick":
        return {"trials": 8, "seeds": 1, "epochs": 6, "collections": ("pokesprite",)}
    return {"trials": 24, "seeds": 3, "epochs": 10, "collections": tuple(COLLECTIONS)}


def run_search(held: str, method: str, seed: int, s: dict, work: Path, portfolio: Path) -> tuple[Path, float]:
    """One search (or the one that finished already); its results folder and seconds."""
    import time

    name = f"{method.replace(' ', '-')}-s{seed}"
    storage = work / held / "results"
    folder = storage / name
    done = folder / "done.txt"
    if done.is_file():
        return folder, float(done.read_text())
    c = COLLECTIONS[held]
    e = s["epochs"]
    sets = [*c.sets(), f"name={name}", f"search.storage={storage}", f"data.cache_dir={work / 'cache'}",
            f"tracking.uri=sqlite:///{work / held / 'mlflow.db'}", f"search.num_samples={s['trials']}",
            f"search.seed={seed}", f"train.seed={seed}", f"train.epochs={e}", f"train.fid_every={e}",
            f"train.grid_every={e}", *(METHODS[method] or [f"search.portfolio={portfolio}"])]
    if folder.exists():  # stopped half-way: its seconds would not be one run's
        import shutil

        shutil.rmtree(folder)
    t0 = time.perf_counter()
    log = work / held / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.run([PYTHON, "-m", "vaetune.cli", "search", str(c.space),
                               *(x for item in sets for x in ("--set", item))], cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT, preexec_fn=nice_worker, timeout=4 * 3600,
                              env={**os.environ, "RAY_TMPDIR": str(work / "ray")})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} on {held} failed ({proc.returncode}); see {log}")
    done.write_text(f"{seconds:.1f}")
    return folder, seconds


def handed_out(folder: Path) -> list[tuple[int, int | None, Path | None]]:
    """(k, trial number, checkpoint) of the model vaetune hands out after its first k trials."""
    import pandas as pd

    from vaetune.ranking import has_checkpoint, ranked_trials
    from vaetune.results import SEARCH_FILE, SUMMARY_FILE, read_json

    state = read_json(folder / SEARCH_FILE)
    summary = pd.read_csv(folder / SUMMARY_FILE)
    summary["number"] = [int(Path(p).name.split("_")[3]) for p in summary["trial_path"]]
    summary = summary.sort_values("number").reset_index(drop=True)
    out = []
    for k in range(1, len(summary) + 1):
        ranked = ranked_trials(summary.iloc[:k], state["metric"], state["mode"])
        best = ranked.iloc[0] if len(ranked) and has_checkpoint(ranked.iloc[0]) else None
        out.append((k, None if best is None else int(best["number"]),
                    None if best is None else Path(best["checkpoint"])))
    return out


def done_rows(path: Path) -> set[tuple]:
    if not path.is_file():
        return set()
    return {(r["collection"], r["method"], r["seed"]) for r in csv.DictReader(path.open())}


def run(s: dict, work: Path, out: Path, table: Path) -> list[dict]:
    from vaetune.data import load_data
    from vaetune.spec import load_space

    have = done_rows(out)
    new = not out.is_file()
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for held in s["collections"]:
            portfolio = loo_portfolio(held, work, table)
            evaluate = reference = None
            for seed in range(s["seeds"]):
                for method in METHODS:
                    if (held, method, str(seed)) in have:
                        continue
                    folder, seconds = run_search(held, method, seed, s, work, portfolio)
                    if evaluate is None:  # N samples against the N images of the whole test split
                        config = load_space(COLLECTIONS[held].space, COLLECTIONS[held].sets()
                                            + [f"data.cache_dir={work / 'cache'}"]).default_config()
                        test = load_data(config.data).subset("test")[0]
                        evaluate = Evaluator(len(test))
                        reference = evaluate.features(test)
                    judged: dict[Path, float] = {}
                    for k, trial, checkpoint in handed_out(folder):
                        if checkpoint is not None and checkpoint not in judged:
                            judged[checkpoint] = evaluate(vaetune_decoder(checkpoint), reference, handed=True)
                        writer.writerow({"collection": held, "method": method, "seed": seed, "k": k, "trial": trial,
                                         "fid": judged.get(checkpoint, math.inf), "search_s": f"{seconds:.1f}"})
                    f.flush()
                    print(f"[portfolio-loo] {held} {method} seed {seed}: {len(judged)} models judged, "
                          f"{seconds:.0f} s", flush=True)
    return list(csv.DictReader(out.open()))


def table_rows(rows: list[dict], budgets: tuple[int, ...] = BUDGETS) -> list[dict]:
    """Per (collection, k, method): the best FID held after k trials over seeds, the seeds in which
    the portfolio's beat both others, and the trials needed to come within 5 % of the best any
    method found on the collection (per seed; None: never)."""
    by: dict[tuple, dict[int, float]] = {}
    for r in rows:
        by.setdefault((r["collection"], r["method"], int(r["seed"])), {})[int(r["k"])] = float(r["fid"])
    out = []
    for collection in sorted({c for c, _, _ in by}):
        runs = {(m, s): v for (c, m, s), v in by.items() if c == collection}
        best = min(min(v.values()) for v in runs.values())
        seeds = sorted({s for _, s in runs})
        for k in budgets:
            if not all(k in v for v in runs.values()):
                continue
            for method in METHODS:
                values = [runs[(method, s)][k] for s in seeds if (method, s) in runs]
                if not values:
                    continue
                needed = [next((j for j in sorted(runs[(method, s)]) if runs[(method, s)][j] <= (1 + WITHIN) * best),
                               None) for s in seeds if (method, s) in runs]
                wins = sum(all(runs[("portfolio", s)][k] < runs[(m, s)][k] for m in METHODS if m != "portfolio"
                               and (m, s) in runs) for s in seeds if ("portfolio", s) in runs)
                out.append({"collection": collection, "k": k, "method": method, "mean": statistics.mean(values),
                            "min": min(values), "max": max(values), "seeds": len(values), "needed": needed,
                            "portfolio_wins": wins, "best_any": best})
    return out


def markdown(table: list[dict]) -> str:
    lines = ["| held-out collection | k trials | method | best held-out FID, mean (min..max) | seeds | "
             "trials to within 5 % of the best any method found (per seed) | seeds the portfolio beat both |",
             "|---|---|---|---|---|---|---|"]
    for t in table:
        needed = ", ".join("never" if n is None else str(n) for n in t["needed"])
        lines.append(f"| {t['collection']} | {t['k']} | {t['method']} | {t['mean']:.1f} ({t['min']:.1f}..{t['max']:.1f}) "
                     f"| {t['seeds']} | {needed} | {t['portfolio_wins'] if t['method'] == 'portfolio' else ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--collections", default=None, help="comma-separated; default every real collection")
    p.add_argument("--table", default=str(TABLE), help="the offline table (bench_rungs.py's)")
    p.add_argument("--work", default=str(Path.home() / ".cache" / "vaetune" / "bench-portfolio-loo"))
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    s = sizes("quick" if args.quick else "full")
    for key in ("seeds", "trials"):
        if getattr(args, key):
            s[key] = getattr(args, key)
    if args.collections:
        s["collections"] = tuple(args.collections.split(","))
    rows = run(s, Path(args.work), Path(args.out), Path(args.table))
    print(markdown(table_rows(rows, tuple(k for k in BUDGETS if k <= s["trials"]) or (s["trials"],))))


if __name__ == "__main__":
    main()
