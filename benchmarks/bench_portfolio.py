"""The search's portfolio, chosen from the offline table, and checked leaving one collection out.

    python benchmarks/bench_portfolio.py [--rungs benchmarks/results_rungs.csv] [--k 8] [--write]

The offline table is bench_rungs.py's judge rows: the same random configurations of the shipped
spaces' ranges, each trained on every real collection to its last epoch, and judged by the
held-out test FID of the samples vaetune hands out (the fitted mixture's). Each configuration's
regret on a collection is its FID over the collection's best FID, less one (relative: FID's scale
differs from one collection to the next); a configuration that failed there counts as the
collection's worst. The portfolio is chosen greedily (Auto-sklearn 2.0's way): each step adds the
configuration that most lowers the regret summed over the collections of the best configuration
chosen so far; once that sum is 0 (each collection's best is in), the rest follow by their mean
regret. `--write` writes it as vaetune's package data (vaetune/search/portfolio.csv), which
`search.sampler: auto` starts from (vaetune.search._portfolio).

Leave one collection out, on the table: for each collection, the portfolio chosen without it, and
on it the best FID among the portfolio's first k points, against the expected best of k
configurations drawn at random from the same table (without replacement: what a search's random
start-up trials would find among them), for k = 1..4. This checks what transfers between
collections; it is not the search benchmark of real searches with and without the portfolio.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from math import comb
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT  # noqa: E402
from _real_collections import COLLECTIONS  # noqa: E402
from bench_rungs import JUDGE, KEYS, OUT, setting  # noqa: E402

PORTFOLIO = ROOT / "vaetune" / "search" / "portfolio.csv"
HANDED = "gmm"  # the sampler whose samples judge a configuration: the one vaetune hands out


def fid_table(rows: list[dict], sampler: str = HANDED) -> tuple[dict[str, dict[int, float]], dict[int, dict]]:
    """collection -> trial -> judged FID (inf: the trial failed there), and trial -> its configuration."""
    fids: dict[str, dict[int, float]] = {}
    configs: dict[int, dict] = {}
    for r in rows:
        if r["measure"] != JUDGE or r["sampler"] != sampler:
            continue
        t = int(r["trial"])
        value = float(r["value"])
        fids.setdefault(r["collection"], {})[t] = value if math.isfinite(value) else math.inf
        configs[t] = {k: r[k] for k in KEYS}
    trials = set(configs)
    for by in fids.values():  # a configuration judged elsewhere but not here failed here
        for t in trials - set(by):
            by[t] = math.inf
    return fids, configs


def regrets(fids: dict[str, dict[int, float]]) -> dict[str, dict[int, float]]:
    """Relative regret of each trial on each collection; a failed one gets the collection's worst."""
    out = {}
    for c, by in fids.items():
        finite = [v for v in by.values() if math.isfinite(v)]
        best, worst = min(finite), max(finite)
        out[c] = {t: (v if math.isfinite(v) else worst) / best - 1 for t, v in by.items()}
    return out


def greedy(regret: dict[str, dict[int, float]], k: int) -> list[tuple[int, float]]:
    """The portfolio: (trial, regret summed over collections once it is in), in the order chosen."""
    trials = sorted(set.intersection(*(set(by) for by in regret.values())))
    chosen: list[tuple[int, float]] = []

    def summed(candidate: list[int]) -> float:
        return sum(min(by[t] for t in candidate) for by in regret.values())

    def mean(t: int) -> float:
        return sum(by[t] for by in regret.values()) / len(regret)

    while len(chosen) < min(k, len(trials)):
        picked = [t for t, _ in chosen]
        rest = [t for t in trials if t not in picked]
        best = min(rest, key=lambda t: (summed(picked + [t]), mean(t), t))
        chosen.append((best, summed(picked + [best])))
    return chosen


def expected_best_of_random(values: list[float], k: int) -> float:
    """E[min of k values drawn without replacement]: the i-th smallest is the min with probability
    C(n-i-1, k-1)/C(n, k) (0-based i)."""
    v, n = sorted(values), len(values)
    return sum(v[i] * comb(n - i - 1, k - 1) for i in range(n - k + 1)) / comb(n, k)


def leave_one_out(fids: dict[str, dict[int, float]], ks: tuple[int, ...] = (1, 2, 3, 4)) -> list[dict]:
    out = []
    for held in sorted(fids):
        rest = {c: by for c, by in fids.items() if c != held}
        order = [t for t, _ in greedy(regrets(rest), max(ks))]
        here = fids[held]
        finite = [v for v in here.values() if math.isfinite(v)]
        worst = max(finite)
        values = [v if math.isfinite(v) else worst for v in here.values()]
        for k in ks:
            out.append({"collection": held, "k": k, "portfolio": min(values_of(here, order[:k], worst)),
                        "random": expected_best_of_random(values, k), "best": min(finite),
                        "points": order[:k]})
    return out


