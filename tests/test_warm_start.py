"""Warm start from an earlier search (`vaetune search SPACE --warm-start RESULTS`, `search.warm_start`).

The slow tests share one module fixture: a tiny earlier search, then a search warm-started from it
with a narrower β range, then that search resumed with one trial more; real Ray, real Optuna
studies, a real MLflow store, each command in a process of its own. What the new study must hold
is read from the earlier search's optuna.db, never from vaetune's own account of it.

The quick tests need no Ray: the earlier search is made as a search writes it (space.yaml and
search.json by `write_state`, its study driven through the searcher as Tune drives it), and each
refusal is one line, exit 2, before anything starts.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from guards import HANG_GUARD_S
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from PIL import Image

from vaetune import cli
from vaetune.results import (
    KIND,
    SEARCH_FILE,
    SUMMARY_FILE,
    SWEEP,
    TRACKING_FILE,
    TRIAL_ID,
    TRIALS_FILE,
    optuna_url,
)
from vaetune.search import IMPORTED_FROM, IMPORTED_TRIAL, plan_search, warm_start, write_state
from vaetune.search._preflight import load_shared_data
from vaetune.search._sampler import Imported, choose_sampler
from vaetune.search._searcher import StudySearcher
from vaetune.search._study import TUNE_TRIAL, make_sampler
from vaetune.spec import space_from_dict
from vaetune.tracking import TAG_IMPORTED, TAG_WARM_START, imported_tags

BETA, LATENT = "train.beta", "model.latent_dim"
EARLIER = {  # tests/test_faults.py's tiny space, with two searched keys and three trials
    "name": "early",
    "data": {"source": "builtin:sprites", "image_size": 16, "count": 64, "min_images": 16},
    "model": {"arch": "conv", "width": 4, "latent_dim": {"choice": [2, 4]}},
    "train": {"epochs": 2, "batch_size": 16, "num_threads": 1, "grid_size": 2, "beta": {"loguniform": [0.01, 1.0]}},
    "search": {"num_samples": 3, "max_concurrent": 1, "max_failures": 0},
}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def space(folder: Path, name: str, **edits) -> Path:
    """EARLIER named `name`, its cache and MLflow store in `folder`, with dotted-key edits (a__b: a.b)."""
    raw = copy.deepcopy(EARLIER)
    raw["name"] = name
    raw["data"]["cache_dir"] = str(folder / "cache")
    raw["tracking"] = {"uri": f"sqlite:///{folder / 'mlflow.db'}"}
    for key, value in edits.items():
        node = raw
        *parents, leaf = key.replace("__", ".").split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = folder / f"{name}-{len(list(folder.glob(f'{name}*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def trials_of(folder: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=optuna_url(folder)).trials


# ---------------------------------------------------------------------------------------------
# The slow tier: an earlier search, a warm-started one, and that one resumed


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """Runs the three searches; yields their folder, outputs and the new space's β bounds."""
    tmp = tmp_path_factory.mktemp("warm")
    ray_tmp = tempfile.mkdtemp(prefix="vw", dir="/tmp")  # short: Ray's socket paths are limited
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"RAY_TMPDIR": ray_tmp, "PYTHONUNBUFFERED": "1"})

    def vaetune(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "vaetune.cli", *args], cwd=tmp, env=env, capture_output=True,
                              text=True, timeout=HANG_GUARD_S)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    try:
        early = vaetune("search", str(space(tmp, "early")))
        # a lower bound between the two smallest finished β: at least one earlier trial lies outside it
        betas = sorted(t.params[BETA] for t in trials_of(tmp / "results" / "early", "early") if t.state in FINISHED)
        assert len(betas) >= 2, betas
        low = math.sqrt(betas[0] * betas[1])
        late_space = space(tmp, "late", train__beta={"loguniform": [low, 1.0]})
        late = vaetune("search", str(late_space), "--warm-start", "results/early")
        before = trials_of(tmp / "results" / "late", "late")
        ran = json.loads((tmp / "results" / "late" / TRIALS_FILE).read_text())  # every Tune trial that started
        summary = pd.read_csv(tmp / "results" / "late" / SUMMARY_FILE)
        resumed = vaetune("search", str(late_space), "--warm-start", "results/early", "--resume",
                          "--set", f"search.num_samples={EARLIER['search']['num_samples'] + 1}")
        yield {"tmp": tmp, "early": early, "late": late, "resumed": resumed, "low": low, "before": before,
               "ran": ran, "summary": summary}
    finally:
        subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)  # only this module's Ray carries it
        shutil.rmtree(ray_tmp, ignore_errors=True)


