"""Rungs that rank like the final judge: Spearman's ρ between what a trial measures at ASHA's first
rung and its held-out sample FID at its last epoch, for every candidate rung measure.

    python benchmarks/bench_rungs.py [--quick] [--trials N] [--work DIR]

Trials: one list of random configurations of the ranges the shipped emoji and pokesprite spaces
both search (lr, β, latent size, width, warm-up), each trained on every real collection
(_real_collections.py) with that collection's shipped space for the rest (its reconstruction loss
included), to the last epoch with no early stopping (`vaetune train`, _trainings.py); every
checkpoint kept. The same configurations on every collection make the judge's rows a table of
(collection, configuration, epoch, held-out sample FID): the offline table the search's portfolio
is chosen from (bench_portfolio.py). Configurations are drawn from one seeded generator, so a run
with fewer trials trains the first ones of a longer run's. For each trial:
- at each rung epoch, every candidate measure (_measures.py): FID or KID, of samples from N(0, I)
  or from the fitted mixture, of N = 64, 128 or 256 samples against the first N validation images,
  and the seconds it costs a trial;
- at the last epoch, the judge (_evaluator.py): FID of samples drawn the way each sampler draws
  them, against the whole held-out test split.
ρ is computed per collection (trials are ranked within a search, which runs on one collection),
then its median over collections; a trial that failed (diverged) has no value and is left out.
Rows go to results_rungs.csv as they are measured, so a stopped run resumes; trainings under --work
are kept and not run again.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _evaluator import Evaluator, vaetune_decoder  # noqa: E402
from _measures import load, rung_measures  # noqa: E402
from _real_collections import COLLECTIONS  # noqa: E402
from _trainings import Training, checkpoints, train_all  # noqa: E402

SECTION = "rungs"
OUT = Path(__file__).resolve().parent / "results_rungs.csv"
FIELDS = ["collection", "trial", "beta", "lr", "latent_dim", "width", "warmup_epochs", "epoch",
          "measure", "sampler", "n", "value", "seconds"]
JUDGE = "judge_fid"  # the measure name of the final judge's rows
SIZES = (64, 128, 256)
# each drawn value's key in a space (the --set a training gets, the portfolio's column)
KEYS = {"beta": "train.beta", "lr": "train.lr", "latent_dim": "model.latent_dim", "width": "model.width",
        "warmup_epochs": "train.warmup_epochs"}


def sizes(mode: str) -> dict:
    if mode == "quick":
        return {"trials": 6, "epochs": 6, "rungs": (2,), "collections": ("emoji_twitter",)}
    return {"trials": 24, "epochs": 10, "rungs": (2, 4), "collections": tuple(COLLECTIONS)}


def draw(rng: random.Random) -> dict:
    """One random configuration of the ranges the shipped spaces search (emoji.yaml's, whose
    warm-up range pokesprite.yaml's contains)."""
    return {"beta": math.exp(rng.uniform(math.log(0.01), math.log(4.0))),
            "lr": math.exp(rng.uniform(math.log(1e-4), math.log(3e-3))), "latent_dim": rng.choice([8, 16, 32, 64]),
            "width": rng.choice([16, 32]), "warmup_epochs": rng.uniform(0, 7)}


def setting(name: str, value) -> str:
    """A drawn value as its training is given it (and as the portfolio records it)."""
    return f"{value:.3g}" if name == "warmup_epochs" else f"{value:.6g}" if isinstance(value, float) else str(value)


def configurations(n: int) -> list[dict]:
    """The n configurations every collection trains (one seeded draw)."""
    rng = random.Random(SECTION)
    return [draw(rng) for _ in range(n)]


def trainings(s: dict, cache: Path) -> list[Training]:
    out, configs = [], configurations(s["trials"])
    for i, v in enumerate(configs):  # configuration by configuration: a stopped run has its first ones everywhere
        for name in s["collections"]:
            c = COLLECTIONS[name]
            sets = (*c.sets(), f"data.cache_dir={cache}", f"train.epochs={s['epochs']}", "train.fid_every=0", "search.metric=val/elbo",
                    "train.checkpoint_every=2", f"train.grid_every={s['epochs']}", "train.num_threads=1",
                    *(f"{KEYS[k]}={setting(k, x)}" for k, x in v.items()))
            out.append(Training(f"{name}/t{i:02d}", c.space, sets, {"collection": name, "trial": i, **v}))
    return out


def done_rows(path: Path) -> dict[tuple, dict]:
    if not path.is_file():
        return {}
    return {(r["collection"], r["trial"], r["epoch"], r["measure"], r["sampler"], r["n"]): r
            for r in csv.DictReader(path.open())}


def measure_all(records: list[dict], work: Path, s: dict, out: Path) -> list[dict]:
    """The candidate measures at each rung and the judge at the end, of each trained trial."""
    import torch

    from vaetune.data import load_data
    from vaetune.metrics import FeatureExtractor

    torch.set_num_threads(2)
    have = done_rows(out)
    new = not out.is_file()
    f = out.open("a", newline="")
    writer = csv.DictWriter(f, fieldnames=FIELDS)
    if new:
        writer.writeheader()
    extractor, judges, data_of, refs = FeatureExtractor("cpu"), {}, {}, {}
    # the judge of every trial first (the portfolio's table), then the rungs' candidate measures
    for final in (True, False):
        for r in records:
            if r.get("failed"):
                continue
            found = checkpoints(work / r["key"])
            last = max(found)
            base = {k: r[k] for k in FIELDS if k in r}
            measured = {(k[2], k[3] == JUDGE) for k in have if k[:2] == (r["collection"], str(r["trial"]))}
            wanted = [(last, True)] if final else [(e, False) for e in s["rungs"]]
            name = r["collection"]
            for epoch, _ in wanted:
                if (str(epoch), final) in measured:
                    continue
                if name not in data_of:
                    from vaetune.checkpoint import load_model

                    config = load_model(found[last])[1]
                    data_of[name] = load_data(config.data)
                    val, test = data_of[name].subset("val")[0], data_of[name].subset("test")[0]
                    refs[name] = (extractor.images(val[: max(SIZES)]), extractor.images(test))
                    judges[name] = Evaluator(len(test))
                if not final:
                    loaded = load(found[epoch], data_of[name])
                    for m in rung_measures(extractor, loaded, refs[name][0], SIZES):
                        writer.writerow({**base, "epoch": epoch, **m})
                else:
                    judge, d = judges[name], vaetune_decoder(found[epoch])
                    for sampler, handed in (("normal", False), ("gmm", True)):
                        if handed and d.mixture is None:
                            continue
                        writer.writerow({**base, "epoch": epoch, "measure": JUDGE, "sampler": sampler, "n": judge.n,
                                         "value": judge(d, refs[name][1], handed=handed), "seconds": ""})
                f.flush()
            print(f"[{SECTION}] {'judged' if final else 'measured the rungs of'} {r['key']}", flush=True)
    f.close()
    return list(csv.DictReader(out.open()))


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 2 else math.nan


def analyse(rows: list[dict], judge_sampler: str = "gmm") -> list[dict]:
    """Per candidate (epoch, measure, sampler, n): ρ with the judge per collection, its median over
    collections, and the median seconds it costs a trial."""
    import statistics

    judge = {(r["collection"], r["trial"]): float(r["value"]) for r in rows
             if r["measure"] == JUDGE and r["sampler"] == judge_sampler}
    groups: dict[tuple, dict[str, list]] = {}
    for r in rows:
        if r["measure"] == JUDGE or (r["collection"], r["trial"]) not in judge:
            continue
        value = float(r["value"])
        if not math.isfinite(value):
            continue
        g = groups.setdefault((int(r["epoch"]), r["measure"], r["sampler"], int(r["n"])), {})
        g.setdefault(r["collection"], []).append((value, judge[(r["collection"], r["trial"])], float(r["seconds"])))
    out = []
    for (epoch, measure, sampler, n), by in sorted(groups.items()):
        rhos = {c: spearman([v for v, _, _ in xs], [j for _, j, _ in xs]) for c, xs in by.items()}
        seconds = statistics.median(s for xs in by.values() for _, _, s in xs)
        rho = statistics.median(rhos.values())
        out.append({"epoch": epoch, "measure": measure, "sampler": sampler, "n": n, "rho": rho,
                    "rho_min": min(rhos.values()), "rho_max": max(rhos.values()), "seconds": seconds,
                    "rho_per_s": rho / seconds if seconds else math.nan,
                    "trials": sum(len(xs) for xs in by.values()), "collections": len(by)})
    return out


def markdown(table: list[dict], judge_sampler: str) -> str:
    lines = [f"| rung epoch | measure | z from | N | ρ with the judge ({judge_sampler}), median (min..max over "
             "collections) | seconds a trial | ρ per second | trials |", "|---|---|---|---|---|---|---|---|"]
    for t in sorted(table, key=lambda t: (t["epoch"], -t["rho"])):
        lines.append(f"| {t['epoch']} | {t['measure'].upper()} | {t['sampler']} | {t['n']} | {t['rho']:.2f} "
                     f"({t['rho_min']:.2f}..{t['rho_max']:.2f}) | {t['seconds']:.1f} | {t['rho_per_s']:.3f} | "
                     f"{t['trials']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--trials", type=int, default=None, help="trials per collection")
    p.add_argument("--rungs", default=None, help="comma-separated rung epochs to measure (default 2,4)")
    p.add_argument("--work", default=str(Path.home() / ".cache" / "vaetune" / "bench-rungs"),
                   help="where the trainings are kept (a rerun reuses them)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    s = sizes("quick" if args.quick else "full")
    if args.trials:
        s["trials"] = args.trials
    if args.rungs:
        s["rungs"] = tuple(int(e) for e in args.rungs.split(","))
    work = Path(args.work)
    records = train_all(trainings(s, work / "cache"), work)
    rows = measure_all(records, work, s, Path(args.out))
    for judged in ("gmm", "normal"):
        print(f"\nρ against the judge's FID of samples from {judged}:")
        print(markdown(analyse(rows, judged), judged))


if __name__ == "__main__":
    main()
