"""`vaetune ui` and MLflow's own tools on the store of a real search (the session's small search of
tests/test_report.py: β on a grid of 0.01, 0.1 and 1, ranked by sample FID), the UI looked at in
headless Chromium."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import pandas as pd
import pytest
from browser import chromium_page, free_port, serving, user_env, vaetune
from mlflow.tracking import MlflowClient
from test_report import NAME, SEARCH_METRIC, finished_search

METRIC = SEARCH_METRIC  # the column the UI's saved view shows
NAMES = {0.01: "β=0.01", 0.1: "β=0.1", 1.0: "β=1"}  # each trial named by what it tried


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return finished_search(tmp_path_factory)


@pytest.mark.slow
def test_mlflow_finds_the_search_where_it_looks_by_default(work):
    # plain MLflow in the search's folder, nothing set: MLflow 3's own default store
    code = (f"import json, mlflow; runs = mlflow.search_runs(experiment_names=[{NAME!r}]); "
            "print(json.dumps(sorted(runs['tags.mlflow.runName'])))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=user_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == sorted([NAME, *NAMES.values()])
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(NAME)
    # marked as model training: MLflow's UI opens it on its runs
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.slow
def test_search_run_holds_the_best_trial_and_the_summary(work):
    summary = pd.read_csv(work / "results" / NAME / "summary.csv")
    best = summary.sort_values(f"best/{METRIC}").iloc[0]
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    parent = json.loads((work / "results" / NAME / "tracking.json").read_text())["parent_run_id"]
    run = client.get_run(parent)
    assert run.data.tags["vaetune.best_run_id"] == best["mlflow_run_id"]
    assert run.data.tags["vaetune.best_trial"] == NAMES[best["train.beta"]]
    assert run.data.metrics[METRIC] == pytest.approx(best[f"final/{METRIC}"])
    assert float(run.data.params["train.beta"]) == best["train.beta"]
    assert "summary.csv" in {a.path for a in client.list_artifacts(parent)}


@pytest.mark.slow
def test_ui_opens_on_the_trials_of_the_last_search(work, tmp_path):
    summary = pd.read_csv(work / "results" / NAME / "summary.csv")
    port = free_port()
    log = tmp_path / "ui.log"
    with serving(vaetune("ui", "--port", str(port)), work, f"http://127.0.0.1:{port}/health", log):
        printed = log.read_text().splitlines()
        assert printed[0] == f"MLflow UI for sqlite:///{work / 'mlflow.db'}"
        view = next(line.split()[0] for line in printed if "viewStateShareKey" in line)
        experiment_id = MlflowClient(f"sqlite:///{work / 'mlflow.db'}").get_experiment_by_name(
            NAME).experiment_id
        assert view.startswith(f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?")
        api = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name={NAME}"
        body = urllib.request.urlopen(api, timeout=30).read()  # the server's REST API: the search
        assert json.loads(body)["experiment"]["name"] == NAME

        with chromium_page() as page:
            page.goto(view)
            header = page.locator(f'[role="columnheader"][col-id="metrics.`{METRIC}`"]')
            header.wait_for()
            # the model-training side of MLflow's UI, on the runs: not the GenAI overview and its
            # side bar (Judges, Sessions...)
            assert f"/experiments/{experiment_id}/runs?workflowType=machine_learning" in page.url
            assert page.get_by_text("Judges", exact=True).count() == 0
            shown = {}
            for _, trial in summary.iterrows():
                row = page.locator(f'[role="row"][row-id="{trial["mlflow_run_id"]}"]')
                name = row.locator('[col-id="attributes.`Run Name`"]')
                value = row.locator(f'[col-id="metrics.`{METRIC}`"]')
                value.wait_for()
                assert name.inner_text().strip().endswith(NAMES[trial["train.beta"]])
                fid = trial[f"final/{METRIC}"]
                assert float(value.inner_text()) == pytest.approx(fid, rel=1e-9)
                shown[trial["mlflow_run_id"]] = int(name.locator("xpath=ancestor::*[@row-index][1]")
                                                    .get_attribute("row-index"))
            page.screenshot(path=str(tmp_path / "mlflow_ui.png"))
            listed = {page.locator('[role="row"][row-id]').nth(i).get_attribute("row-id")
                      for i in range(page.locator('[role="row"][row-id]').count())}
    assert listed == set(summary["mlflow_run_id"])  # the trials, without the search's own run
    by_fid = summary.sort_values(f"final/{METRIC}")["mlflow_run_id"].tolist()
    assert sorted(shown, key=shown.get) == by_fid  # best first
    assert (tmp_path / "mlflow_ui.png").stat().st_size > 10_000


@pytest.mark.slow
def test_ui_without_a_store_says_so(tmp_path):
    proc = _ui(tmp_path, str(free_port()))
    assert proc.returncode == 2 and "no MLflow store there yet" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ui_on_a_busy_or_bad_port_exits_with_the_reason(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _ui(tmp_path, str(port))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"vaetune ui: error: --port: got {port}; 127.0.0.1:{port} "
                                   "cannot be used (Address already in use); pass a free port, "
                                   f"e.g. --port {port + 1}")
    for bad in ("0", "70000"):
        proc = _ui(tmp_path, bad)
        assert proc.returncode == 2
        assert proc.stderr.strip() == (f"vaetune ui: error: --port: got {bad}; give a port number "
                                       "from 1 to 65535")


def _ui(cwd, port: str) -> subprocess.CompletedProcess:
    return subprocess.run(vaetune("ui", "--port", port), cwd=cwd, env=user_env(),
                          capture_output=True, text=True, timeout=120)
