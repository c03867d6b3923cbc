"""Against what users run instead: vaetune's search as shipped, one good default model trained for
the whole budget, Ray Tune's defaults, the original project's script and an exhaustive grid, at
equal wall-clock, on real image collections.

    python benchmarks/bench_peers.py [--quick | --smoke] [--seeds N] [--budget S] [--collections a,b]
                                     [--data DIR] [--keep DIR]

Collections (_real_collections.py): packages a registry ships, fetched once by vaetune's fetch code
(their integrity checked), each searched with its shipped space. Methods, each one subprocess
using the whole machine, sent Ctrl-C (SIGINT) when its budget of wall-clock seconds from launch is
spent, one after another in an order that rotates between seeds:
- vaetune: `vaetune search SPACE` as shipped (its sampler, scheduler, rungs, points to evaluate,
  metric and num_samples); --set says only where its files go, its seed, and which portfolio it
  starts from: the one chosen without the collection under test (bench_portfolio.loo_portfolio),
  since the shipped one was chosen on these very collections;
- default model: benchmarks/default_model.py, the original project's default configuration (conv
  64 -> 512, latent 128, summed MSE, beta 1 warmed up over 5 epochs, lr 1e-3, batch 64) trained
  for the whole budget with every core, no search;
- random+fifo: Ray Tune's defaults over the same space: sampler random, scheduler fifo, no points
  to evaluate, trials until the budget ends;
- peer script: benchmarks/peer_script.py (Ray Tune + OptunaSearch's default TPE + ASHA, the
  original project's conv VAE, pytorch-fid's FID every epoch) over the same ranges, epochs, batch
  and FID size, on PNG files of the same training and validation images;
- grid: the exhaustive grid over the same ranges (each range's ends and middle, every choice),
  FIFO; Optuna's GridSampler visits the points in a seeded random order.
What a method holds at its budget is the model it would hand its user then: for the searches, the
trial-epoch with the best value of its own metric so far, measured at that epoch, with its
checkpoint; for the default model, its last saved epoch. After every run, one evaluator
(_evaluator.py) measures each held model's sample FID against the held-out test split, which no
method trains or ranks on: with z drawn the way the method hands it out (the fitted latent mixture
for a vaetune run, whose checkpoints hold it; N(0, I) for the others) and with z ~ N(0, I) for all.
Wall-clock is the method's own, from launch (imports, Ray, data, training, its own FID); the
evaluator's time is no method's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ratio_row  # noqa: E402
from _evaluator import Decoder, Evaluator, incumbents, vaetune_decoder  # noqa: E402
from _real_collections import COLLECTIONS  # noqa: E402
from bench_portfolio import loo_portfolio  # noqa: E402

SECTION = "peers"
# three of the real collections, as unlike one another as they come: flat pictograms, shaded ones, pixel art
COLLECTION_NAMES = ("emoji_twitter", "emoji_apple", "pokesprite")
METHODS = ("vaetune", "default model", "random+fifo", "peer script", "grid")
VAETUNE_RUNS = ("vaetune", "random+fifo", "grid")  # runs of vaetune's search: they hand out its fitted mixture
HERE = Path(__file__).resolve().parent
PEER, DEFAULT = HERE / "peer_script.py", HERE / "default_model.py"
PEER_KEYS = {"train.lr": "lr", "train.beta": "beta", "model.latent_dim": "latent_dim",
             "train.warmup_epochs": "warmup_epochs"}  # what the original project searched
NAME = SECTION  # each run's search name (each run has a folder of its own)
MANY = 100  # num_samples of the methods that run trials until their budget ends: more than any budget here
# reaches, and few enough that the planned checkpoints fit the disk (a search refuses a plan that cannot)
STOP_GRACE_S = 180  # after Ctrl-C Tune stops the trials and saves; then the process group is killed


def sizes(mode: str) -> dict:
    """Budget (wall-clock seconds a run gets from launch), seeds, the evaluator's N. Full: 3
    collections x 3 seeds x 5 methods, 45 runs of 120 s, about 105 min with stopping, and the
    evaluator's 90 measures about 10 more; quick: one seed of 60 s, about 20 min."""
    if mode == "smoke":  # a code check: one trial of one epoch per run
        tiny = ["train.epochs=1", "train.fid_samples=4", "data.image_size=16"]
        return {"seeds": 1, "budget": 240, "eval_n": 8, "reference": 16, "trials": 1, "peer_dims": 64,
                "default_epochs": 1, "sets": tiny, "collections": 1}
    quick = mode == "quick"
    return {"seeds": 1 if quick else 3, "budget": 60 if quick else 120, "eval_n": 128 if quick else 256,
            "reference": None, "trials": None, "peer_dims": 2048, "default_epochs": 1000, "sets": [],
            "collections": len(COLLECTION_NAMES)}


