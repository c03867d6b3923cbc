"""End-to-end `vaetune search`: real Ray, real Optuna study, real MLflow store, in subprocesses; the
commands that start no Ray (export, sample, reconstruct, report) read a finished search in this process."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import io
import json
import logging
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from guards import HANG_GUARD_S, SERVER_S
from hold import (
    all_alive_at_once,
    hold_ray_workers,
    kill_at_first_completion,
    kill_held,
    read_to_first_completion,
    release_ray_workers,
    snapshot,
    trial_epochs,
)
from mlflow.tracking import MlflowClient
from PIL import Image

from vaetune.checkpoint import load_checkpoint
from vaetune.results import COMPLETED

pytestmark = pytest.mark.slow  # every test here runs real Ray searches in subprocesses

EPOCHS = 3


def space(tmp: Path, name: str, **search) -> dict:
    return {
        "name": name,
        "data": {"source": "builtin:sprites", "image_size": 16, "count": 1200, "cache_dir": str(tmp / "cache")},
        "model": {"arch": "conv", "width": 8, "latent_dim": {"choice": [2, 4]}},
        "train": {"epochs": EPOCHS, "batch_size": 32, "lr": {"loguniform": [0.001, 0.005]},
                  "beta": {"loguniform": [0.01, 1.0]}, "num_threads": 1, "grid_size": 4, "recon_loss": "bce"},
        "search": {"num_samples": 4, "max_concurrent": 2, "grace_period": 1, "reduction_factor": 2,
                   "max_failures": 0, **search},
    }


class Env:
    """A working folder with its own Ray temp dir, where `vaetune` runs as a user would run it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.ray_tmp = tempfile.mkdtemp(prefix="vt", dir="/tmp")  # short: Ray's socket paths are limited
        # vaetune's own default store under the working folder, whatever another test left set
        self.env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        self.env.update({"RAY_TMPDIR": self.ray_tmp, "PYTHONUNBUFFERED": "1"})

    def write(self, raw: dict) -> Path:
        path = self.tmp / f"{raw['name']}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "vaetune.cli", *args]

    def run(self, *args: str, timeout: float = HANG_GUARD_S) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(*args), cwd=self.tmp, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def here(self, *args: str) -> subprocess.CompletedProcess:
        """`vaetune ARGS` in this process, as `run` runs it in a process of its own, for a command
        that starts no Ray (export, sample, reconstruct, report, a refused search): the same exit
        code, stdout and stderr, the log lines included, without a Python and torch start-up each."""
        from vaetune.cli import main

        out, err = io.StringIO(), io.StringIO()
        log = logging.getLogger("vaetune")  # what the command's logging.basicConfig sends to stderr
        handler, level = logging.StreamHandler(err), log.level
        with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            mp.chdir(self.tmp)
            for key, value in self.env.items():
                if os.environ.get(key) != value:
                    mp.setenv(key, value)
            mp.delenv("MLFLOW_TRACKING_URI", raising=False)
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code
            finally:
                log.removeHandler(handler)
                log.setLevel(level)
        return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())

    def cleanup(self) -> None:
        """Ray processes left by a killed driver carry this run's temp dir in their command line."""
        subprocess.run(["pkill", "-9", "-f", self.ray_tmp], check=False)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.cleanup()


def store(tmp: Path) -> str:
    """MLflow 3's own default store in the working folder, where vaetune writes when nothing is set."""
    return f"sqlite:///{tmp / 'mlflow.db'}"


