"""Which Optuna sampler finds good configurations in few trials: the evidence behind `search.sampler: auto`.

Synthetic objectives of the quick-start space's shape (lr and β log-uniform, a warm-up uniform, the
latent size a choice of four), each a sum of smooth bowls with its optimum inside the ranges and a
categorical penalty, so that the regret (best value found minus the optimum, 0) is exact and a
run takes seconds. Each sampler runs ask/tell for N trials (no pruning: every trial completes, as
under FIFO), over many seeds, side by side; a row is the median regret of the best of N trials
with its spread (quartiles) and the ratio of medians against Optuna's default TPE.

    .venv/bin/python benchmarks/bench_sampler.py            # N = 8, 16, 24; 20 seeds (~2 min)
    .venv/bin/python benchmarks/bench_sampler.py --quick    # N = 8, 16; 6 seeds

It says nothing about pruned trials: the GP learns from completed trials only, which is why
auto gives it FIFO searches and keeps TPE (which learns from ASHA's pruned trials) under ASHA.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LATENT_PENALTY = {4: 0.5, 8: 0.1, 16: 0.0, 32: 0.3}


def _objective(trial, shift: float) -> float:
    """A bowl in (log lr, log β, warm-up) with its optimum moved by `shift`, plus the latent's penalty."""
    lr = trial.suggest_float("train.lr", 1e-4, 3e-3, log=True)
    beta = trial.suggest_float("train.beta", 1e-3, 10, log=True)
    warmup = trial.suggest_float("train.warmup_epochs", 0, 3)
    latent = trial.suggest_categorical("model.latent_dim", [4, 8, 16, 32])
    return ((math.log10(lr) - (-3.0 + 0.3 * shift)) ** 2 + 0.3 * (math.log10(beta) - shift) ** 2
            + 0.05 * (warmup - 1.5 - shift) ** 2 + LATENT_PENALTY[latent])


def _regret(make, n: int, seed: int) -> float:
    import optuna

    study = optuna.create_study(sampler=make(n, seed))
    shift = (seed % 5 - 2) / 2  # five objectives, optimum moved in every axis
    for _ in range(n):
        trial = study.ask()
        study.tell(trial, _objective(trial, shift))
    return study.best_value


def _samplers():
    import optuna

    from vaetune.search._sampler import SamplerChoice
    from vaetune.search._study import make_sampler

    def auto(name: str):
        def make(n: int, seed: int):
            startup = min(10, max(2, math.ceil(n / 3)))  # vaetune.search._sampler's rule, 2 at a time
            return make_sampler(SamplerChoice(name, startup, "sized"), seed)
        return make

    return {
        "TPE, Optuna's defaults": lambda n, seed: optuna.samplers.TPESampler(seed=seed),
        "random": lambda n, seed: optuna.samplers.RandomSampler(seed=seed),
        "TPE sized (auto under ASHA)": auto("tpe"),
        "GP sized (auto under FIFO)": auto("gp"),
    }


def run(sizes: list[int], seeds: int) -> list[dict]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    rows = []
    for n in sizes:
        regrets = {name: [_regret(make, n, s) for s in range(seeds)] for name, make in _samplers().items()}
        base = statistics.median(regrets["TPE, Optuna's defaults"])
        for name, values in regrets.items():
            q = statistics.quantiles(values, n=4)
            rows.append({"trials": n, "sampler": name, "median": statistics.median(values), "q1": q[0],
                         "q3": q[2], "vs_default": statistics.median(values) / base})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    rows = run([8, 16] if args.quick else [8, 16, 24], 6 if args.quick else 20)
    print("| trials | sampler | regret of the best trial, median (quartiles) | / Optuna's default TPE |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['trials']} | {r['sampler']} | {r['median']:.3f} ({r['q1']:.3f}–{r['q3']:.3f}) | "
              f"{r['vs_default']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