@dataclass
class Collection:
    name: str
    space: Path
    sets: list[str]  # --set items of every vaetune run on it: its data and sizes
    config: object  # the space's Config with those sets
    grid: dict[str, list]  # the exhaustive grid over its ranges
    peer_space: dict  # the same ranges, for peer_script.py --space
    files: Path  # train/ and val/ sub-folders of PNG files: its images, for the scripts
    test: object  # uint8 (N, C, H, W): the held-out images every held model is measured against
    portfolio: Path  # the portfolio vaetune's search starts from: chosen without this collection


def grid_over(space) -> dict[str, list]:
    """Each searched range's ends and middle (geometric for loguniform), every choice."""
    def values(d) -> list:
        middle = d.default()
        return sorted({*d.candidates(), float(f"{middle:.3g}") if isinstance(middle, float) else middle})

    return {k: values(d) for k, d in space.params.items()}


def peer_ranges(space, config) -> dict:
    """The space's ranges of the keys the original project searched; a key the space fixes, fixed."""
    from vaetune.spec import flatten

    fixed, out = flatten(config), {}
    for key, name in PEER_KEYS.items():
        d = space.params.get(key)
        out[name] = fixed[key] if d is None else [d.kind, list(d.args)] if d.kind == "choice" else [d.kind, *d.args]
    return out


def prepare(name: str, work: Path, s: dict, data_root: Path | None) -> Collection:
    """Load the collection as vaetune does (its split), write its train/val images as PNG files."""
    from PIL import Image

    from vaetune.data import load_data
    from vaetune.spec import load_space

    real = COLLECTIONS[name]
    sets = [f"data.cache_dir={work / 'cache'}", *real.sets(data_root), *s["sets"]]
    space = load_space(real.space, overrides=sets)
    config = space.default_config()
    data = load_data(config.data)
    files = work / name
    for split in ("train", "val"):
        (files / split / "images").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(data.subset(split)[0]):  # (C, H, W) uint8
            Image.fromarray(img.permute(1, 2, 0).contiguous().numpy()).save(files / split / "images" / f"{i:05d}.png")
    return Collection(name, real.space, sets, config, grid_over(space), peer_ranges(space, config), files,
                      data.subset("test")[0][: s["reference"]], loo_portfolio(name, work / "portfolios"))


def pytorch_fid_home(work: Path) -> Path:
    """A TORCH_HOME holding pytorch-fid's weight file where its first (online) use leaves it; offline
    here, so it holds vaetune's copy of the same weights (the classifier, unused for FID, zero)."""
    import torch
    from pytorch_fid.inception import FID_WEIGHTS_URL

    from vaetune.metrics import load_fid_state_dict

    home = work / "torch_home"
    path = home / "hub" / "checkpoints" / FID_WEIGHTS_URL.rsplit("/", 1)[1]
    if not path.is_file():
        state = dict(load_fid_state_dict()[0])
        state.setdefault("fc.weight", torch.zeros(1008, 2048))  # pytorch-fid builds Inception with 1008 classes
        state.setdefault("fc.bias", torch.zeros(1008))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
    return home


@dataclass
class Run:
    collection: Collection
    method: str
    seed: int
    folder: Path
    t0: float = 0.0  # time.time() at launch
    wall: float = 0.0  # seconds until the process ended
    code: int | None = None  # its exit status if it ended within the budget, else None

    def held(self, budget: float) -> tuple[float, Path] | None:
        """(seconds, checkpoint) of the model the method holds at `budget` seconds from launch."""
        if self.method == "default model":
            return default_held(self.folder / "log.txt", self.t0, budget)
        s = self.collection.config.search
        metric, mode = ("fid", "min") if self.method == "peer script" else (s.metric, s.mode)
        found = incumbents(self.folder / "results" / NAME, metric, mode, self.t0, budget)
        return found[-1] if found else None

    def decoder(self, checkpoint: Path) -> Decoder:
        import peer_script

        if self.method in VAETUNE_RUNS:
            return vaetune_decoder(checkpoint)
        return Decoder(*peer_script.load_decoder(checkpoint))


def default_held(log: Path, t0: float, budget: float) -> tuple[float, Path] | None:
    """The default model's last epoch saved within the budget (from its log's lines)."""
    held = None
    for line in log.read_text().splitlines() if log.is_file() else []:
        with contextlib.suppress(ValueError, KeyError):
            r = json.loads(line)
            if r["timestamp"] - t0 <= budget:
                held = (r["timestamp"] - t0, Path(r["checkpoint"]))
    return held