def split(trials):
    """A study's trials: those imported (by their user attr) and its own."""
    imported = [t for t in trials if IMPORTED_FROM in t.user_attrs]
    return imported, [t for t in trials if IMPORTED_FROM not in t.user_attrs]


@pytest.mark.slow
def test_the_new_study_holds_the_earlier_finished_trials_in_range_as_they_ended(searches):
    tmp, low = searches["tmp"], searches["low"]
    earlier = trials_of(tmp / "results" / "early", "early")
    expected = {t.user_attrs[TUNE_TRIAL]: t for t in earlier if t.state in FINISHED and t.params[BETA] >= low}
    imported, _ = split(trials_of(tmp / "results" / "late", "late"))
    assert expected and len(expected) < len(earlier)  # some imported, some left out
    got = {t.user_attrs[IMPORTED_TRIAL]: t for t in imported}
    assert got.keys() == expected.keys()
    for trial_id, t in got.items():
        e = expected[trial_id]
        assert (t.state, t.values, t.params, t.intermediate_values) == (e.state, e.values, e.params, e.intermediate_values)
        assert Path(t.user_attrs[IMPORTED_FROM]) == tmp / "results" / "early"
    # the console's first line says how many came and how many were left out
    first = next(line for line in searches["late"].stdout.splitlines() if line.startswith("search late:"))
    assert f"{len(expected)} of {len(earlier)} trials of {tmp / 'results' / 'early'} imported" in first
    assert f"{len(earlier) - len(expected)} left out" in first
    assert f"+ {len(expected)} imported" in first  # the sampler was sized with them


@pytest.mark.slow
def test_num_samples_new_trials_ran_none_an_imported_configuration_and_none_ranked_as_imported(searches):
    tmp = searches["tmp"]
    n = EARLIER["search"]["num_samples"]
    imported, own = split(searches["before"])
    assert len(own) == n and all(t.state in FINISHED for t in own)
    ran = searches["ran"]
    assert len(ran) == n
    tried = [{k: t["config"][k] for k in (BETA, LATENT)} for t in ran.values()]
    assert not [p for p in tried if p in [t.params for t in imported]]
    summary = searches["summary"]
    assert sorted(summary[TRIAL_ID]) == sorted(ran)  # only this search's own trials are rows, so ranked
    assert not set(summary[TRIAL_ID]) & {t.user_attrs[IMPORTED_TRIAL] for t in imported}
    best = next(line for line in searches["late"].stdout.splitlines() if line.startswith("best trial "))
    assert best.split()[2].rstrip(":") in ran
    assert f"{len(imported)} trials of {tmp / 'results' / 'early'} imported as observations" in searches["late"].stdout


@pytest.mark.slow
def test_search_json_and_the_mlflow_parent_run_name_the_imported_trials(searches):
    tmp = searches["tmp"]
    imported, _ = split(searches["before"])
    ids = sorted(t.user_attrs[IMPORTED_TRIAL] for t in imported)
    state = json.loads((tmp / "results" / "late" / SEARCH_FILE).read_text())
    assert sorted(state["warm_start"]["imported"]) == ids
    assert Path(state["warm_start"]["from"]) == tmp / "results" / "early"
    tracking = json.loads((tmp / "results" / "late" / TRACKING_FILE).read_text())
    parent = MlflowClient(tracking["uri"]).get_run(tracking["parent_run_id"])
    assert sorted(parent.data.tags[TAG_IMPORTED].split(", ")) == ids
    assert Path(parent.data.tags[TAG_WARM_START]) == tmp / "results" / "early"


