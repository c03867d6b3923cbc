"""Against what users run instead: vaetune's search as shipped, Ray Tune's defaults, the original
project's script and an exhaustive grid, at equal wall-clock, on two image collections.

    python benchmarks/bench_peers.py [--quick | --smoke] [--seeds N] [--budget S] [--emoji DIR] [--keep DIR]

Collections: the built-in sprites (search_spaces/sprites.yaml) and the emoji that the npm package
emoji-datasource-twitter ships (search_spaces/emoji.yaml; fetched into --emoji once, with
vaetune.fetch). Methods, each one subprocess with its own Ray, sent Ctrl-C (SIGINT) when its
budget of wall-clock seconds from launch is spent (runs one after another, in an order that
rotates between seeds):
- vaetune: `vaetune search SPACE` as shipped (its sampler, scheduler, rungs, points to evaluate
  and num_samples); --set says only where its files go (and, in --smoke, tiny sizes);
- random+fifo: Ray Tune's defaults over the same space: sampler random, scheduler fifo, no points
  to evaluate, trials until the budget ends;
- peer script: benchmarks/peer_script.py (Ray Tune + OptunaSearch's default TPE + ASHA, the
  original project's conv VAE, pytorch-fid's FID every epoch) over the same ranges, the same
  epochs, batch and FID size, on PNG files of the same training and validation images;
- grid: the exhaustive grid over the same ranges (each range's ends and middle, every choice),
  FIFO; Optuna's GridSampler visits the points in a seeded random order.
Afterwards one evaluator (_evaluator.py) re-measures each method's incumbents, the models it would
have handed its user as time went on: sample FID of the same N z ~ N(0, I) against the held-out
test split, which no method trains or ranks on. Wall-clock is the method's own, from launch to
the report of the incumbent (imports, Ray, data, training, its own FID), never the re-measurement.
Figures per collection: seconds to come within 5 % of the best value any method found, and the
value each method holds at its budget (equal wall-clock), per seed; ratios vaetune / each other.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, ROOT, ratio_row  # noqa: E402
from _evaluator import Decoder, Evaluator, incumbents, vaetune_decoder  # noqa: E402
from bench_search import WITHIN, budget_to_reach, method_sets  # noqa: E402

SECTION = "peers"
METHODS = ("vaetune", "random+fifo", "peer script", "grid")
SPACES = {"sprites": ROOT / "search_spaces" / "sprites.yaml", "emoji": ROOT / "search_spaces" / "emoji.yaml"}
PEER = Path(__file__).resolve().parent / "peer_script.py"
PEER_KEYS = {"train.lr": "lr", "train.beta": "beta", "model.latent_dim": "latent_dim",
             "train.warmup_epochs": "warmup_epochs"}  # what the original project searched
NAME = SECTION  # each run's search name (each run has a folder of its own)
MANY = 1000  # num_samples of the methods that run trials until their budget ends
STOP_GRACE_S = 180  # after Ctrl-C Tune stops the trials and saves; then the process group is killed


def sizes(mode: str) -> dict:
    """Budget (wall-clock seconds a run gets from launch), seeds, the evaluator's N and reference
    images (None: the whole test split). Full: 24 runs, 90 min of budgets plus (estimated) about 20
    of stopping and re-measuring on 2 cores; quick: one seed, 12 min of budgets, about 17 in all."""
    if mode == "smoke":  # a code check: one trial of one epoch per run, two runs at a time
        tiny = ["train.epochs=1", "train.fid_samples=4"]
        return {"seeds": 1, "budget": dict.fromkeys(SPACES, 300), "eval_n": 8, "reference": 16, "trials": 1, "parallel": 2,
                "peer_dims": 64, "sets": {"sprites": ["data.count=300", *tiny], "emoji": ["data.image_size=16", *tiny]}}
    quick = mode == "quick"
    budget = dict.fromkeys(SPACES, 90) if quick else {"sprites": 200, "emoji": 250}
    return {"seeds": 1 if quick else 3, "budget": budget,
            "eval_n": 64 if quick else 128, "reference": None, "trials": None, "parallel": 1, "peer_dims": 2048,
            "sets": dict.fromkeys(SPACES, [])}


@dataclass
class Collection:
    name: str
    sets: list[str]  # --set items of every vaetune run on it: its data and sizes
    config: object  # the space's Config with those sets
    grid: dict[str, list]  # the exhaustive grid over its ranges
    peer_space: dict  # the same ranges, for peer_script.py --space
    files: Path  # train/ and val/ sub-folders of PNG files: its images, for the peer script
    test: object  # uint8 (N, C, H, W): the held-out images every incumbent is measured against


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


def emoji_folder(folder: Path) -> Path:
    """The emoji collection, fetched into `folder` from the npm registry unless it holds images already."""
    if not (folder.is_dir() and any(folder.rglob("*.png"))):
        from vaetune.fetch.emoji import fetch_emoji

        fetch_emoji(folder)
    return folder


def prepare(name: str, work: Path, s: dict, emoji: Path) -> Collection:
    """Load the collection as vaetune does (its split), write its train/val images as PNG files."""
    from PIL import Image

    from vaetune.data import load_data
    from vaetune.spec import load_space

    source = [f"data.source={emoji_folder(emoji)}"] if name == "emoji" else []
    sets = [f"data.cache_dir={work / 'cache'}", *source, *s["sets"][name]]
    space = load_space(SPACES[name], overrides=sets)
    config = space.default_config()
    data = load_data(config.data)
    files = work / name
    for split in ("train", "val"):
        (files / split / "images").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(data.subset(split)[0]):  # (C, H, W) uint8
            Image.fromarray(img.permute(1, 2, 0).contiguous().numpy()).save(files / split / "images" / f"{i:05d}.png")
    return Collection(name, sets, config, grid_over(space), peer_ranges(space, config), files,
                      data.subset("test")[0][: s["reference"]])


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

    def incumbents(self, budget: float) -> list[tuple[float, Path]]:
        s = self.collection.config.search
        metric, mode = ("fid", "min") if self.method == "peer script" else (s.metric, s.mode)
        return incumbents(self.folder / "results" / NAME, metric, mode, self.t0, budget)

    def decoder(self, checkpoint: Path) -> Decoder:
        import peer_script

        if self.method == "peer script":
            return Decoder(*peer_script.load_decoder(checkpoint))
        return vaetune_decoder(checkpoint)


def command(run: Run, s: dict) -> list[str]:
    c, folder = run.collection, run.folder
    if run.method == "peer script":
        t = c.config.train
        return [str(PEER), "--train", str(c.files / "train"), "--val", str(c.files / "val"),
                "--storage", str(folder / "results"), "--name", NAME, "--space", json.dumps(c.peer_space),
                "--epochs", str(t.epochs), "--batch-size", str(t.batch_size), "--fid-n", str(t.fid_samples),
                "--num-samples", str(s["trials"] or MANY), "--max-concurrent", str(c.config.search.max_concurrent),
                "--seed", str(run.seed), "--dims", str(s["peer_dims"])]
    sets = [f"name={NAME}", f"search.storage={folder / 'results'}", f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
            f"search.seed={run.seed}", *c.sets]
    if run.method == "random+fifo":
        sets += ["search.sampler=random", "search.scheduler=fifo", "search.points_to_evaluate=[]",
                 f"search.num_samples={MANY}"]
    elif run.method == "grid":  # a smoke run's grid: the first point of each key (a grid runs every point)
        grid = {k: v[:1] for k, v in c.grid.items()} if s["trials"] else c.grid
        sets += ["search.points_to_evaluate=[]", *method_sets("grid", {"grid": grid})]
    if s["trials"]:
        sets.append(f"search.num_samples={s['trials']}")
    return ["-m", "vaetune.cli", "search", str(SPACES[c.name]), *(x for item in sets for x in ("--set", item))]


def launch(run: Run, s: dict, env: dict) -> Run:
    """Run one method until it ends or its budget is spent (then Ctrl-C, as a user stops a search);
    a method that fails keeps what it reported before (the progress line shows its exit status)."""
    budget = s["budget"][run.collection.name]
    run.folder.mkdir(parents=True, exist_ok=True)
    with open(run.folder / "log.txt", "w") as log:
        run.t0 = time.time()
        proc = subprocess.Popen([PYTHON, *command(run, s)], cwd=run.folder, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        try:
            run.code = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        run.wall = time.time() - run.t0
    return run


def paired(a: float, b: float) -> float:
    """a / b of one seed; NaN (left out) where neither has a value, 0 where only b has none."""
    if math.isinf(b) or b == 0:
        return math.nan if math.isinf(a) or b == 0 else 0.0
    return a / b


def row(figure: str, a: str, a_values: list[float], b: str, b_values: list[float], unit: str, *,
        goal: str = "", note: str = "") -> dict:
    """ratio_row's row, with the per-seed ratios of `paired` (an inf is a seed that never got there)."""
    out = ratio_row(SECTION, figure, a, a_values, b, b_values, unit=unit, goal=goal, note=note)
    known = sorted(r for r in map(paired, a_values, b_values) if not math.isnan(r))
    out.update(ratio=statistics.median(known) if known else math.nan, ratio_min=known[0] if known else math.nan,
               ratio_max=known[-1] if known else math.nan, reps=len(a_values))
    return out