def values_of(by: dict[int, float], trials: list[int], worst: float) -> list[float]:
    return [by[t] if math.isfinite(by[t]) else worst for t in trials]


def conditions() -> dict[str, str]:
    """The values every collection's shipped space fixes for what a portfolio point is learned under."""
    from vaetune.search._portfolio import CONDITIONS
    from vaetune.spec import flatten, load_space

    found = {key: {str(flatten(load_space(c.space).default_config())[key]) for c in COLLECTIONS.values()}
             for key in CONDITIONS}
    assert all(len(v) == 1 for v in found.values()), f"the collections' spaces differ in {found}"
    return {k: v.pop() for k, v in found.items()}


def write_portfolio(path: Path, chosen: list[tuple[int, float]], configs: dict[int, dict], learned_on: str) -> None:
    from vaetune.search._portfolio import LEARNED_ON, RANK, REGRET

    fixed = conditions()
    columns = [RANK, *(KEYS[k] for k in KEYS), *fixed, REGRET, LEARNED_ON]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for rank, (t, summed) in enumerate(chosen, 1):
            c = configs[t]
            w.writerow({RANK: rank, **{KEYS[k]: setting(k, _number(c[k])) for k in KEYS}, **fixed,
                        REGRET: f"{summed:.4f}", LEARNED_ON: learned_on})


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def loo_portfolio(held: str, work: Path, table: Path = OUT) -> Path:
    """The portfolio chosen from the offline table without the collection `held`, as a file a
    search reads (search.portfolio): what a search of `held` may start from without having seen it."""
    rows = [r for r in csv.DictReader(table.open()) if r["collection"] != held]
    fids, configs = fid_table(rows)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"portfolio-without-{held}.csv"
    write_portfolio(path, greedy(regrets(fids), 8), configs, f"{', '.join(sorted(fids))} (without {held})")
    return path


def markdown_portfolio(chosen: list[tuple[int, float]], configs: dict[int, dict],
                       fids: dict[str, dict[int, float]]) -> str:
    names = sorted(fids)
    lines = ["| # | trial | " + " | ".join(KEYS[k] for k in KEYS) + " | " + " | ".join(f"FID {c}" for c in names)
             + " | summed regret once in |", "|" + "---|" * (3 + len(KEYS) + len(names))]
    for rank, (t, summed) in enumerate(chosen, 1):
        c = configs[t]
        lines.append(f"| {rank} | t{t:02d} | " + " | ".join(setting(k, _number(c[k])) for k in KEYS) + " | "
                     + " | ".join(f"{fids[n][t]:.1f}" for n in names) + f" | {summed:.3f} |")
    return "\n".join(lines)


def markdown_loo(loo: list[dict]) -> str:
    lines = ["| held-out collection | k | best of the portfolio's first k | expected best of k random | "
             "best of the table | portfolio / random |", "|---|---|---|---|---|---|"]
    for r in loo:
        lines.append(f"| {r['collection']} | {r['k']} | {r['portfolio']:.1f} | {r['random']:.1f} | {r['best']:.1f} | "
                     f"{r['portfolio'] / r['random']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rungs", default=str(OUT), help="bench_rungs.py's table")
    p.add_argument("--k", type=int, default=8, help="configurations in the portfolio")
    p.add_argument("--write", action="store_true", help=f"write it to {PORTFOLIO.relative_to(ROOT)}")
    args = p.parse_args(argv)
    rows = list(csv.DictReader(open(args.rungs)))
    fids, configs = fid_table(rows)
    if len(fids) < 2:
        sys.exit(f"{args.rungs}: judged configurations on {len(fids)} collection(s); a portfolio needs several")
    chosen = greedy(regrets(fids), args.k)
    epochs = sorted({r["epoch"] for r in rows if r["measure"] == JUDGE})
    learned_on = (f"{', '.join(sorted(fids))}: {len(configs)} configurations, {'/'.join(epochs)} epochs, "
                  f"judged by held-out FID of {HANDED} samples")
    print(f"portfolio of {len(chosen)} from {learned_on}:\n{markdown_portfolio(chosen, configs, fids)}\n")
    print(f"leave one collection out, on the table:\n{markdown_loo(leave_one_out(fids))}")
    if args.write:
        write_portfolio(PORTFOLIO, chosen, configs, learned_on)
        print(f"\nwrote {PORTFOLIO}")


if __name__ == "__main__":
    main()