def command(run: Run, s: dict) -> list[str]:
    c, folder = run.collection, run.folder
    t = c.config.train
    if run.method == "default model":
        return [str(DEFAULT), "--train", str(c.files / "train"), "--out", str(folder / "models"),
                "--epochs", str(s["default_epochs"]), "--seed", str(run.seed)]
    if run.method == "peer script":
        return [str(PEER), "--train", str(c.files / "train"), "--val", str(c.files / "val"),
                "--storage", str(folder / "results"), "--name", NAME, "--space", json.dumps(c.peer_space),
                "--epochs", str(t.epochs), "--batch-size", str(t.batch_size), "--fid-n", str(t.fid_samples),
                "--num-samples", str(s["trials"] or MANY), "--max-concurrent", str(c.config.search.max_concurrent),
                "--seed", str(run.seed), "--dims", str(s["peer_dims"])]
    sets = [f"name={NAME}", f"search.storage={folder / 'results'}", f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
            f"search.seed={run.seed}", *c.sets]
    if run.method == "vaetune":  # as shipped, but its portfolio never saw this collection
        sets.append(f"search.portfolio={c.portfolio}")
    elif run.method == "random+fifo":
        sets += ["search.sampler=random", "search.scheduler=fifo", "search.points_to_evaluate=[]",
                 f"search.num_samples={MANY}"]
    elif run.method == "grid":  # a smoke run's grid: the first point of each key (a grid runs every point)
        from bench_search import method_sets

        grid = {k: v[:1] for k, v in c.grid.items()} if s["trials"] else c.grid
        sets += ["search.points_to_evaluate=[]", *method_sets("grid", {"grid": grid})]
    if s["trials"]:
        sets.append(f"search.num_samples={s['trials']}")
    return ["-m", "vaetune.cli", "search", str(c.space), *(x for item in sets for x in ("--set", item))]


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def launch(run: Run, s: dict, env: dict) -> Run:
    """Run one method until it ends or its budget is spent (then Ctrl-C, as a user stops a search);
    a method that fails keeps what it reported before (the progress line shows its exit status)."""
    run.folder.mkdir(parents=True, exist_ok=True)
    with open(run.folder / "log.txt", "w") as log:
        run.t0 = time.time()
        # Ctrl-C must reach the method even when this benchmark runs in the background (`cmd &`), where
        # the shell hands its children SIGINT ignored and Python would then install no KeyboardInterrupt
        proc = subprocess.Popen([PYTHON, *command(run, s)], cwd=run.folder, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, preexec_fn=_interruptible)
        try:
            run.code = proc.wait(timeout=s["budget"])
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        run.wall = time.time() - run.t0
    return run


@dataclass
class Held:
    """What one run held at its budget, as the evaluator measured it (inf: it held no model)."""
    method: str
    seed: int
    seconds: float
    handed: float  # FID with z drawn as the method hands it out
    normal: float  # FID with z ~ N(0, I)


def measure(run: Run, evaluate: Evaluator, reference, budget: float) -> Held:
    held = run.held(budget)
    if held is None or not held[1].exists():
        return Held(run.method, run.seed, math.inf, math.inf, math.inf)
    d = run.decoder(held[1])
    normal = evaluate(d, reference)
    handed = evaluate(d, reference, handed=True) if run.method in VAETUNE_RUNS else normal
    return Held(run.method, run.seed, held[0], handed, normal)


def paired(a: float, b: float) -> float:
    """a / b of one seed; NaN (left out) where neither has a value, 0 where only b has none."""
    if math.isinf(b) or b == 0:
        return math.nan if math.isinf(a) or b == 0 else 0.0
    return a / b


def row(figure: str, a: str, a_values: list[float], b: str, b_values: list[float], unit: str, *,
        goal: str = "", note: str = "") -> dict:
    """ratio_row's row, with the per-seed ratios of `paired` (an inf is a seed with no model)."""
    out = ratio_row(SECTION, figure, a, a_values, b, b_values, unit=unit, goal=goal, note=note)
    known = sorted(r for r in map(paired, a_values, b_values) if not math.isnan(r))
    out.update(ratio=statistics.median(known) if known else math.nan, ratio_min=known[0] if known else math.nan,
               ratio_max=known[-1] if known else math.nan, reps=len(a_values))
    return out


