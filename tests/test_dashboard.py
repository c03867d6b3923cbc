"""`vaetune dashboard RESULTS`: Optuna Dashboard on the Optuna study of a real search (the
session's small search of tests/test_report.py), looked at in headless Chromium, and its
one-line errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
import pytest
from browser import chromium_page, free_port, serving, user_env, vaetune
from test_report import BETAS, NAME, SEARCH_METRIC, finished_search

pytestmark = pytest.mark.slow  # the session search (tests/test_report.py) and the dashboard server


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return finished_search(tmp_path_factory)


def test_dashboard_shows_the_study_of_the_search(work, tmp_path):
    storage = f"sqlite:///{work / 'results' / NAME / 'optuna.db'}"
    study = optuna.load_study(study_name=NAME, storage=storage)
    assert study.metric_names == [SEARCH_METRIC]  # the dashboard names the objective by it
    port = free_port()
    log = tmp_path / "dashboard.log"
    with serving(vaetune("dashboard", f"results/{NAME}", "--port", str(port)), work,
                 f"http://127.0.0.1:{port}/api/studies", log):
        url = log.read_text().splitlines()[1].strip()
        assert url == f"http://127.0.0.1:{port}/dashboard/studies/{study._study_id}"
        with chromium_page() as page:
            page.goto(url)
            page.get_by_text(f"{NAME} (id={study._study_id})").first.wait_for()
            for card in ("History", "Hyperparameter Importance", "Intermediate values"):
                page.locator("h6", has_text=card).first.wait_for()
            page.get_by_text(SEARCH_METRIC).first.wait_for()  # the objective, by its name
            page.screenshot(path=str(tmp_path / "dashboard_history.png"))
            page.goto(f"{url}/trials")  # the list of trials; the first one's details beside it
            page.get_by_text(f"{len(study.trials)} Trials", exact=True).wait_for()
            for trial in study.trials:
                page.get_by_text(f"Trial {trial.number}", exact=True).first.wait_for()
            page.screenshot(path=str(tmp_path / "dashboard_trials.png"))
            text = page.inner_text("body")
    assert sorted(t.params["train.beta"] for t in study.trials) == BETAS
    first = study.trials[0]
    assert f"train.beta {first.params['train.beta']}" in text and f"{first.value}" in text
    assert (tmp_path / "dashboard_history.png").stat().st_size > 10_000


def _dashboard(cwd, *args: str, pre: str = "") -> subprocess.CompletedProcess:
    code = (f"import sys; {pre}from vaetune.cli import main; "
            "sys.exit(main(['dashboard', *sys.argv[1:]]))")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=user_env(),
                          capture_output=True, text=True, timeout=120)


def test_dashboard_errors_are_one_line(work, tmp_path):
    results = f"results/{NAME}"
    not_search = _dashboard(tmp_path, str(tmp_path))
    assert not_search.returncode == 2
    assert not_search.stderr.strip() == (f"vaetune dashboard: error: {tmp_path}: not a vaetune "
                                         "search folder (no search.json); pass results/<name>")
    # the extra not installed: Python refuses the import of a module set to None in sys.modules
    missing = _dashboard(work, results, pre="sys.modules['optuna_dashboard'] = None; ")
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("vaetune dashboard: error: vaetune dashboard needs Optuna "
                                      "Dashboard: pip install 'vaetune[dashboard]'")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = _dashboard(work, results, "--port", str(port))
    assert taken.returncode == 2 and "Traceback" not in taken.stderr
    assert f"--port: got {port}; 127.0.0.1:{port} cannot be used (Address already in use)" in (
        taken.stderr)
    bad = _dashboard(work, results, "--port", "70000")
    assert bad.returncode == 2 and "give a port number from 1 to 65535" in bad.stderr