def mlflow_runs(tmp: Path, experiment: str):
    client = MlflowClient(store(tmp))
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    """One sequential search: a good point first, then a weak one ASHA must stop, then one that diverges.
    Crashed trials are retried (max_failures 2): the diverged one must not be."""
    tmp = tmp_path_factory.mktemp("search")
    e = Env(tmp)
    # a Ray that another tool started here with `ray start` and that is gone left its address file: a
    # search without --address starts a Ray of its own (ray.init would join that address, and stop on
    # the CPU count vaetune gives a Ray it starts)
    (Path(e.ray_tmp) / "ray").mkdir()
    (Path(e.ray_tmp) / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")
    good = {"train.lr": 0.004, "train.beta": 0.1, "model.latent_dim": 4}
    weak = {"train.lr": 1e-7, "train.beta": 1.0, "model.latent_dim": 2}  # learns nothing: stopped at rung 1
    diverging = {"train.lr": 1e8}  # an absurd lr: NaN at once
    raw = space(tmp, "seq", num_samples=3, max_concurrent=1, points_to_evaluate=[good, weak, diverging], max_failures=2)
    raw["train"]["lr"] = {"loguniform": [1e-7, 1e8]}  # the points lie inside the space; only they are run
    proc = e.run("search", str(e.write(raw)))
    yield e, raw, proc
    e.cleanup()


def test_search_completes_and_reports_the_best_trial(finished_search):
    e, raw, proc = finished_search
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "best trial" in proc.stdout
    summary = pd.read_csv(e.tmp / "results" / "seq" / "summary.csv")
    assert len(summary) == 3
    by_lr = {round(float(r["train.lr"]), 8): r for _, r in summary.iterrows()}
    assert by_lr[0.004]["status"] == "completed" and by_lr[0.004]["epochs"] == EPOCHS
    assert by_lr[1e-7]["status"] == "stopped" and by_lr[1e-7]["epochs"] == 1
    diverged = by_lr[1e8]
    assert diverged["status"] == "diverged" and diverged["epochs"] == 0
    assert "loss became" in diverged["error"] and "epoch 1" in diverged["error"] and "lower train.lr" in diverged["error"]
    assert (summary["status"] != "diverged").sum() == 2 and "errored" not in set(summary["status"])  # the others went on
    completed = summary[summary["status"] == "completed"]
    assert (completed["best/val/elbo"] <= completed["final/val/elbo"] + 1e-9).all()
    for col in ("wall_time_s", "checkpoint", "mlflow_run_id", "final/val/psnr", "final/val/active_units"):
        assert completed[col].notna().all(), col


def assert_names_what_it_tried(name: str, row) -> None:
    """`β=0.1 z=4 lr=0.004`: the trial's searched values, 2 significant digits."""
    m = re.fullmatch(r"β=(\S+) z=(\d+) lr=(\S+)( #\d+)?", name)
    assert m, name
    assert float(m[1]) == pytest.approx(row["train.beta"], rel=0.05) and int(m[2]) == row["model.latent_dim"]
    assert float(m[3]) == pytest.approx(row["train.lr"], rel=0.05)


EVENT = re.compile(r"\[(?:\d+:)?\d\d:\d\d\] #(\d+) (β=\S+ z=\d+ lr=\S+)  (.+)")


def _history(trial_dir: str | Path) -> list[dict]:
    """A trial's reports, from Tune's own record of its results (result.json)."""
    return [json.loads(line) for line in (Path(trial_dir) / "result.json").read_text().splitlines() if line.strip()]


def _elbo_by_epoch(trial_path: str) -> dict[int, float]:
    """val/elbo at each epoch of a trial."""
    return {int(r["epoch"]): r["val/elbo"] for r in _history(trial_path) if "val/elbo" in r}


def test_console_in_a_log_is_one_line_per_trial_event(finished_search):
    e, raw, proc = finished_search
    summary = pd.read_csv(e.tmp / "results" / "seq" / "summary.csv")
    out = proc.stdout.splitlines()
    assert "== Status ==" not in proc.stdout  # Ray's tables are for --verbose
    assert "Traceback" not in proc.stdout + proc.stderr and "Trial task failed" not in proc.stderr
    # search.sampler auto: 3 trials, all of them starting points, leave nothing for a model to learn
    assert out[0] == ("search seq: 3 trials of up to 3 epochs; sampler random (3 trials: too few to model); "
                      "ranked by val/elbo (min); ASHA compares them at epochs 1, 2; a summary every 5m00s")
    events: dict[int, list[str]] = {}
    labels: dict[int, str] = {}
    for line in out:
        m = EVENT.fullmatch(line)
        if m:
            events.setdefault(int(m[1]), []).append(m[3])
            assert labels.setdefault(int(m[1]), m[2]) == m[2]  # a trial keeps its name
    rungs = [1, 2]  # ASHA: grace 1, reduction factor 2, 3 epochs
    expected = {}
    for _, row in summary.iterrows():
        number = int(Path(row["trial_path"]).name.split("_")[3])  # Tune's run_trial_<id>_<number>_...
        assert_names_what_it_tried(labels[number], row)
        history = _elbo_by_epoch(row["trial_path"])
        passed = [f"passed rung {r}  val/elbo {history[r]:.4g}" for r in rungs if r < row["epochs"]]
        final = f"val/elbo {row['final/val/elbo']:.4g}"
        if row["best/val/elbo"] < row["final/val/elbo"]:
            best = min(history, key=history.get)
            final += f" (best {history[best]:.4g} at epoch {best})"
        if row["status"] == "diverged":  # ended by the trial, not an error: no traceback to point at
            assert "lower train.lr" in row["error"]
            end = [f"diverged: {row['error']}"]
        elif row["status"] == "stopped":
            end = [f"stopped by ASHA at epoch {row['epochs']}  {final}"]
        else:
            end = [f"completed  {final}"]
        expected[number] = ["started", *passed, *end]
    assert events == expected
    assert labels[1] == "β=0.1 z=4 lr=0.004" and labels[2] == "β=1 z=2 lr=1e-7"  # the points to evaluate
    counts = summary["status"].value_counts()
    summaries = [line for line in out if line.startswith("[") and not EVENT.fullmatch(line)]
    last = summaries[-1]
    assert (f"trials {len(summary)}: 0 running · {counts.get('stopped', 0)} stopped · {counts.get('completed', 0)} completed · "
            f"{counts.get('errored', 0) + counts.get('diverged', 0)} failed · 0 to start · best #") in last
    # a summary line every 5 minutes of the search (as many as this machine's speed makes) and a
    # last one; besides those only the header, the events and the outcome (at most 8 lines)
    assert all(f"trials {len(summary)}: " in line for line in summaries)
    assert len(out) - len(summaries) <= 1 + sum(map(len, expected.values())) + 8


def _run_on_a_terminal(env, args: list[str], rows: int, cols: int, timeout: float = HANG_GUARD_S) -> tuple[int, bytes]:
    """Run `vaetune ARGS` with a pseudo-terminal of rows x cols as its stdin, stdout and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(env.cmd(*args), cwd=env.tmp, env={**env.env, "TERM": "xterm-256color"},
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = bytearray()
    deadline = time.time() + timeout  # a hang guard
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=60), bytes(out)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def test_console_on_a_terminal_is_one_view_redrawn_in_place(env):
    pyte = pytest.importorskip("pyte")
    raw = space(env.tmp, "tty", num_samples=3, max_concurrent=2, scheduler="fifo")
    raw["train"]["epochs"] = 2
    rows, cols = 40, 120
    code, out = _run_on_a_terminal(env, ["search", str(env.write(raw))], rows, cols)
    screen = pyte.HistoryScreen(cols, rows, history=10_000)
    pyte.ByteStream(screen).feed(out)
    shown = [line.rstrip() for line in screen.display]
    scrolled = ["".join(line[x].data for x in range(cols)).rstrip() for line in screen.history.top]
    assert code == 0, "\n".join(shown)
    # Nothing of the view scrolled away: it was redrawn in place, never pushed up and drawn anew.
    # Lines printed above it may scroll (a warning Ray prints on a loaded machine, say).
    view = [line for line in scrolled if line.startswith(("vaetune search tty", "trials ", "best")) or EVENT.fullmatch(line)]
    assert not view, "\n".join(scrolled + shown)
    assert out.count(b"vaetune search tty") >= 3  # the view was drawn again and again...
    assert [line for line in shown if line.startswith("vaetune search tty")] != []
    assert sum(line.startswith("vaetune search tty") for line in shown) == 1  # ...in the same place
    assert re.search(rb"trials 3: [12] running", out)  # a state that was shown, then replaced
    assert "trials 3: 0 running · 0 stopped · 3 completed · 0 failed · 0 to start" in shown
    assert any(line.startswith("best  #") for line in shown) and any(line.startswith("best trial") for line in shown)
    assert not any(EVENT.fullmatch(line) for line in shown)  # no event lines: the view tells it


def test_mlflow_has_a_parent_run_and_a_child_per_trial(finished_search):
    e, raw, proc = finished_search
    client, parents, children = mlflow_runs(e.tmp, "seq")
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["train.epochs"] == str(EPOCHS)
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    summary = pd.read_csv(e.tmp / "results" / "seq" / "summary.csv").set_index("mlflow_run_id")
    names = {c.data.tags["mlflow.runName"] for c in children}
    assert len(names) == 3  # unique within the search
    assert {"β=0.1 z=4 lr=0.004", "β=1 z=2 lr=1e-7"} <= names  # the good and the weak point, by what they tried
    for child in children:
        row = summary.loc[child.info.run_id]
        assert child.data.tags["vaetune.status"] == row["status"]  # one word in both: completed, stopped, diverged
        assert child.data.tags["vaetune.trial_id"] == row["trial_id"]
        assert_names_what_it_tried(child.data.tags["mlflow.runName"], row)
        assert float(child.data.params["train.lr"]) == pytest.approx(row["train.lr"])
        assert child.data.params["model.arch"] == "conv"  # every resolved hyperparameter, not only searched
        if row["status"] == "diverged":
            assert child.info.status == "FAILED" and "lower train.lr" in child.data.tags["vaetune.error"]
            continue
        assert steps(client, child.info.run_id, "val/elbo") == list(range(1, int(row["epochs"]) + 1))
        assert child.data.metrics["val/elbo"] == pytest.approx(row["final/val/elbo"])
        grids = {a.path for a in client.list_artifacts(child.info.run_id, "grids")}
        assert f"grids/recon_epoch{int(row['epochs']):04d}.png" in grids
        assert f"grids/samples_epoch{int(row['epochs']):04d}.png" in grids
        assert [a.path for a in client.list_artifacts(child.info.run_id, "checkpoint")] == ["checkpoint/checkpoint.pt"]


def test_optuna_learns_that_asha_stopped_trials_were_pruned(finished_search):
    e, raw, proc = finished_search
    study = optuna.load_study(study_name="seq", storage=f"sqlite:///{e.tmp / 'results' / 'seq' / 'optuna.db'}")
    trials = {round(t.params["train.lr"], 8): t for t in study.trials}
    assert trials[1e-7].state == optuna.trial.TrialState.PRUNED
    assert list(trials[1e-7].intermediate_values) == [1]  # its value at the rung where it stopped
    assert trials[1e8].state == optuna.trial.TrialState.FAIL
    good = trials[0.004]
    assert good.state == optuna.trial.TrialState.COMPLETE
    assert list(good.intermediate_values) == list(range(1, EPOCHS + 1))
    assert good.value == pytest.approx(good.intermediate_values[EPOCHS])


def test_a_diverged_trial_is_not_retried(finished_search):
    """max_failures 2 retries crashes; a NaN loss is deterministic, so the trial starts once and
    ends diverged, with no error for Tune to retry."""
    e, raw, proc = finished_search
    results = e.tmp / "results" / "seq"
    summary = pd.read_csv(results / "summary.csv")
    diverged = summary[summary["status"] == "diverged"]["trial_id"].tolist()
    assert len(diverged) == 1
    ledger = json.loads((results / "trials.json").read_text())
    assert {t: r["starts"] for t, r in ledger.items()} == dict.fromkeys(summary["trial_id"], 1)
    trial_dir = next(results.glob(f"run_trial_{diverged[0]}_*"))
    assert not (trial_dir / "error.txt").exists()  # Tune saw no failure, so it had nothing to retry


def test_rerun_refuses_and_export_sample_round_trip(finished_search):
    e, raw, proc = finished_search
    again = e.here("search", str(e.tmp / "seq.yaml"))
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    exported = e.here("export", "results/seq", "--out", "best.pt")
    assert exported.returncode == 0, exported.stderr[-2000:]
    summary = pd.read_csv(e.tmp / "results" / "seq" / "summary.csv")
    best = summary.sort_values("best/val/elbo").iloc[0]
    assert f"best trial {best['trial_id']}" in exported.stdout
    sampled = e.here("sample", "best.pt", "--n", "16", "--out", "grid.png")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert Image.open(e.tmp / "grid.png").size == (4 * 17 + 1, 4 * 17 + 1)
    img = e.tmp / "one.png"
    Image.new("RGB", (40, 40), (255, 0, 0)).save(img)
    recon = e.here("reconstruct", "best.pt", str(img), "--out", "rec")
    assert recon.returncode == 0 and Image.open(e.tmp / "rec" / "one_recon.png").size == (2 * 17 + 1, 17 + 1)
    by_psnr = e.here("export", "results/seq", "--metric", "val/psnr", "--out", "best_psnr.pt")
    assert by_psnr.returncode == 0 and "by max final/val/psnr" in by_psnr.stdout
    # PSNR is maximised: the trial with the largest last-epoch PSNR among those with a checkpoint
    # (the search records no best/val/psnr column), which is not the one with the smallest
    exportable = summary[summary["checkpoint"].fillna("") != ""].dropna(subset=["final/val/psnr"])
    assert "best/val/psnr" not in summary and len(exportable) >= 2
    highest = exportable.loc[exportable["final/val/psnr"].idxmax(), "trial_id"]
    assert highest != exportable.loc[exportable["final/val/psnr"].idxmin(), "trial_id"]
    assert f"best trial {highest}" in by_psnr.stdout
    assert load_checkpoint(e.tmp / "best_psnr.pt")["source"]["trial_id"] == str(highest)


def test_export_registers_an_mlflow_model_with_a_signature(finished_search):
    e, raw, proc = finished_search
    registered = e.run("export", "results/seq", "--out", "registered.pt", "--register", "seq-vae")
    assert registered.returncode == 0, registered.stderr[-2000:]
    import mlflow.pytorch
    import torch

    uri = store(e.tmp)
    client = MlflowClient(uri)
    version = client.search_model_versions("name = 'seq-vae'")[0]
    summary = pd.read_csv(e.tmp / "results" / "seq" / "summary.csv")
    best = summary.sort_values("best/val/elbo").iloc[0]
    assert version.run_id == best["mlflow_run_id"]  # logged to the best trial's own run
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)  # sets MLFLOW_TRACKING_URI for this process: restored below
    try:
        info = mlflow.models.get_model_info(f"models:/seq-vae/{version.version}")
        model = mlflow.pytorch.load_model(f"models:/seq-vae/{version.version}")
    finally:
        mlflow.set_tracking_uri(previous)  # None unsets it again
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 3, 16, 16]
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3, 16, 16)  # image in, reconstruction out


def _files_of(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_a_copied_or_moved_project_is_read_where_it_is_now(finished_search, tmp_path):
    """The project folder (space, results, MLflow store, cache) copied elsewhere: export and report
    read the copy's own files, never the original's paths the search recorded, --resume is refused
    naming the move, and nothing of the original is written (a moved project's old place may be
    gone, or be someone else's)."""
    from vaetune.results import read_summary

    e, raw, proc = finished_search
    assert proc.returncode == 0, proc.stderr[-2000:]
    original = _files_of(e.tmp)
    moved = Env(tmp_path / "elsewhere" / "project")
    shutil.copytree(e.tmp, moved.tmp, symlinks=True)
    space_file = moved.tmp / "seq.yaml"  # the user's file names its cache relative to the project
    edited = yaml.safe_load(space_file.read_text())
    edited["data"]["cache_dir"] = "cache"
    space_file.write_text(yaml.safe_dump(edited, sort_keys=False))
    try:
        exported = moved.here("export", "results/seq", "--out", "best.pt")
        assert exported.returncode == 0, exported.stderr[-2000:]
        assert load_checkpoint(moved.tmp / "best.pt")["source"]["checkpoint"].startswith(f"{moved.tmp}/results/seq/")
        registered = moved.run("export", "results/seq", "--out", "registered.pt", "--register", "seq-vae")
        assert registered.returncode == 2 and "Traceback" not in registered.stderr
        assert f"MLflow keeps its runs' artifacts at {e.tmp}/mlruns/" in registered.stderr.splitlines()[-1]
        report = moved.here("report", "results/seq", "--out", "rep")
        assert report.returncode == 0 and (moved.tmp / "rep" / "report.html").is_file(), report.stderr[-2000:]
        assert "the report is not logged to MLflow" in report.stderr
        # Tune's saved experiment (its searcher's study, the MLflow callback) names the old place: a
        # resume here would write there, so it is refused in one line (before: "data.cache_dir changed")
        resumed = moved.here("search", "seq.yaml", "--resume")
        said = resumed.stderr.strip().splitlines()[-1]
        assert resumed.returncode == 2 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
        assert f"ran at {e.tmp} and was moved or copied here" in said and "resume it where it ran" in said
        rows = read_summary(moved.tmp / "results" / "seq")
        assert len(rows) == raw["search"]["num_samples"]
        for path in rows["checkpoint"][rows["checkpoint"] != ""]:
            assert path.startswith(f"{moved.tmp}/results/seq/run_trial_") and Path(path).exists(), path
    finally:
        moved.cleanup()
    assert _files_of(e.tmp) == original  # nothing of the original written, added or removed


def test_resume_of_a_search_saved_by_an_older_vaetune_is_one_line(finished_search):
    """Tune's saved experiment pickles vaetune's search classes by name: one that an upgrade renamed
    (as the study searcher replaced an earlier class) cannot be read back. --resume says so in one
    line, naming what stays readable, and changes nothing of the finished search."""
    e, raw, proc = finished_search
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = e.tmp / "results" / "seq"
    saved = results / "tuner.pkl"
    original = saved.read_bytes()
    assert b"PlannedSearch" in original  # the class a restore must find
    before = _files_of(results)
    try:
        saved.write_bytes(original.replace(b"PlannedSearch", b"PlannedSearcX"))  # same length: a valid pickle
        resumed = e.run("search", str(e.tmp / "seq.yaml"), "--resume")
        said = resumed.stderr.strip().splitlines()[-1]
        assert resumed.returncode == 2 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
        assert said.startswith(f"vaetune search: error: {results}: --resume cannot continue this search"), said
        assert "PlannedSearcX" in said and "vaetune export" in said and "--set name=" in said
    finally:
        saved.write_bytes(original)
    after = _files_of(results)
    assert {k: v for k, v in after.items() if k != "tuner.pkl"} == {k: v for k, v in before.items() if k != "tuner.pkl"}


def test_every_trial_keeps_the_checkpoints_of_the_rungs_and_its_last_epoch(finished_search):
    """keep_checkpoints 2 of three epochs' checkpoints: the rungs' (1, 2) and the last (3) stay,
    whatever their val/elbo, so the report can show every trial at the epoch it compares."""
    e, raw, proc = finished_search
    for trial_dir in (e.tmp / "results" / "seq").glob("run_trial_*"):
        reports = _history(trial_dir)
        if not reports:
            continue  # the diverging trial never reported
        for rec in reports:
            if rec.get("divergence"):
                continue  # a diverged trial's last word: not an epoch, no checkpoint
            assert rec["checkpoint_dir_name"], rec["epoch"]  # checkpoint_every 1: each epoch has one
            assert (trial_dir / rec["checkpoint_dir_name"] / "checkpoint.pt").exists(), (trial_dir.name, rec["epoch"])


def test_report_of_an_asha_search_compares_each_table_at_one_epoch(finished_search):
    e, raw, proc = finished_search
    report = e.here("report", "results/seq")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    results = e.tmp / "results" / "seq"
    summary = pd.read_csv(results / "summary.csv", dtype={"trial_id": str})
    histories = {str(_history(d)[0]["trial_id"]): {r["epoch"]: r for r in _history(d) if not r.get("divergence")}
                 for d in results.glob("run_trial_*") if _history(d)}
    by_lr = dict(zip(summary["train.lr"].round(12), summary["trial_id"], strict=True))
    good, weak, diverged = by_lr[0.004], by_lr[1e-7], by_lr[1e8]
    # the three points of the fixture: the good one ran all 3 epochs, ASHA stopped the weak one at
    # its first rung (epoch 1), the diverged one reached no epoch
    assert sorted(histories[good]) == [1, 2, 3] and sorted(histories[weak]) == [1]
    assert not histories.get(diverged)
    # The main table is at the deepest epoch that three values of β reached (all of them when
    # fewer exist), else at the epoch most of them reached. The diverged trial reached no epoch,
    # so only β 0.1 (good) and β 1 (weak) reach any: together at epoch 1, β 0.1 alone at 2 and 3.
    # With the diverged trial's β a third value, no epoch has three and epoch 1 has the most;
    # with its β one of the two, epoch 1 is the deepest that both reached. Epoch 1 either way;
    # further tables at epochs 2 and 3.
    expected = 1

    tables = pd.read_csv(results / "report" / "kl_table.csv", dtype={"trial_id": str})
    assert tables.groupby("table")["epoch"].nunique().eq(1).all()  # each table at one epoch
    main = tables[tables["table"] == 1]
    assert (main["epoch"] == expected).all() and set(main["trial_id"]) == {good, weak}
    assert set(tables["epoch"]) == {1, 2, 3}
    for _, row in tables.iterrows():  # every value is the trial's own at the table's epoch
        at = histories[row["trial_id"]][row["epoch"]]
        assert row["val/mse"] == pytest.approx(at["val/mse"], rel=1e-9)
        assert row["val/kl"] == pytest.approx(at["val/kl"], rel=1e-9)

    md = (results / "report" / "report.md").read_text()
    findings = [line for line in md.splitlines() if line.startswith("- ")]
    assert findings and all(f"epoch {expected}" in line for line in findings if "β=" in line)
    named = set(re.findall(r"trial ([0-9a-f]{8})", " ".join(findings)))
    assert named and named <= set(main["trial_id"])  # no best trial set against another epoch's
    pictures = next(line for line in md.splitlines() if line.startswith("| validation images |"))
    assert pictures.count(f"(epoch {expected})") == len(main)  # a picture for every row, of its epoch
    assert "vaetune sweep" in md and "not a study" in md


def test_sweep_starts_from_the_best_trial_and_checks_its_arguments(finished_search, capsys):
    from vaetune.cli import main as cli
    from vaetune.search import plan_sweep

    e, raw, proc = finished_search
    results = e.tmp / "results" / "seq"
    summary = pd.read_csv(results / "summary.csv", dtype={"trial_id": str})
    best = summary.sort_values("best/val/elbo").iloc[0]
    sweep = plan_sweep(results, values=[0.1, 1.0], seeds=2, overrides=["train.epochs=2"])
    config = sweep.space.default_config()
    assert sweep.trial_id == best["trial_id"]
    assert config.train.lr == pytest.approx(best["train.lr"]) and config.model.latent_dim == best["model.latent_dim"]
    assert {k: (d.kind, list(d.args)) for k, d in sweep.space.params.items()} == {
        "train.beta": ("grid", [0.1, 1.0]), "train.seed": ("grid", [0, 1])}
    s = config.search
    assert (config.name, config.train.epochs, s.sampler, s.scheduler, s.num_samples) == ("seq-sweep-beta", 2, "grid",
                                                                                        "fifo", 4)
    for args, words in [(["--seeds", "0"], "--seeds: got 0"), (["--key", "train.nope"], "--key: got 'train.nope'"),
                        (["--key", "model.arch", "--values", "1,2"], "not a number"),
                        (["--values", "0.1,-1"], "--values: got -1 for train.beta"),
                        (["--set", "train.objective=capacity"], "β is not in the loss")]:
        assert cli(["sweep", str(results), *args]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert cli(["sweep", str(e.tmp)]) == 2 and "not a vaetune search folder" in capsys.readouterr().err


def test_eight_concurrent_trials_share_one_store_without_errors(env):
    """Eight quarter-CPU trials run at once whatever the machine's core count (Ray is started with
    at least 2 CPUs): each trial's actor is held (SIGSTOP) as it appears, until all eight are
    alive together, so none can finish before the last has started, however slow the machine."""
    raw = space(env.tmp, "eight", num_samples=8, max_concurrent=8, scheduler="fifo", sampler="random")
    raw["resources"] = {"cpu": 0.25}
    raw["train"]["epochs"] = 2
    log = env.tmp / "eight.log"
    with log.open("w") as out:
        driver = subprocess.Popen(env.cmd("search", str(env.write(raw))), cwd=env.tmp, env=env.env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    at_once, code = all_alive_at_once(env.ray_tmp, driver, 8)
    said = log.read_text()
    assert at_once == 8, f"{at_once} trials alive at once\n" + said[-3000:]
    assert code == 0, said[-3000:]
    assert "database is locked" not in said
    client, parents, children = mlflow_runs(env.tmp, "eight")
    assert len(parents) == 1 and len(children) == 8
    for child in children:
        assert child.info.status == "FINISHED"
        assert steps(client, child.info.run_id, "train/loss") == [1, 2]


def _tracked_trials(results: Path) -> set[str]:
    """Trials the driver has started (each gets its MLflow run, recorded in tracking.json)."""
    try:
        return set(json.loads((results / "tracking.json").read_text())["trial_runs"])
    except (OSError, json.JSONDecodeError, KeyError):  # not written yet, or being rewritten
        return set()


def _lost_trials(env, name: str) -> set[str]:
    """After a kill: trials with an MLflow run (created just before tracking.json names it) that
    the experiment's last snapshot does not record."""
    results = env.tmp / "results" / name
    _, _, children = mlflow_runs(env.tmp, name)
    started = _tracked_trials(results) | {c.data.tags["vaetune.trial_id"] for c in children}
    state = snapshot(results)
    assert state is not None, "the killed driver left a half-written experiment state"
    return started - set(state)


def _check_lost_trials_closed(env, name: str, lost: set[str], summary: pd.DataFrame) -> None:
    """Trials a stopped driver started after its last snapshot: not in the resumed search, their
    MLflow runs closed as KILLED, their Optuna trials FAIL; nothing of the search left RUNNING."""
    assert not lost & set(summary["trial_id"])
    client, parents, children = mlflow_runs(env.tmp, name)
    by_trial = {c.data.tags["vaetune.trial_id"]: c for c in children}
    assert set(by_trial) == set(summary["trial_id"]) | lost  # one run per trial, none duplicated
    for trial in lost:
        assert by_trial[trial].info.status == "KILLED"
        assert by_trial[trial].data.tags["vaetune.status"] == "lost"
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{env.tmp / 'results' / name / 'optuna.db'}")
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.FAIL) >= len(lost)


def _check_driver_records(env, name: str) -> None:
    """The driver's own records after a resumed search name every trial of its summary, as the
    MLflow store does: trials.json (each terminated), tracking.json's and the summary's run ids."""
    results = env.tmp / "results" / name
    summary = pd.read_csv(results / "summary.csv", dtype={"trial_id": str})
    ledger = json.loads((results / "trials.json").read_text())
    assert {t: ledger.get(t, {}).get("state") for t in summary["trial_id"]} == dict.fromkeys(summary["trial_id"], "terminated")
    _, _, children = mlflow_runs(env.tmp, name)
    by_trial = {c.data.tags["vaetune.trial_id"]: c.info.run_id for c in children}
    runs = json.loads((results / "tracking.json").read_text())["trial_runs"]
    assert {t: runs.get(t) for t in summary["trial_id"]} == {t: by_trial[t] for t in summary["trial_id"]}
    assert dict(zip(summary["trial_id"], summary["mlflow_run_id"], strict=True)) == {t: by_trial[t] for t in summary["trial_id"]}


def test_killed_driver_resumes_without_rerunning_finished_trials(env):
    # four trials, two at a time, held at the first completion: some finished, some midway, some not started
    raw = space(env.tmp, "killed", num_samples=4, max_concurrent=2, scheduler="fifo")
    raw["train"]["epochs"] = 4
    path = env.write(raw)
    exp_dir = env.tmp / "results" / "killed"
    finished = kill_at_first_completion(env, ["search", str(path)], exp_dir, 4)
    before = trial_epochs(exp_dir)
    assert len(finished) < 4 and all(before[t] == [1, 2, 3, 4] for t in finished)

    # a trial started in the seconds between the last snapshot and the kill is unknown to the
    # restored search (rare on a quiet machine, common on a loaded one): see the next test
    lost = _lost_trials(env, "killed")

    proc = env.run("search", str(path), "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = trial_epochs(exp_dir)
    for trial in finished:  # finished trials were not run again
        assert after[trial] == before[trial]
    summary = pd.read_csv(exp_dir / "summary.csv")
    assert len(summary) == 4 and (summary["status"] == "completed").all()
    for trial in summary["trial_id"]:  # the others continued from a checkpoint, none from scratch
        assert after[trial][-1] == 4 and after[trial].count(1) == 1, (trial, after[trial])
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{exp_dir / 'optuna.db'}")
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 4  # history kept
    client, parents, children = mlflow_runs(env.tmp, "killed")
    assert len(parents) == 1  # runs continued, not duplicated
    for child in children:
        if child.data.tags["vaetune.trial_id"] in set(summary["trial_id"]):
            assert set(steps(client, child.info.run_id, "val/elbo")) == {1, 2, 3, 4}
    _check_lost_trials_closed(env, "killed", lost, summary)
    _check_driver_records(env, "killed")


def test_ctrl_c_stops_a_search_that_resumes_where_it_stopped(env):
    """Ctrl-C (SIGINT to the terminal's process group) at the first completed trial: Tune saves the
    experiment once more, vaetune exits 130 naming the command that continues it, and --resume runs
    the rest, no finished trial again, with the driver's records whole."""
    # five trials, two at a time: all five start only if three complete before the interrupt lands
    path = env.write(space(env.tmp, "ctrlc", num_samples=5, max_concurrent=2, scheduler="fifo"))
    exp_dir = env.tmp / "results" / "ctrlc"
    with (env.tmp / "driver.err").open("w") as err:
        driver = subprocess.Popen(env.cmd("search", str(path)), cwd=env.tmp, env=env.env, stdout=subprocess.PIPE,
                                  stderr=err, text=True, start_new_session=True)
    out = read_to_first_completion(driver)
    os.killpg(driver.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out += driver.communicate(timeout=HANG_GUARD_S)[0]
    said = out + (env.tmp / "driver.err").read_text()
    assert driver.returncode == 130, said[-3000:]
    assert "search interrupted with " in out and f"continue with: vaetune search {path} --resume" in out
    assert "Tuner.restore" not in said  # vaetune's command only
    before = trial_epochs(exp_dir)
    # finished: what Tune's last snapshot holds as ended (a trial whose last epoch was reported
    # but whose end Tune had not yet taken when Ctrl-C landed continues from its checkpoint)
    finished = {t for t, status in (snapshot(exp_dir) or {}).items() if status == "TERMINATED"}
    assert finished and len(before) < 5
    assert all(before[t] == list(range(1, EPOCHS + 1)) for t in finished), before

    proc = env.run("search", str(path), "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = trial_epochs(exp_dir)
    assert all(after[t] == before[t] for t in finished)  # not run again
    summary = pd.read_csv(exp_dir / "summary.csv", dtype={"trial_id": str})
    assert len(summary) == 5 and (summary["status"] == COMPLETED).all()
    _, parents, children = mlflow_runs(env.tmp, "ctrlc")
    assert len(parents) == 1 and len(children) == 5
    assert all(r.info.status == "FINISHED" for r in parents + children)
    _check_driver_records(env, "ctrlc")
    best = summary.sort_values("best/val/elbo").iloc[0]
    assert f"  MLflow run: {best['mlflow_run_id']}" in proc.stdout
    counts = [line for line in proc.stdout.splitlines() if "] trials 5: " in line]  # the console's summaries
    assert "· 5 completed · 0 failed · 0 to start ·" in counts[-1], proc.stdout  # the trials from before too


def test_trials_started_after_the_last_snapshot_are_closed_and_replaced_on_resume(env):
    raw = space(env.tmp, "lost", num_samples=4, max_concurrent=2, scheduler="fifo", keep_checkpoints=100)
    raw["train"]["epochs"] = 6  # the kill comes after such a trial's first epoch: five to go, however fast
    path = env.write(raw)
    exp_dir = env.tmp / "results" / "lost"
    # no experiment snapshot after the first step of the loop (and none forced by checkpoint counts):
    # every trial started later is one a killed driver's snapshot never recorded
    driver = subprocess.Popen(env.cmd("search", str(path)), cwd=env.tmp, env={**env.env, "TUNE_GLOBAL_CHECKPOINT_S": "100000"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + HANG_GUARD_S
    while time.time() < deadline and driver.poll() is None:
        state = snapshot(exp_dir)
        unknown = set() if state is None else _tracked_trials(exp_dir) - set(state)
        if any(glob.glob(str(exp_dir / f"run_trial_{t}_*" / "checkpoint_*")) for t in unknown):
            break  # one of them has trained an epoch
        time.sleep(0.2)
    assert driver.poll() is None, "the search ended before it could be killed"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    env.cleanup()
    lost = _lost_trials(env, "lost")
    assert lost

    proc = env.run("search", str(path), "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cannot be continued; their MLflow runs are marked KILLED" in proc.stderr
    summary = pd.read_csv(exp_dir / "summary.csv")
    assert len(summary) == 4 and (summary["status"] == "completed").all()  # the search still ran its 4 trials
    _check_lost_trials_closed(env, "lost", lost, summary)
    client, _, children = mlflow_runs(env.tmp, "lost")
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert sorted(c.data.tags["vaetune.trial_id"] for c in finished) == sorted(summary["trial_id"])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_tracking_server_never_stops_training_and_catches_up(env):
    port = _free_port()
    raw = space(env.tmp, "offline", num_samples=2, scheduler="fifo")
    raw["train"]["epochs"] = 2
    raw["tracking"] = {"uri": f"http://127.0.0.1:{port}"}  # nothing listens there yet
    path = env.write(raw)
    proc = env.run("search", str(path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "training goes on, tracking is queued" in proc.stderr
    assert "stayed unreachable" in proc.stderr
    results = env.tmp / "results" / "offline"
    summary = pd.read_csv(results / "summary.csv")
    assert (summary["status"] == "completed").all()
    pending = [json.loads(line) for line in (results / "mlflow_pending.jsonl").read_text().splitlines()]
    kinds = [p["kind"] for p in pending]
    assert kinds[0] == "search_start" and kinds.count("trial_start") == 2 and kinds.count("metrics") == 4
    assert all(Path(p["path"]).exists() for p in pending if p["kind"] == "artifact")

    # the server comes back: a resume sends what was kept
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{env.tmp / 'server.db'}",
                               "--default-artifact-root", str(env.tmp / "server-artifacts")],
                              cwd=env.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        client = MlflowClient(f"http://127.0.0.1:{port}")
        deadline = time.time() + SERVER_S
        while True:
            try:
                client.search_experiments()
                break
            except Exception:
                assert time.time() < deadline and server.poll() is None, "MLflow server did not start"
                time.sleep(1)
        resumed = env.run("search", str(path), "--resume")
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert not (results / "mlflow_pending.jsonl").exists()
        exp = client.get_experiment_by_name("offline")
        runs = client.search_runs([exp.experiment_id])
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(runs) == 3 and len(children) == 2
        for child in children:
            assert child.data.tags["vaetune.status"] == "completed"
            assert steps(client, child.info.run_id, "val/elbo") == [1, 2]
            assert {a.path for a in client.list_artifacts(child.info.run_id)} == {"grids", "checkpoint"}
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_resume_with_more_trials_runs_them_and_a_searched_relative_source_is_found(env):
    """--resume with search.num_samples raised applies it and says so; a finished search resumed is
    not "interrupted"; data.source searched over folders named relative to the working folder works
    from the trials' own working folders."""
    for name, base in (("reds", (200, 30, 30)), ("blues", (30, 30, 200))):
        (env.tmp / name).mkdir()
        for i in range(24):
            Image.new("RGB", (16, 16), tuple(min(255, c + 5 * i) for c in base)).save(env.tmp / name / f"{i}.png")
    raw = space(env.tmp, "grow", num_samples=2, max_concurrent=1, scheduler="fifo", sampler="random")
    raw["data"] = {"source": {"choice": ["reds", "blues"]}, "image_size": 16, "cache_dir": str(env.tmp / "cache")}
    raw["train"]["epochs"] = 1
    path = env.write(raw)
    first = env.run("search", str(path))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    summary = pd.read_csv(env.tmp / "results" / "grow" / "summary.csv")
    assert len(summary) == 2 and (summary["status"] == "completed").all()

    more = env.run("search", str(path), "--resume", "--set", "search.num_samples=3")
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    assert "--resume: search.num_samples: 2 -> 3: the search goes on to 3 trials (1 more)" in more.stdout
    assert "interrupted" not in more.stdout
    summary = pd.read_csv(env.tmp / "results" / "grow" / "summary.csv")
    assert len(summary) == 3 and (summary["status"] == "completed").all()
    assert set(summary["data.source"]) <= {"reds", "blues"}
    assert json.loads((env.tmp / "results" / "grow" / "search.json").read_text())["trials"] == 3
    _check_driver_records(env, "grow")

    again = env.run("search", str(path), "--resume", "--set", "search.num_samples=3")  # finished: nothing to do
    assert again.returncode == 0 and "interrupted" not in again.stdout, again.stdout[-3000:] + again.stderr[-3000:]
    assert len(pd.read_csv(env.tmp / "results" / "grow" / "summary.csv")) == 3


def _mlflow_server(env, port: int) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:port over one store in env.tmp, answering when this returns."""
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1", "--backend-store-uri", f"sqlite:///{env.tmp / 'server.db'}",
                               "--default-artifact-root", str(env.tmp / "server-artifacts")],
                              cwd=env.tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # starts faster
    client = MlflowClient(f"http://127.0.0.1:{port}")
    deadline = time.time() + SERVER_S
    while True:
        try:
            client.search_experiments()
            return server
        except Exception:
            assert time.time() < deadline and server.poll() is None, "MLflow server did not start"
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_tracking_server_that_goes_down_during_a_search_and_comes_back_loses_nothing(env):
    port = _free_port()
    epochs = 6
    raw = space(env.tmp, "flaky", num_samples=3, max_concurrent=1, scheduler="fifo")
    raw["train"]["epochs"] = epochs
    raw["tracking"] = {"uri": f"http://127.0.0.1:{port}"}
    path = env.write(raw)
    server = _mlflow_server(env, port)
    client = MlflowClient(f"http://127.0.0.1:{port}")
    log_out, log_err = env.tmp / "driver.out", env.tmp / "driver.err"  # files: a full pipe would stall the driver
    with log_out.open("w") as fo, log_err.open("w") as fe:
        driver = subprocess.Popen(env.cmd("search", str(path)), cwd=env.tmp, env=env.env, stdout=fo, stderr=fe,
                                  start_new_session=True)
    held: set[int] = set()
    try:
        try:
            deadline = time.time() + HANG_GUARD_S
            while True:  # the first trial has its run: its epochs are all still to come
                exp = client.get_experiment_by_name("flaky")
                runs = client.search_runs([exp.experiment_id]) if exp else []
                if any("mlflow.parentRunId" in r.data.tags for r in runs):
                    break
                assert time.time() < deadline and driver.poll() is None, "the search logged nothing"
                time.sleep(0.2)
            _stop(server)  # down mid-search: what the driver logs now is queued ...
            while "training goes on, tracking is queued" not in log_err.read_text():
                assert time.time() < deadline and driver.poll() is None, "the search never noticed the server down"
                time.sleep(0.2)
            hold_ray_workers(env.ray_tmp, held)  # ... the trials wait (tests/hold.py) ...
            server = _mlflow_server(env, port)  # ... while the server comes back, seconds later
            assert driver.poll() is None, "the search ended before the server came back"
            release_ray_workers(held)
            driver.wait(timeout=HANG_GUARD_S)
        finally:
            if driver.poll() is None:
                _stop(driver)
                kill_held(held)
        out, err = log_out.read_text(), log_err.read_text()
        assert driver.returncode == 0, out[-3000:] + err[-3000:]
        assert "training goes on, tracking is queued" in err and "reachable again" in err
        results = env.tmp / "results" / "flaky"
        assert not (results / "mlflow_pending.jsonl").exists()  # everything was sent during the search
        # read from the server that came back
        exp = client.get_experiment_by_name("flaky")
        runs = client.search_runs([exp.experiment_id])
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(runs) == 4 and len(children) == 3
        assert all(r.info.status == "FINISHED" for r in runs)
        for child in children:
            assert steps(client, child.info.run_id, "val/elbo") == list(range(1, epochs + 1))
            grids = {a.path for a in client.list_artifacts(child.info.run_id, "grids")}
            assert {f"grids/{k}_epoch{e:04d}.png" for k in ("recon", "samples") for e in range(1, epochs + 1)} <= grids
            assert [a.path for a in client.list_artifacts(child.info.run_id, "checkpoint")] == ["checkpoint/checkpoint.pt"]
    finally:
        with contextlib.suppress(ProcessLookupError):  # the first server, if the test ended while it was down
            _stop(server)