# the figures of one collection (c) and method (m)
HANDED = "{c}: FID held at the budget, {m}, z as handed out"
NORMAL = "{c}: FID held at the budget, {m}, z ~ N(0, I)"
VS_HANDED = "{c}: vaetune / {m}, each as handed out"
VS_NORMAL = "{c}: vaetune / {m}, both z ~ N(0, I)"
VS_DEFAULT = "{c}: vaetune as handed out / default model, z ~ N(0, I)"
GOALS = {"default model": ("<= 0.80", "<= 0.65")}  # N(0, I) for both; vaetune's sampler vs the peer's N(0, I)


def figures(name: str, held: dict[str, list[Held]]) -> list[dict]:
    """Per method: the FID held at the budget (both ways); then vaetune against each other method,
    seed by seed: handed out against handed out (wins counted) and N(0, I) against N(0, I); and
    against the default model, vaetune as handed out against the default's N(0, I)."""
    rows = []
    for m, runs in held.items():
        for fig, attr in ((HANDED, "handed"), (NORMAL, "normal")):
            values = [getattr(h, attr) for h in runs]
            rows.append(row(fig.format(c=name, m=m), m, values, "vaetune", [getattr(h, attr) for h in held["vaetune"]],
                            "FID", note=f"seeds: {', '.join(f'{v:.1f}' for v in values)}"))
    mine = held["vaetune"]
    for m in (m for m in held if m != "vaetune"):
        theirs = held[m]
        goal_normal, goal_handed = GOALS.get(m, ("", ""))
        wins = sum(a.handed < b.handed for a, b in zip(mine, theirs, strict=True))
        rows.append(row(VS_HANDED.format(c=name, m=m), "vaetune", [h.handed for h in mine], m,
                        [h.handed for h in theirs], "FID", goal="< 1 in >= 2 of 3 seeds",
                        note=f"vaetune lower in {wins} of {len(mine)} seeds"))
        wins = sum(a.normal < b.normal for a, b in zip(mine, theirs, strict=True))
        rows.append(row(VS_NORMAL.format(c=name, m=m), "vaetune", [h.normal for h in mine], m,
                        [h.normal for h in theirs], "FID", goal=goal_normal,
                        note=f"vaetune lower in {wins} of {len(mine)} seeds"))
        if m == "default model":
            rows.append(row(VS_DEFAULT.format(c=name), "vaetune", [h.handed for h in mine], m,
                            [h.normal for h in theirs], "FID", goal=goal_handed))
    return rows


def markdown(rows: list[dict], collections: list[str]) -> str:
    """The table of benchmarks/README.md section 7, from the figure rows."""
    by = {r["figure"]: r for r in rows}

    def ratio(r: dict | None, wins: bool = True) -> str:
        if r is None:
            return ""
        text = f"{r['ratio']:.2f} ({r['ratio_min']:.2f}..{r['ratio_max']:.2f})"
        return text + (f", {r['note'].removeprefix('vaetune ')}" if wins and r["note"] else "")

    def held(r: dict) -> str:
        seeds = [float(v) for v in r["note"].removeprefix("seeds: ").split(", ")]
        return f"{statistics.median(seeds):.1f} ({min(seeds):.1f}..{max(seeds):.1f})"

    lines = ["| collection | method | FID held, z as handed out: median (min..max) | FID held, z ~ N(0, I) "
             "| vaetune / it, each as handed out | vaetune / it, both N(0, I) |", "|---|---|---|---|---|---|"]
    for c in collections:
        for m in METHODS:
            if HANDED.format(c=c, m=m) not in by:
                continue
            lines.append(f"| {c} | {m} | {held(by[HANDED.format(c=c, m=m)])} | {held(by[NORMAL.format(c=c, m=m)])} | "
                         f"{ratio(by.get(VS_HANDED.format(c=c, m=m)))} | {ratio(by.get(VS_NORMAL.format(c=c, m=m)))} |")
        vs = by.get(VS_DEFAULT.format(c=c))
        if vs:
            lines.append(f"| {c} | vaetune as handed out / default model's N(0, I) | | | {ratio(vs, False)} | |")
    return "\n".join(lines)


RUN_FIELDS = ["collection", "method", "seed", "mode", "budget", "wall", "code", "held_s", "fid_handed", "fid_normal"]
RUNS = HERE / "results_peers.csv"  # one row per run, written as each ends: a stopped benchmark resumes


def _done(path: Path, mode: str, budget: float) -> dict[tuple, dict]:
    if not path.is_file():
        return {}
    import csv

    return {(r["collection"], r["method"], int(r["seed"])): r for r in csv.DictReader(path.open())
            if r["mode"] == mode and float(r["budget"]) == budget}


