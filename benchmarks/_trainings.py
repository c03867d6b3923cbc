"""Models trained to the end outside a search, every checkpoint kept: the material of the loss and
rung benchmarks (bench_losses.py, bench_rungs.py).

Each training is `vaetune train SPACE --set ... --out FOLDER` in a subprocess of its own, one thread,
`parallel` at a time (two trials share the two cores as a search's do), at Ray's worker niceness.
A training whose last checkpoint is there is not run again, so a benchmark resumes where it stopped;
one stopped half-way is started again from scratch (its seconds would not be one run's).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from _common import PYTHON, ROOT, nice_worker

DONE = "done.json"  # in a training's folder once it finished: its seconds and settings


@dataclass(frozen=True)
class Training:
    key: str  # its folder's name, unique within a benchmark
    space: Path
    sets: tuple[str, ...]  # --set items: the collection, the configuration, the epochs
    values: dict = field(default_factory=dict, compare=False)  # what varies, for the tables

    def command(self, out: Path) -> list[str]:
        return [PYTHON, "-m", "vaetune.cli", "train", str(self.space), "--out", str(out),
                *(x for item in self.sets for x in ("--set", item))]


def checkpoints(folder: Path) -> dict[int, Path]:
    """epoch -> checkpoint folder of a finished training."""
    return {int(p.name.removeprefix("checkpoint_epoch")): p for p in sorted(folder.glob("checkpoint_epoch*"))
            if (p / "checkpoint.pt").is_file()}


def finished(folder: Path) -> dict | None:
    try:
        return json.loads((folder / DONE).read_text())
    except (OSError, ValueError):
        return None


def _train(t: Training, work: Path) -> dict:
    folder = work / t.key
    done = finished(folder)
    if done is not None:
        return done
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    log = work / f"{t.key}.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(t.command(folder), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              preexec_fn=nice_worker, timeout=3600)
    seconds = time.perf_counter() - t0
    failed = proc.returncode != 0  # a diverged configuration is a result too, without a last checkpoint
    done = {"key": t.key, "seconds": seconds, "failed": failed, **t.values}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE).write_text(json.dumps(done))
    print(f"[trainings] {t.key}: {seconds:.0f} s{f', exit {proc.returncode} (see {log})' if failed else ''}",
          flush=True)
    return done


def train_all(trainings: Iterable[Training], work: Path, parallel: int = 2) -> list[dict]:
    """Train each (or find it trained) under `work`; returns each one's done record, in order."""
    trainings = list(trainings)
    work.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(lambda t: _train(t, work), trainings))