@pytest.mark.slow
def test_resuming_the_warm_started_search_imports_nothing_again(searches):
    tmp = searches["tmp"]
    imported_before, own_before = split(searches["before"])
    imported, own = split(trials_of(tmp / "results" / "late", "late"))
    assert [t.number for t in imported] == [t.number for t in imported_before]
    assert len(own) == len(own_before) + 1 and all(t.state in FINISHED for t in own)
    assert len(pd.read_csv(tmp / "results" / "late" / SUMMARY_FILE)) == EARLIER["search"]["num_samples"] + 1


# ---------------------------------------------------------------------------------------------
# The quick tier: an earlier search made without Ray, and the refusals


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """An earlier search's results folder as a search writes it: space.yaml and search.json (with
    its data's fingerprint), and its study driven through the searcher as Tune drives it. Its
    trials: β 0.5 completed, 0.3 stopped at epoch 1, 0.2 failed, 0.02 completed."""
    tmp = tmp_path_factory.mktemp("earlier")
    plan = plan_search(space_from_dict(yaml.safe_load(space(tmp, "early").read_text()), "early.yaml"))
    folder = tmp / "results" / "early"
    _, fingerprints = load_shared_data(plan)
    write_state(folder, plan, space_file="early.yaml", overrides=[], data=fingerprints)
    points = [{BETA: b, LATENT: z} for b, z in ((0.5, 2), (0.3, 4), (0.2, 2), (0.02, 4))]
    searcher = StudySearcher(metric="val/elbo", mode="min", space={k: d.to_optuna() for k, d in plan.space.params.items()},
                             sampler=make_sampler("random", 0), max_epochs=2, study_name="early",
                             storage=optuna.storages.RDBStorage(optuna_url(folder)), points_to_evaluate=points)
    for tid in "abcd":
        searcher.suggest(tid)
        searcher.on_trial_result(tid, {"val/elbo": 160.0, "epoch": 1})
    searcher.on_trial_complete("a", {"val/elbo": 150.0, "epoch": 2})
    searcher.on_trial_complete("b", {"val/elbo": 158.0, "epoch": 1})
    searcher.on_trial_complete("c", None, error=True)
    searcher.on_trial_complete("d", {"val/elbo": 155.0, "epoch": 2})
    return folder


def test_a_subset_of_keys_and_a_narrower_range_import_the_finished_trials_inside_it(earlier, tmp_path, caplog):
    """β in [0.1, 1] and the latent size fixed: the completed β 0.5 and the stopped β 0.3 are
    imported as they ended there, the failed one and β 0.02 are left out, and the log says the
    latent size's values are dropped."""
    raw = yaml.safe_load(space(tmp_path, "late", train__beta={"loguniform": [0.1, 1.0]}, model__latent_dim=4).read_text())
    plan = plan_search(space_from_dict({**raw, "search": {**raw["search"], "warm_start": str(earlier)}}, "late.yaml"))
    warm = warm_start(plan, tmp_path / "results" / "late")
    there = {t.user_attrs[TUNE_TRIAL]: t for t in trials_of(earlier, "early")}
    assert warm.ids == ["a", "b"] and warm.total == len(there) == 4
    for t in warm.trials:
        e = there[t.user_attrs[IMPORTED_TRIAL]]
        assert (t.state, t.values, t.intermediate_values) == (e.state, e.values, e.intermediate_values)
        assert t.params == {BETA: e.params[BETA]}  # the key fixed here is dropped
    assert warm.imported == Imported(complete=1, pruned=1)
    assert warm.left_out == {"failed": 1, f"outside {BETA}'s range here": 1}
    assert LATENT in caplog.text and "fixed here" in caplog.text
    # into a new study: the searcher adds them when it creates it, and only then
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    for i in range(2):  # a search, then the same search resumed
        s = StudySearcher(metric="val/elbo", mode="min", space={BETA: plan.space.params[BETA].to_optuna()},
                          sampler=make_sampler("tpe", 0), max_epochs=2, storage=storage, study_name="late",
                          observations=list(warm.trials))
        s.suggest(f"new{i}")
    states = [t.state for t in s.study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.RUNNING]


