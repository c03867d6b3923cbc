"""Cheap rungs: at ASHA's rungs a trial measures only what ranks it; the full set where asked;
the report never fills a measure from another epoch; where the trials' time went.

The plan of evaluations is worked out by hand for each case; the evaluation of a subset of the
image sets is checked against the full evaluation of the same model (a real registry model on
real sprites); a real search (Ray, Optuna, ASHA, MLflow on sqlite) shows the plan in each
trial's result.json, the time split line and the report's note.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from vaetune.metrics import evaluate_generative
from vaetune.metrics.registry import GMM_KEYS, SAMPLE_KEYS
from vaetune.search import evaluation_epochs, ranking_sets
from vaetune.spec import space_from_dict


def config(**sections):
    raw = {"name": "c", "data": {"source": "builtin:sprites", "image_size": 16, "count": 200},
           "model": {"arch": "conv", "width": 8, "latent_dim": 4},
           "train": {"epochs": 10, "fid_every": 10, "fid_samples": 16},
           "search": {"metric": "eval/fid_sample"}}
    for section, values in sections.items():
        raw[section].update(values)
    return space_from_dict(raw, "c.yaml").default_config()


@pytest.mark.parametrize(("sections", "full", "ranking", "sets"), [
    # the quick start's shape: FID every 10 epochs = only the last; rungs 2 and 6 measure the samples
    ({}, {10}, {2, 6}, {"normal"}),
    # ranked by the fitted prior's FID: the rungs decode samples from the prior only
    ({"search": {"metric": "eval/fid_sample_gmm"}}, {10}, {2, 6}, {"gmm"}),
    # ranked by FID of reconstructions: reconstructions only
    ({"search": {"metric": "eval/fid_recon"}}, {10}, {2, 6}, {"recon"}),
    # ranked by a val/ metric: nothing to decode at the rungs, no evaluation there
    ({"search": {"metric": "val/elbo"}}, {10}, set(), set()),
    # fid_every 5: every measure at 5 and 10; the rung at 2 and 6 measure the samples
    ({"train": {"epochs": 10, "fid_every": 5, "fid_samples": 16}}, {5, 10}, {2, 6}, {"normal"}),
    # a rung on a fid_every epoch is a full evaluation: rungs 2 and 6, fid_every 2 -> full 2, 4, ..., 10
    ({"train": {"epochs": 10, "fid_every": 2, "fid_samples": 16}}, {2, 4, 6, 8, 10}, set(), {"normal"}),
    # search.rung_eval full: every measure at the rungs too
    ({"search": {"metric": "eval/fid_sample", "rung_eval": "full"}}, {2, 6, 10}, set(), {"normal"}),
    # FID off: no evaluations at all
    ({"train": {"epochs": 10, "fid_every": 0}, "search": {"metric": "val/elbo"}}, set(), set(), set()),
])
def test_the_evaluation_plan_of_a_trial(sections, full, ranking, sets):
    cfg = config(**sections)
    assert evaluation_epochs(cfg, [2, 6]) == (frozenset(full), frozenset(ranking))
    assert ranking_sets(cfg) == frozenset(sets)


@pytest.mark.slow
def test_a_subset_of_image_sets_measures_what_the_full_evaluation_measures_of_them(offline_caches, tmp_path):
    from vaetune.data import load_data
    from vaetune.models import build_model, fit_model_prior

    cfg = config(train={"epochs": 10, "fid_every": 10, "fid_samples": 8})  # 8 images a set: 4 evaluations here
    data = load_data(cfg.data.model_copy(update={"cache_dir": str(tmp_path / "data")}))
    torch.manual_seed(0)
    model = build_model(cfg.model, tuple(data.images.shape[1:]))
    prior = fit_model_prior(model, data.subset("train")[0], None, device="cpu", components=2,
                            covariance="diag", seed=0)
    run = dict(cache_dir=tmp_path / "fid", prior=prior)
    full = evaluate_generative(model, data, cfg.train, "cpu", **run)
    samples = evaluate_generative(model, data, cfg.train, "cpu", sets={"normal"}, **run)
    gmm = evaluate_generative(model, data, cfg.train, "cpu", sets={"gmm"}, **run)
    recon = evaluate_generative(model, data, cfg.train, "cpu", sets={"recon"}, **run)
    assert set(samples) == {*SAMPLE_KEYS, "eval/kid_sample_std", "eval/fid_n"}
    assert set(gmm) == {*GMM_KEYS, "eval/fid_n"} and set(recon) == {"eval/fid_recon", "eval/fid_n"}
    for part in (samples, gmm, recon):  # the same seeded images as in the full evaluation
        for key, value in part.items():
            assert value == pytest.approx(full[key], rel=1e-9, nan_ok=True), key
    with pytest.raises(ValueError, match="accepted: normal, recon, gmm"):
        evaluate_generative(model, data, cfg.train, "cpu", sets={"pictures"}, **run)


# ---------------------------------------------------------------------------------------------
# A real search: rungs at epochs 1 and 2 measure the samples, the last epoch (3) everything

NAME = "cheap"


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    work = tmp_path_factory.mktemp("cheap_search")
    raw = {"name": NAME,
           "data": {"source": "builtin:sprites", "image_size": 16, "count": 400, "cache_dir": str(work / "cache")},
           "model": {"arch": "conv", "width": 8, "latent_dim": {"choice": [2, 4]}},
           "train": {"epochs": 3, "batch_size": 32, "lr": {"loguniform": [0.001, 0.005]}, "num_threads": 1,
                     "grid_size": 4, "fid_every": 3, "fid_samples": 8, "prior_components": 2},
           "search": {"num_samples": 3, "max_concurrent": 2, "grace_period": 1, "reduction_factor": 2,
                      "metric": "eval/fid_sample"}}
    (work / "space.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    ray_tmp = tempfile.mkdtemp(prefix="vt", dir="/tmp")  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1", VAETUNE_CACHE=str(work / "vt_cache"),
               TORCH_HOME=str(work / "torch"))
    try:
        proc = subprocess.run([sys.executable, "-m", "vaetune.cli", "search", "space.yaml"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=1200)  # a hang guard: ~2 min here
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work, proc


def _reports(work: Path) -> dict[str, list[dict]]:
    """Each trial's reports, from Tune's result.json."""
    return {path.parent.name: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            for path in (work / "results" / NAME).glob("*/result.json")}


def _finite(record: dict, key: str) -> bool:
    value = record.get(key)
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.mark.slow
def test_rungs_measure_the_samples_and_the_last_epoch_everything(search):
    work, _ = search
    reports = _reports(work)
    assert len(reports) == 3
    for records in reports.values():
        for r in records:
            # every epoch of this search is an evaluation: rungs 1, 2 (samples), last 3 (all)
            assert r["eval/epoch"] == r["epoch"]
            assert all(_finite(r, k) for k in (*SAMPLE_KEYS, "eval/kid_sample_std")), r
            if r["epoch"] < 3:
                assert not _finite(r, "eval/fid_recon") and not any(_finite(r, k) for k in GMM_KEYS), r
            else:
                assert _finite(r, "eval/fid_recon") and all(_finite(r, k) for k in GMM_KEYS), r
    assert any(r["epoch"] == 3 for records in reports.values() for r in records)  # ASHA lets one finish


@pytest.mark.slow
def test_the_search_ends_with_where_the_trials_time_went(search):
    work, proc = search
    line = next(x for x in proc.stdout.splitlines() if x.startswith("trials' time"))
    m = re.fullmatch(r"trials' time (\d+) s: training (\d+) % · evaluation (\d+) % · checkpoints (\d+) % · "
                     r"start-up and waiting (\d+) %", line)
    assert m, line
    records = [r for rs in _reports(work).values() for r in rs]
    total = sum(r["time_this_iter_s"] for r in records)  # Tune's own clock of every report
    assert int(m[1]) == pytest.approx(total, abs=1)
    assert int(m[2]) == pytest.approx(100 * sum(r["time/train_s"] for r in records) / total, abs=0.51)
    assert int(m[3]) == pytest.approx(100 * sum(r["time/eval_s"] for r in records) / total, abs=0.51)
    assert int(m[4]) == pytest.approx(100 * sum(r["time/checkpoint_s"] for r in records) / total, abs=0.51)
    assert sum(int(m[i]) for i in range(2, 6)) == pytest.approx(100, abs=2)  # rounding of four parts


@pytest.mark.slow
def test_the_report_says_what_a_rung_did_not_measure(search):
    from vaetune.report import kl_tables
    from vaetune.results import load_results

    work, _ = search
    results = load_results(work / "results" / NAME)
    tables = {t.epoch: t for t in kl_tables(results)}
    rung = tables[1]  # every trial reached the first rung
    assert {"eval/fid_recon", *GMM_KEYS} <= set(rung.missing)
    assert not set(SAMPLE_KEYS) & set(rung.missing)
    note = next(n for n in rung.notes if "not measured at epoch 1" in n)
    assert note.startswith("FID GMM, KID GMM, precision GMM, recall GMM, FID recon: —") and "epochs 3." in note
    if 3 in tables:  # the last epoch measured everything
        assert "eval/fid_recon" not in tables[3].missing


def test_a_search_ranked_by_a_val_metric_keeps_its_trials_at_a_rung_without_fid(tmp_path):
    """Ranked by val/elbo, a rung measures no FID (nothing to decode): at epoch 3 trial c's FID was
    carried from epoch 1, so its row is there, ranked by val/elbo, with FID not measured ("—"),
    while a's FID, measured at 3, is shown. (Ranked by FID, c would be left out: test_report.)"""
    import pandas as pd

    from vaetune.report import kl_tables
    from vaetune.results import SearchResults

    space = space_from_dict({"train": {"epochs": 3, "fid_every": 3, "beta": {"choice": [0.01, 1.0]}},
                             "search": {"scheduler": "asha", "grace_period": 1, "reduction_factor": 3,
                                        "metric": "val/elbo"}})
    elbo, fid, measured = {"a": [90, 80, 70], "c": [95, 85, 75]}, {"a": [300, 300, 250], "c": [100] * 3}, \
        {"a": [1, 1, 3], "c": [1, 1, 1]}
    histories = {t: pd.DataFrame({"epoch": [1, 2, 3], "val/elbo": elbo[t], "val/kl": 1.0, "val/mse": 0.02,
                                  "eval/fid_sample": fid[t], "eval/epoch": measured[t]}) for t in elbo}
    summary = pd.DataFrame({"trial_id": ["a", "c"], "train.beta": [0.01, 1.0], "status": "completed", "epochs": 3,
                            "final/val/elbo": [70, 75], "final/eval/fid_sample": [250, 100], "checkpoint": "",
                            "trial_path": "", "mlflow_run_id": ""})
    results = SearchResults(folder=tmp_path, state={"name": "x", "metric": "val/elbo", "mode": "min",
                                                    "searched": ["train.beta"], "max_epochs": 3},
                            summary=summary, tracking={}, space=space, histories=histories)
    at3 = next(t for t in kl_tables(results) if t.epoch == 3)
    rows = {r.trial_id: r.values for r in at3.rows}
    assert set(rows) == {"a", "c"} and rows["c"]["val/elbo"] == 75
    assert rows["a"]["eval/fid_sample"] == 250 and rows["c"]["eval/fid_sample"] is None
