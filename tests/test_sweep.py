"""`vaetune sweep`: an equal-budget study of β with seeds, run as a user runs it (real Ray, a real
MLflow store, real checkpoints), killed mid-way and resumed, then reported, exported and sampled.

One sweep of 3 values x 2 seeds (16 px sprites, 2 epochs) from a space file's default
configuration; the sweep from a finished search's best trial is in tests/test_search.py.
"""

from __future__ import annotations

import json
import statistics
import time

import pandas as pd
import pytest
from hold import kill_at_first_completion, trial_epochs
from PIL import Image
from test_search import Env

pytestmark = pytest.mark.slow  # a real sweep, killed and resumed

BETAS = [0.01, 0.1, 1.0]
SEEDS = 2
EPOCHS = 2
NAME = "tinyspace-sweep-beta"


def space() -> dict:
    return {
        "name": "tinyspace",
        "data": {"source": "builtin:sprites", "image_size": 16, "count": 600},
        "model": {"arch": "conv", "width": 8, "latent_dim": {"choice": [4, 2]}},
        "train": {"epochs": 5, "batch_size": 32, "lr": 0.003, "beta": {"loguniform": [0.001, 10]},
                  "num_threads": 1, "grid_size": 4},
        "search": {"num_samples": 20, "max_concurrent": 2},
    }


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The sweep, killed at its first completed trial (tests/hold.py), then resumed. Yields
    (env, epochs per trial before the kill, finished trials, resumed run)."""
    tmp = tmp_path_factory.mktemp("sweep")
    e = Env(tmp)
    raw = space()
    raw["data"]["cache_dir"] = str(tmp / "cache")
    path = e.write(raw)
    args = ["sweep", str(path), "--values", ",".join(map(str, BETAS)), "--seeds", str(SEEDS),
            "--set", f"train.epochs={EPOCHS}"]
    exp_dir = tmp / "results" / NAME
    t0 = time.perf_counter()
    finished = kill_at_first_completion(e, args, exp_dir, EPOCHS)
    before = trial_epochs(exp_dir)
    assert len(finished) < len(BETAS) * SEEDS
    resumed = e.run(*args, "--resume")
    print(f"\nsweep, killed and resumed: {time.perf_counter() - t0:.0f}s; {len(finished)} finished before the kill")
    yield e, before, finished, resumed
    e.cleanup()


def test_resumed_sweep_trains_every_value_and_seed_to_the_full_epochs_once(sweep):
    e, before, finished, resumed = sweep
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"report:  vaetune report {e.tmp / 'results' / NAME}" in resumed.stdout
    results = e.tmp / "results" / NAME
    after = trial_epochs(results)
    assert finished and all(after[t] == before[t] == list(range(1, EPOCHS + 1)) for t in finished)  # not run again
    summary = pd.read_csv(results / "summary.csv", dtype={"trial_id": str})
    assert len(summary) == len(BETAS) * SEEDS
    assert (summary["status"] == "completed").all() and (summary["epochs"] == EPOCHS).all()
    pairs = sorted(zip(summary["train.beta"], summary["train.seed"], strict=True))
    assert pairs == sorted((b, s) for b in BETAS for s in range(SEEDS))  # every (β, seed) once
    state = json.loads((results / "search.json").read_text())
    assert state["kind"] == "sweep"
    assert state["sweep"] == {"key": "train.beta", "values": BETAS, "seeds": SEEDS,
                              "source": str((e.tmp / "tinyspace.yaml").resolve()), "trial_id": None}


def test_report_of_the_sweep_gives_mean_and_std_over_seeds_at_the_last_epoch(sweep):
    e, before, finished, resumed = sweep
    report = e.here("report", f"results/{NAME}")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    results = e.tmp / "results" / NAME
    table = pd.read_csv(results / "report" / "kl_table.csv")
    assert sorted(table["beta"]) == BETAS
    assert (table["epoch"] == EPOCHS).all() and (table["n"] == SEEDS).all() and (table["table"] == 1).all()
    summary = pd.read_csv(results / "summary.csv")
    for _, row in table.iterrows():  # mean and sample std of the seeds' own last-epoch values
        seeds = summary[summary["train.beta"] == row["beta"]]["final/val/mse"].tolist()
        assert row["val/mse"] == pytest.approx(statistics.mean(seeds), rel=1e-9)
        assert row["val/mse_std"] == pytest.approx(statistics.stdev(seeds), rel=1e-9)
    md = (results / "report" / "report.md").read_text()
    assert " ± " in md and "not a study" not in md
    pictures = next(line for line in md.splitlines() if line.startswith("| validation images |"))
    assert pictures.count(f"(epoch {EPOCHS})") == len(BETAS)  # a picture for every β
    assert "Each row rests on one trial" not in md  # n = 2: differences are tested against the spread


def test_export_and_sample_from_the_sweep(sweep):
    e, before, finished, resumed = sweep
    exported = e.here("export", f"results/{NAME}", "--out", "best.pt")
    assert exported.returncode == 0, exported.stderr[-2000:]
    sampled = e.here("sample", "best.pt", "--n", "4", "--out", "grid.png")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert Image.open(e.tmp / "grid.png").size == (2 * 17 + 1, 2 * 17 + 1)