def test_imported_trials_count_towards_the_samplers_budget(earlier, tmp_path):
    """Two trials alone are too few for a model; with three imported observations TPE models them
    from the first trial, and the console's sampler phrase says so."""
    plan = plan_search(space_from_dict(yaml.safe_load(space(tmp_path, "late", search__num_samples=2).read_text()), "l.yaml"))
    assert choose_sampler(plan).name == "random"
    choice = choose_sampler(plan, imported=Imported(complete=2, pruned=1))
    assert (choice.name, choice.startup, choice.observed) == ("tpe", 0, 3)
    assert "2 trials + 3 imported" in choice.describe()


def test_the_mlflow_tag_of_many_imported_trials_fits_mlflows_limit():
    ids = [f"{i:08x}" for i in range(2000)]  # 20,000 characters listed
    tags = imported_tags("/r/early", ids)
    assert tags[TAG_WARM_START] == "/r/early"
    assert len(tags[TAG_IMPORTED]) <= 8000 and tags[TAG_IMPORTED].endswith("(2000 in all)")
    assert tags[TAG_IMPORTED].startswith("00000000, 00000001, ")


def _images(folder: Path) -> str:
    """64 small PNGs: images other than the built-in sprites."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(64):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"im{i:02d}.png")
    return str(folder)


def _sweep_of(earlier: Path) -> str:
    """The earlier folder as a sweep's (search.json of kind sweep, as `vaetune sweep` writes it)."""
    folder = earlier.parent / "early-sweep"
    if not folder.exists():
        shutil.copytree(earlier, folder)
        state = json.loads((folder / SEARCH_FILE).read_text())
        (folder / SEARCH_FILE).write_text(json.dumps({**state, KIND: SWEEP}))
    return str(folder)


REFUSALS = [  # (id, edits of the new space, the folder given, what the one line names)
    ("a wider range", {"train__beta": {"loguniform": [0.001, 1.0]}}, None,
     ("train.beta", "loguniform [0.001, 1.0]", "loguniform [0.01, 1.0]", "space.yaml", "inside the earlier range")),
    ("another kind", {"train__beta": {"uniform": [0.1, 0.5]}}, None,
     ("train.beta", "uniform [0.1, 0.5]", "loguniform [0.01, 1.0]", "kind")),
    ("a key it did not search", {"train__lr": {"loguniform": [0.001, 0.01]}}, None,
     ("train.lr", "fixed at 0.001", "searches only keys the earlier search searched")),
    ("another metric", {"search__metric": "val/mse"}, None,
     ("search.metric", "got val/mse", "has val/elbo", "search.json", "same metric")),
    ("other epochs", {"train__epochs": 3}, None, ("train.epochs", "got 3", "has 2", "as many")),
    ("another fixed value", {"train__lr": 0.01}, None, ("train.lr", "got 0.01", "has 0.001", "same fixed configuration")),
    ("other images", {"data__source": "IMAGES"}, None,
     ("data.source", "fingerprint", "64 images", "search.json", "same images")),
    ("a grid search", {"train__beta": {"grid": [0.1, 0.5]}, "model__latent_dim": {"grid": [2, 4]},
                       "search__num_samples": 4}, None, ("search.warm_start", "grid search", "train the imported")),
    ("a folder that is no search", {}, lambda e: str(e.parent), ("search.warm_start", "no search.json")),
    ("a sweep's folder", {}, _sweep_of, ("search.warm_start", "kind 'sweep'")),
    ("no such folder", {}, lambda e: str(e.parent / "nope"), ("search.warm_start", "nope", "no such folder")),
]


@pytest.mark.parametrize("edits,given,culprit", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_mismatched_earlier_search_is_refused_in_one_line_before_anything_starts(
        earlier, tmp_path, capsys, monkeypatch, edits, given, culprit):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    edits = {k: _images(tmp_path / "images") if v == "IMAGES" else v for k, v in edits.items()}
    path = space(tmp_path, "late", **edits)
    folder = given(earlier) if given else str(earlier)
    try:
        code = cli.main(["search", str(path), "--warm-start", folder])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err, err
    line = err[-1]
    assert line.startswith("vaetune search: error: "), err
    assert all(c in line for c in culprit), line
    # nothing of the new search was written: no results folder, no MLflow store
    assert not (tmp_path / "results" / "late").exists() and not (tmp_path / "mlflow.db").exists()
