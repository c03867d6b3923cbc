"""A calibrated decoder against summed MSE and BCE, at equal budget, on the real collections.

    python benchmarks/bench_losses.py [--quick] [--work DIR] [--collections NAME ...]

For each collection (_real_collections.py) and reconstruction loss (train.recon_loss: mse, bce,
calibrated — the σ-VAE's Gaussian with the batch's optimal shared variance), the same conv VAE is
trained at each β of one grid that spans all three losses' useful ranges, two seeds each, the same
epochs (`vaetune train`, _trainings.py): every loss gets the same number of trainings of the same
length. The judge (_evaluator.py) measures each final model's held-out sample FID against the test
split, with z from N(0, I) and from the mixture fitted to its training codes (what vaetune hands
out). Per collection and loss: the best β's FID (mean over seeds, and the seeds' values), and
where the best β lies — the calibrated loss's β should mean the same on every collection.
Rows go to results_losses.csv as they are measured; trainings under --work are kept, so a rerun
resumes.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _evaluator import Evaluator, vaetune_decoder  # noqa: E402
from _real_collections import COLLECTIONS  # noqa: E402
from _trainings import Training, checkpoints, train_all  # noqa: E402

SECTION = "losses"
OUT = Path(__file__).resolve().parent / "results_losses.csv"
FIELDS = ["collection", "recon_loss", "beta", "seed", "epoch", "sampler", "n", "fid", "seconds"]
LOSSES = ("mse", "bce", "calibrated")
FIXED = ("model.width=32", "model.latent_dim=32", "train.lr=0.001", "train.warmup_epochs=2",
         "train.fid_every=0", "search.metric=val/elbo", "train.num_threads=1")


def sizes(mode: str) -> dict:
    if mode == "quick":
        return {"epochs": 6, "betas": (0.01, 1.0), "seeds": (0,), "collections": ("emoji_twitter",)}
    return {"epochs": 15, "betas": (0.001, 0.01, 0.1, 1.0, 10.0), "seeds": (0, 1), "collections": tuple(COLLECTIONS)}


def trainings(s: dict, cache: Path) -> list[Training]:
    out = []
    for name in s["collections"]:
        c = COLLECTIONS[name]
        for loss in LOSSES:
            for beta in s["betas"]:
                for seed in s["seeds"]:
                    sets = (*c.sets(), f"data.cache_dir={cache}", *FIXED, f"train.epochs={s['epochs']}",
                            f"train.checkpoint_every={s['epochs']}", f"train.grid_every={s['epochs']}",
                            f"train.recon_loss={loss}", f"train.beta={beta}", f"train.seed={seed}")
                    out.append(Training(f"{name}/{loss}_b{beta:g}_s{seed}", c.space, sets,
                                        {"collection": name, "recon_loss": loss, "beta": beta, "seed": seed}))
    return out


def judge_all(records: list[dict], work: Path, out: Path) -> list[dict]:
    """The judge's FID of each finished model, both samplers; rows appended to `out` as measured."""
    import torch

    from vaetune.checkpoint import load_model
    from vaetune.data import load_data

    torch.set_num_threads(2)
    have = {(r["collection"], r["recon_loss"], r["beta"], r["seed"], r["sampler"])
            for r in csv.DictReader(out.open())} if out.is_file() else set()
    new = not out.is_file()
    with out.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        judges, refs = {}, {}
        for r in records:
            found = {} if r.get("failed") else checkpoints(work / r["key"])
            for sampler, handed in (("normal", False), ("gmm", True)):
                key = (r["collection"], r["recon_loss"], str(r["beta"]), str(r["seed"]), sampler)
                if key in have:
                    continue
                row = {k: r[k] for k in ("collection", "recon_loss", "beta", "seed")}
                if not found:  # diverged: no model to hand out
                    writer.writerow({**row, "epoch": "", "sampler": sampler, "n": "", "fid": math.inf,
                                     "seconds": r["seconds"]})
                    continue
                last = max(found)
                name = r["collection"]
                if name not in judges:
                    test = load_data(load_model(found[last])[1].data).subset("test")[0]
                    judges[name] = Evaluator(len(test))
                    refs[name] = judges[name].features(test)
                d = vaetune_decoder(found[last])
                writer.writerow({**row, "epoch": last, "sampler": sampler, "n": judges[name].n,
                                 "fid": judges[name](d, refs[name], handed=handed), "seconds": r["seconds"]})
            f.flush()
            print(f"[{SECTION}] judged {r['key']}", flush=True)
    return list(csv.DictReader(out.open()))


def table(rows: list[dict]) -> list[dict]:
    """Per collection, loss and sampler: the β with the lowest mean FID over seeds, that mean, and
    the seeds' values."""
    by: dict[tuple, dict[float, list[float]]] = {}
    for r in rows:
        by.setdefault((r["collection"], r["recon_loss"], r["sampler"]), {}).setdefault(
            float(r["beta"]), []).append(float(r["fid"]))
    out = []
    for (collection, loss, sampler), betas in sorted(by.items()):
        beta, fids = min(betas.items(), key=lambda kv: statistics.mean(kv[1]))
        out.append({"collection": collection, "recon_loss": loss, "sampler": sampler, "best_beta": beta,
                    "fid": statistics.mean(fids), "fids": sorted(fids),
                    "by_beta": {b: statistics.mean(v) for b, v in sorted(betas.items())}})
    return out


def markdown(t: list[dict]) -> str:
    lines = ["| collection | z from | loss | best β | FID at the best β, mean (seeds) | FID by β |",
             "|---|---|---|---|---|---|"]
    for r in sorted(t, key=lambda r: (r["collection"], r["sampler"], r["recon_loss"])):
        seeds = ", ".join(f"{v:.1f}" for v in r["fids"])
        by_beta = ", ".join(f"{b:g}: {v:.0f}" for b, v in r["by_beta"].items())
        lines.append(f"| {r['collection']} | {r['sampler']} | {r['recon_loss']} | {r['best_beta']:g} | "
                     f"{r['fid']:.1f} ({seeds}) | {by_beta} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--work", default=str(Path.home() / ".cache" / "vaetune" / "bench-losses"),
                   help="where the trainings are kept (a rerun reuses them)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--collections", nargs="+", choices=tuple(COLLECTIONS),
                   help="only these collections (default: the mode's own)")
    args = p.parse_args(argv)
    s = sizes("quick" if args.quick else "full")
    if args.collections:
        s["collections"] = tuple(args.collections)
    work = Path(args.work)
    records = train_all(trainings(s, work / "cache"), work)
    print(markdown(table(judge_all(records, work, Path(args.out)))))


if __name__ == "__main__":
    main()
