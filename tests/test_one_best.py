"""One best trial: a constrained search run as a user runs it, then every place that names its
best trial asked which one — `vaetune export`, MLflow's outcome on the search's parent run, the
search's end line (summary.csv's best), the console's last summary line, the report's "Best
trial" section, the trial `vaetune sweep` starts from, and the gallery's first trial and its
download — and all must name the same one.

The search is held to val/kl <= CEILING and ranked by val/mse. Its three trials are fixed
(points_to_evaluate): at β = 0.01 the KL grows past the ceiling (about 9 nats at epoch 2 here)
while the reconstructions are the best of the three, so the best trial without the constraint
breaks it; β = 1 and β = 10 stay far below it (under 1 nat). The expected trial is worked out
here from each trial's own result.json, by another method than vaetune's: a trial counts when
its last epoch holds the ceiling and it kept a checkpoint, its value is its lowest val/mse at an
epoch inside the ceiling, and the lowest value wins.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from test_search import Env

NAME = "onebest"
CEILING = 5.0  # nats per image: val/kl above it breaks the constraint
METRIC = "val/mse"

pytestmark = pytest.mark.slow


def one_best_space(cache: Path) -> dict:
    return {
        "name": NAME,
        "data": {"source": "builtin:sprites", "image_size": 16, "count": 600, "cache_dir": str(cache)},
        "model": {"arch": "conv", "width": 8, "latent_dim": 4},
        "train": {"epochs": 2, "batch_size": 64, "lr": 0.003, "beta": {"loguniform": [0.01, 10.0]},
                  "num_threads": 1, "grid_size": 4, "fid_every": 0},
        "search": {"metric": METRIC, "mode": "min", "scheduler": "fifo", "constraints": {"val/kl": {"max": CEILING}},
                   "num_samples": 3, "max_concurrent": 2,
                   "points_to_evaluate": [{"train.beta": 0.01}, {"train.beta": 1.0}, {"train.beta": 10.0}]},
    }


class Search:
    def __init__(self, env: Env, search, export, report):
        self.env, self.search, self.export, self.report = env, search, export, report
        self.results = env.tmp / "results" / NAME
        self.trials = {}  # trial id -> (its number in the search, its reports, whether it kept a checkpoint)
        for folder in self.results.glob("run_trial_*"):
            _, _, trial_id, number = folder.name.split("_")[:4]  # Tune's run_trial_<id>_<number>_...
            reports = [json.loads(line) for line in (folder / "result.json").read_text().splitlines() if line.strip()]
            kept = any((c / "checkpoint.pt").is_file() for c in folder.glob("checkpoint_*"))
            self.trials[trial_id] = (int(number), reports, kept)


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Search:
    env = Env(tmp_path_factory.mktemp("onebest"))
    try:
        search = env.run("search", str(env.write(one_best_space(env.tmp / "cache"))))
        assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
        export = env.run("export", f"results/{NAME}", "--out", "best.pt")
        assert export.returncode == 0, export.stdout[-3000:] + export.stderr[-3000:]
        report = env.run("report", f"results/{NAME}")
        assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
        yield Search(env, search, export, report)
    finally:
        env.cleanup()


def by_hand(trials: dict, constrained: bool = True) -> str:
    """The best trial from the trials' own reports (see the module's docstring)."""
    values = {}
    for trial_id, (_, reports, kept) in trials.items():
        inside = [r for r in reports if not constrained or r["val/kl"] <= CEILING]
        if kept and inside and (not constrained or reports[-1]["val/kl"] <= CEILING):
            values[trial_id] = min(r[METRIC] for r in inside)
    return min(values, key=values.get)


def test_the_best_trial_without_the_constraint_breaks_it(done):
    assert len(done.trials) == 3
    free = by_hand(done.trials, constrained=False)
    _, reports, _ = done.trials[free]
    assert reports[-1]["val/kl"] > CEILING, reports  # the arrangement: the unconstrained best breaks the ceiling
    assert by_hand(done.trials) != free


def test_every_decider_names_the_same_best_trial(done):
    from vaetune.gallery import export_bytes, open_gallery
    from vaetune.search import plan_sweep

    expected = by_hand(done.trials)
    named = {}
    # 1. vaetune export: its line, and the file it wrote
    named["export"] = re.search(r"^best trial (\S+) by ", done.export.stdout, re.M)[1]
    exported = torch.load(done.env.tmp / "best.pt", weights_only=False)
    named["export's file"] = exported["source"]["trial_id"]
    # 2. MLflow: the parent run's tag names the best trial's run, which names its trial
    client = MlflowClient(f"sqlite:///{done.env.tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    best_run = client.get_run(parent.data.tags["vaetune.best_run_id"])
    named["MLflow's outcome"] = best_run.data.tags["vaetune.trial_id"]
    # 3. the search's end line (summary.csv's best trial)
    named["the search's end line"] = re.search(r"^best trial (\S+): ", done.search.stdout, re.M)[1]
    # 4. the console's last summary line names the trial by its number
    numbers = {number: trial_id for trial_id, (number, _, _) in done.trials.items()}
    last = [line for line in done.search.stdout.splitlines() if " · best #" in line][-1]
    named["the console"] = numbers[int(re.search(r" · best #(\d+) ", last)[1])]
    # 5. the report's "Best trial" section
    md = (done.results / "report" / "report.md").read_text()
    section = md[md.index("## Best trial"):]
    named["the report"] = re.search(r"Trial (\S+) is best by ", section)[1]
    # 6. the trial a sweep of this search starts from
    named["vaetune sweep"] = plan_sweep(done.results).trial_id
    # 7. the gallery: its first trial, and the file its download gives
    gallery = open_gallery(done.results)
    first = gallery.entries[0].key
    named["the gallery's #1"] = first
    assert gallery.table["trial"].iloc[0] == first and gallery.entries[0].label.startswith(f"#1 {first} ")
    download = torch.load(io.BytesIO(export_bytes(gallery, first)), weights_only=False)
    named["the gallery's download"] = download["source"]["trial_id"]
    assert download["source"]["selected_by"] == exported["source"]["selected_by"] == f"min best/{METRIC}"
    differ = {who: trial for who, trial in named.items() if trial != expected}
    assert not differ, f"the best trial is {expected}, but {differ}"


def test_each_trials_best_is_its_best_epoch_inside_the_constraint(done):
    """summary.csv's best/val/mse of each trial, and the checkpoint it names (the one export hands
    over), are of the trial's best epoch whose KL held the ceiling: for β = 0.01 its first epoch,
    though its second had the lower loss (and broke the ceiling)."""
    import pandas as pd

    summary = pd.read_csv(done.results / "summary.csv", dtype={"trial_id": str}).set_index("trial_id")
    earlier = 0
    for trial_id, (_, reports, _) in done.trials.items():
        inside = [r for r in reports if r["val/kl"] <= CEILING]
        if not inside:  # never inside the ceiling: no best value
            assert pd.isna(summary.loc[trial_id, f"best/{METRIC}"])
            continue
        best = min(inside, key=lambda r: r[METRIC])
        assert summary.loc[trial_id, f"best/{METRIC}"] == pytest.approx(best[METRIC])
        assert Path(summary.loc[trial_id, "checkpoint"]).name == best["checkpoint_dir_name"]
        earlier += best["epoch"] < reports[-1]["epoch"]
    assert earlier, "no trial's best epoch inside the ceiling came before its last: nothing was checked"