# the figures of one collection (c) and method (m)
REACH = "{c}: seconds to within 5% of best found, {m} / budget"
HELD = "{c}: FID held at the budget, {m} / best found"
VS_REACH = "{c}: seconds to within 5%, vaetune / {m}"
VS_HELD = "{c}: FID held at the budget, vaetune / {m}"


def figures(name: str, curves: dict[str, list[list[tuple[float, float]]]], budget: float) -> list[dict]:
    """Per method: seconds to within WITHIN of the best any method found, and the FID held at the
    budget; then vaetune / each other method, seed by seed."""
    best, who = min(((v, f"{m} seed {i}") for m, runs in curves.items() for i, c in enumerate(runs) for _, v in c),
                    default=(math.inf, "none"))
    reach = {m: [budget_to_reach(c, best * (1 + WITHIN)) for c in runs] for m, runs in curves.items()}
    held = {m: [c[-1][1] if c else math.inf for c in runs] for m, runs in curves.items()}
    rows = []
    for m, runs in curves.items():
        never = sum(map(math.isinf, reach[m]))
        rows.append(row(REACH.format(c=name, m=m), m, reach[m], "budget", [budget] * len(runs), "s",
                        note=f"best found FID {best:.1f} ({who}); {never} of {len(runs)} seeds never within 5%"))
        rows.append(row(HELD.format(c=name, m=m), m, held[m], "best found", [best] * len(runs), "FID",
                        note=f"budget {budget:.0f} s from launch"))
    for m in (m for m in curves if m != "vaetune"):
        wins = sum(a < b for a, b in zip(held["vaetune"], held[m], strict=True))
        rows.append(row(VS_REACH.format(c=name, m=m), "vaetune", reach["vaetune"], m, reach[m], "s", goal="<= 0.5",
                        note="0: only vaetune got within 5%; NaN: neither did"))
        rows.append(row(VS_HELD.format(c=name, m=m), "vaetune", held["vaetune"], m, held[m], "FID",
                        goal="< 1 in >= 2 of 3 seeds", note=f"vaetune lower in {wins} of {len(held[m])} seeds"))
    return rows