def run(mode: str = "full", seeds: int | None = None, keep: Path | None = None, data: Path | None = None,
        budget: float | None = None, collections: list[str] | None = None,
        runs_csv: Path | None = None) -> tuple[list[dict], list[str]]:
    """Every run not yet in `runs_csv` (one after another; each measured by the evaluator as soon as
    it has ended, its row written then), then the figures of every run; returns the figure rows and
    the collections."""
    import csv
    import shutil

    import torch

    s = sizes(mode)
    seeds = seeds or s["seeds"]
    s["budget"] = budget or s["budget"]
    names = collections or list(COLLECTION_NAMES)[: s["collections"]]
    folder = contextlib.nullcontext(str(keep)) if keep else tempfile.TemporaryDirectory(prefix="vaetune-bench-peers-")
    with folder as work_:
        work = Path(work_)
        runs_csv = runs_csv or (work / "runs.csv" if mode == "smoke" else RUNS)  # a smoke run's rows are no result
        env = {**os.environ, "TORCH_HOME": str(pytorch_fid_home(work))}
        prepared = [prepare(name, work, s, data) for name in names]
        turn = [METHODS[i:] + METHODS[:i] for i in range(len(METHODS))]  # the order rotates between seeds
        jobs = [Run(c, m, seed, work / "runs" / f"{c.name}_{m.replace(' ', '_')}_s{seed}")
                for seed in range(seeds) for c in prepared for m in turn[(seed + prepared.index(c)) % len(METHODS)]]
        done = _done(runs_csv, mode, s["budget"])
        evaluate, references = Evaluator(s["eval_n"]), {}
        new = not runs_csv.is_file()
        with runs_csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=RUN_FIELDS)
            if new:
                writer.writeheader()
            for r in jobs:
                if (r.collection.name, r.method, r.seed) in done:
                    continue
                launch(r, s, env)
                threads = torch.get_num_threads()
                torch.set_num_threads(os.cpu_count() or 1)  # nothing else runs now
                try:
                    if r.collection.name not in references:
                        references[r.collection.name] = evaluate.features(r.collection.test)
                    h = measure(r, evaluate, references[r.collection.name], s["budget"])
                finally:
                    torch.set_num_threads(threads)
                record = {"collection": r.collection.name, "method": r.method, "seed": r.seed, "mode": mode,
                          "budget": s["budget"], "wall": round(r.wall, 1), "code": "" if r.code is None else r.code,
                          "held_s": round(h.seconds, 1), "fid_handed": h.handed, "fid_normal": h.normal}
                writer.writerow(record)
                f.flush()
                done[(r.collection.name, r.method, r.seed)] = record
                ended = "stopped at the budget" if r.code is None else f"exit {r.code}"
                print(f"[{SECTION}] {r.collection.name} {r.method} seed {r.seed}: {r.wall:.0f} s, {ended}, held the "
                      f"model of {h.seconds:.0f} s: FID {h.handed:.1f} as handed out, {h.normal:.1f} from N(0, I)",
                      flush=True)
                if r.code:  # it failed by itself: what it reported still counts, its log says why
                    print((r.folder / "log.txt").read_text()[-2000:], flush=True)
                if not keep:
                    shutil.rmtree(r.folder, ignore_errors=True)
    rows = []
    for name in names:
        held = {m: [Held(m, seed, float(d["held_s"]), float(d["fid_handed"]), float(d["fid_normal"]))
                    for seed in range(seeds) if (d := done.get((name, m, seed)))] for m in METHODS}
        rows += figures(name, held)
    return rows, names


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--smoke", action="store_true", help="a code check; numbers meaningless")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--budget", type=float, default=None, help="seconds per run")
    p.add_argument("--collections", default=None, help=f"comma-separated, of {','.join(COLLECTIONS)} (default: "
                   f"{','.join(COLLECTION_NAMES)})")
    p.add_argument("--data", default=None, help="where the collections are (fetched there when missing; default "
                   "~/.cache/vaetune/benchmarks)")
    p.add_argument("--keep", default=None, help="run under this folder and keep it (logs, results, checkpoints)")
    p.add_argument("--runs", default=None, help="CSV of one row per run, appended as each ends; the runs it holds "
                   f"(same mode and budget) are not run again (default {RUNS.name} here; --smoke: none kept)")
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    rows, names = run(mode, args.seeds, Path(args.keep) if args.keep else None,
                      Path(args.data) if args.data else None, args.budget,
                      args.collections.split(",") if args.collections else None,
                      Path(args.runs) if args.runs else None)
    for r in rows:
        print(f"{r['figure']:<70} {r['ratio']:.3g} ({r['ratio_min']:.3g}..{r['ratio_max']:.3g})  {r['note']}")
    print(markdown(rows, names))


if __name__ == "__main__":
    main()