def markdown(rows: list[dict]) -> str:
    """The table of benchmarks/README.md section 7, from the figure rows."""
    by = {r["figure"]: r for r in rows}

    def spread(r: dict, scale: float = 1.0, fmt: str = ".0f") -> str:
        return (f"{r['a_value']:{fmt}} ({r['ratio_min'] * scale:{fmt}}..{r['ratio_max'] * scale:{fmt}})"
                if not math.isnan(r["ratio_min"]) else f"{r['a_value']:{fmt}}")

    lines = ["| collection | method | s to within 5 % of best found | FID held at the budget "
             "| vaetune / it: s (goal ≤ 0.5) | vaetune / it: FID (goal < 1) |", "|---|---|---|---|---|---|"]
    for c in SPACES:
        for m in METHODS:
            reach, held = by[REACH.format(c=c, m=m)], by[HELD.format(c=c, m=m)]
            vs = [by.get(f.format(c=c, m=m)) for f in (VS_REACH, VS_HELD)]
            ratios = [f"{v['ratio']:.2f} ({v['ratio_min']:.2f}..{v['ratio_max']:.2f})" if v else "" for v in vs]
            if vs[1]:
                ratios[1] += f", {vs[1]['note'].removeprefix('vaetune ')}"
            lines.append(f"| {c} | {m} | {spread(reach, reach['b_value'])} | "
                         f"{spread(held, held['b_value'], '.1f')} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def run(mode: str = "full", seeds: int | None = None, keep: Path | None = None, emoji: Path | None = None,
        budget: float | None = None) -> list[dict]:
    """Every run, then the evaluator over every run's incumbents; returns the figure rows."""
    import torch

    from vaetune.fileio import cache_root

    s = sizes(mode)
    seeds = seeds or s["seeds"]
    if budget:
        s["budget"] = dict.fromkeys(s["budget"], budget)
    folder = contextlib.nullcontext(str(keep)) if keep else tempfile.TemporaryDirectory(prefix="vaetune-bench-peers-")
    with folder as work_:
        work = Path(work_)
        env = {**os.environ, "TORCH_HOME": str(pytorch_fid_home(work))}
        collections = [prepare(name, work, s, emoji or cache_root() / "benchmarks" / "emoji") for name in SPACES]
        turn = [METHODS[i:] + METHODS[:i] for i in range(len(METHODS))]  # the order rotates between seeds
        jobs = [Run(c, m, seed, work / "runs" / f"{c.name}_{m.replace(' ', '_')}_s{seed}")
                for c in collections for seed in range(seeds) for m in turn[seed % len(METHODS)]]
        with ThreadPoolExecutor(max_workers=s["parallel"]) as pool:
            done = list(pool.map(lambda r: launch(r, s, env), jobs))
        threads = torch.get_num_threads()
        torch.set_num_threads(os.cpu_count() or 1)  # nothing else runs now
        try:
            evaluate, rows = Evaluator(s["eval_n"]), []
            for c in collections:
                reference, curves = evaluate.features(c.test), {m: [] for m in METHODS}
                for r in (r for r in done if r.collection is c):
                    curves[r.method].append(evaluate.curve(r.incumbents(s["budget"][c.name]), r.decoder, reference))
                    failed = len(list(r.folder.glob(f"results/{NAME}/*/error.txt")))  # Tune's record of a crash
                    ended = "stopped at the budget" if r.code is None else f"exit {r.code}"
                    print(f"[{SECTION}] {c.name} {r.method} seed {r.seed}: {r.wall:.0f} s, {ended}, {failed} trials "
                          f"failed, incumbents {[(round(t), round(v, 1)) for t, v in curves[r.method][-1]]}", flush=True)
                    if r.code:  # it failed by itself: what it reported still counts, its log says why
                        print((r.folder / "log.txt").read_text()[-2000:], flush=True)
                rows += figures(c.name, curves, s["budget"][c.name])
        finally:
            torch.set_num_threads(threads)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument("--smoke", action="store_true", help="a code check; numbers meaningless")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--budget", type=float, default=None, help="seconds per run, both collections")
    p.add_argument("--emoji", default=None, help="the emoji folder (fetched there from the npm registry if empty)")
    p.add_argument("--keep", default=None, help="run under this folder and keep it (logs, results, checkpoints)")
    args = p.parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    rows = run(mode, args.seeds, Path(args.keep) if args.keep else None, Path(args.emoji) if args.emoji else None,
               args.budget)
    for r in rows:
        print(f"{r['figure']:<70} {r['ratio']:.3g} ({r['ratio_min']:.3g}..{r['ratio_max']:.3g})  {r['note']}")
    print(markdown(rows))


if __name__ == "__main__":
    main()
