"""Searches on a real multi-node Ray cluster on this machine: a lost worker node, and a driver
that joins a running cluster with `--address`, is killed, and resumes with `--resume`.

The cluster is `ray.cluster_utils.Cluster`: a head with no CPUs (so every trial runs on a worker
node, as on `cluster.yaml`'s head) and two worker nodes of one CPU each, each its own raylet and
object store. Its temp dir (RAY_TMPDIR) is private to this module, so `--address auto` of anyone
else on the machine never finds it. The storage is a local path, shared among the nodes by
construction, as an NFS/EFS mount or s3:// is on a real cluster. `vaetune search` runs as a
subprocess, the real command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from guards import HANG_GUARD_S
from hold import hold_ray_workers, kill_held

pytestmark = pytest.mark.slow  # a local multi-node Ray cluster

EPOCHS = 10
SPACE = {
    "data": {"source": "builtin:sprites", "image_size": 16, "count": 1500},
    "model": {"arch": "conv", "width": 8, "latent_dim": {"choice": [2, 4]}},
    "train": {"epochs": EPOCHS, "batch_size": 64, "lr": {"loguniform": [0.0005, 0.005]},
              "beta": {"loguniform": [0.01, 1]}, "num_threads": 1, "grid_size": 4, "grid_every": 100},
    # FIFO: every trial must reach its last epoch; max_failures is left at its default
    "search": {"num_samples": 3, "max_concurrent": 2, "scheduler": "fifo"},
    "resources": {"cpu": 1},
}
# Notice a dead raylet in ~1 s instead of Ray's default ~15 s (health checks every 3 s, 5 misses).
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                      "health_check_failure_threshold": 2}


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="vt-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", tmp)
        mp.delenv("RAY_ADDRESS", raising=False)
        c = Cluster(initialize_head=True, shutdown_at_exit=False,
                    head_node_args={"num_cpus": 0, "_system_config": FAST_HEALTH_CHECKS})
        c.ray_tmp = tmp  # in the environment of every process of the cluster
        try:
            for _ in range(2):
                c.add_node(num_cpus=1)
            c.wait_for_nodes()
            yield c
        finally:
            c.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)


def _write_space(folder: Path, name: str, **search) -> Path:
    space = json.loads(json.dumps(SPACE))
    space["name"] = name
    space["search"].update(search)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def _start_search(cwd: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    log = open(cwd / f"search-{time.monotonic_ns()}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "vaetune.cli", "search", *args], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def _log(cwd: Path) -> str:
    return "\n".join(p.read_text()[-6000:] for p in sorted(cwd.glob("search-*.log")))


def _results(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _trial_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.glob("run_trial_*") if p.is_dir())


def _parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None  # the trial process has ended


def _raylet_pid(node) -> int:
    return node.all_processes["raylet"][0].process.pid


def _check_all_epochs(results: Path, n_trials: int, *, rewinds: int = 0) -> None:
    """Every trial ended completed and reported every epoch, in order; with `rewinds`, a trial may
    go back once to its last checkpoint the driver knew of (a killed driver's last snapshot)."""
    import pandas as pd

    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) == n_trials
    assert (summary["status"] == "completed").all(), summary[["trial_id", "status", "epochs", "error"]]
    assert (summary["epochs"] == EPOCHS).all()
    for trial_dir in _trial_dirs(results):
        epochs = [r["epoch"] for r in _results(trial_dir)]
        if not rewinds:
            assert epochs == list(range(1, EPOCHS + 1)), (trial_dir.name, epochs)
        back = [i for i in range(1, len(epochs)) if epochs[i] <= epochs[i - 1]]
        assert len(back) <= rewinds and sorted(set(epochs)) == list(range(1, EPOCHS + 1)), (trial_dir.name, epochs)
        for i in range(1, len(epochs)):  # apart from the rewind, one epoch after another
            assert epochs[i] == epochs[i - 1] + 1 or i in back, (trial_dir.name, epochs)


def _mlflow_children(cwd: Path, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")  # MLflow's own default store
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId")]


def test_search_survives_a_lost_worker_node(cluster, tmp_path):
    """A worker node dies mid-search: its trial is retried from its last checkpoint on another
    node (search.max_failures' default), and the search completes with no epoch lost."""
    space = _write_space(tmp_path, "nodeloss")
    workers = {_raylet_pid(n): n for n in cluster.worker_nodes}
    results = tmp_path / "results" / "nodeloss"
    proc = _start_search(tmp_path, str(space), "--address", cluster.address)
    placed: dict[str, int] = {}  # trial dir -> raylet pid of the node it ran on
    victim = killed_at = removed_at = None
    start = time.monotonic()
    while proc.poll() is None and victim is None and time.monotonic() - start < HANG_GUARD_S:
        running = {}  # trial dir -> its last result, for trials running on a worker now
        for trial_dir in _trial_dirs(results):
            last = (_results(trial_dir) or [{}])[-1]
            raylet = _parent_pid(last["pid"]) if last else None
            if raylet in workers:
                placed.setdefault(trial_dir.name, raylet)
                running[trial_dir] = last
        # both workers busy: remove the node of a trial that has checkpoints and epochs to go
        if len({placed[d.name] for d in running}) == 2:
            for trial_dir, last in running.items():
                if 2 <= last["epoch"] < EPOCHS - 2:
                    victim, killed_at, removed_at = trial_dir, last["epoch"], time.time()
                    cluster.remove_node(workers[placed[trial_dir.name]], allow_graceful=False)
                    break
        time.sleep(0.2)
    try:
        assert victim is not None, "no trial was seen running on a worker node\n" + _log(tmp_path)
        assert len(set(placed.values())) == 2, f"trials did not spread over both workers: {placed}"
        cluster.add_node(num_cpus=1)  # as the autoscaler would replace it
        assert _wait(proc, HANG_GUARD_S) == 0, _log(tmp_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    # An epoch whose result reached the driver just as the node died can be run again from the
    # checkpoint before it (seen once in ~10 runs): no epoch may be missing, none go back twice.
    _check_all_epochs(results, 3, rewinds=1)
    # the victim was retried once, from its checkpoint, not from scratch
    error = (victim / "error.txt").read_text()
    assert "node has died" in error or "node" in error.lower(), error
    history = _results(victim)
    restarts = [r["epoch"] for r in history if r["iterations_since_restore"] == 1]
    assert restarts[0] == 1 and len(restarts) == 2 and restarts[1] > 1, history
    assert restarts[1] >= killed_at  # resumed at or after the epoch seen when the node died
    resumed = next(r for r in history if r["iterations_since_restore"] == 1 and r["epoch"] > 1)
    print(f"\nnode removed at epoch {killed_at} of {victim.name[:18]}; its first epoch after the restore "
          f"(epoch {resumed['epoch']}) reported {resumed['timestamp'] - removed_at:.0f} s later")
    # MLflow: one child run per trial, all finished (the retried trial continued its run)
    children = _mlflow_children(tmp_path, "nodeloss")
    assert len(children) == 3 and all(r.info.status == "FINISHED" for r in children)
    assert len(cluster.global_state._live_node_ids()) == 3


def test_driver_joins_running_cluster_and_resumes_after_being_killed(cluster, tmp_path):
    """`vaetune search --address` uses the running cluster and leaves it running; a driver killed
    mid-search continues with `--resume` from the trials' checkpoints, and no epoch is lost.

    What a killed driver loses is the trials' progress after its last experiment snapshot: a
    trial goes back to the last checkpoint that snapshot knew of, so an epoch or two may be
    reported again (at most once per trial here)."""
    space = _write_space(tmp_path, "joined")
    results = tmp_path / "results" / "joined"
    proc = _start_search(tmp_path, str(space), "--address", cluster.address)
    start, witness, held = time.monotonic(), None, set()
    try:
        while proc.poll() is None and time.monotonic() - start < HANG_GUARD_S:
            if witness is None:
                for trial_dir in _trial_dirs(results):
                    history = _results(trial_dir)
                    if len(history) >= 2 and history[-1]["epoch"] < EPOCHS - 2:  # a checkpoint, epochs to go
                        # the cluster's workers stopped: no trial goes on however fast the machine
                        hold_ray_workers(cluster.ray_tmp, held)
                        witness, second = trial_dir, history[1]["timestamp"]
                        break
            else:  # the driver goes on: wait for a snapshot taken after the witness's 2nd checkpoint
                snapshot_time = max((p.stat().st_mtime for p in results.glob("experiment_state-*.json")), default=0.0)
                if snapshot_time > second + 1:
                    break
            time.sleep(0.2)
        assert witness is not None and proc.poll() is None, "the search ended before it could be killed\n" + _log(tmp_path)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and nothing else: the cluster is not ours to stop
        kill_held(held)  # the dead driver's trials (its job's workers, which Ray would end anyway)
    proc.wait()
    assert not (results / "summary.csv").exists()
    assert len(cluster.global_state._live_node_ids()) == 3  # killing a driver leaves the cluster up

    proc = _start_search(tmp_path, str(space), "--address", cluster.address, "--resume")
    assert _wait(proc, HANG_GUARD_S) == 0, _log(tmp_path)
    _check_all_epochs(results, 3, rewinds=1)
    history = _results(witness)  # it continued from a checkpoint, not from epoch 1
    restarts = [r["epoch"] for r in history if r["iterations_since_restore"] == 1]
    assert len(restarts) == 2 and restarts[1] >= 3, [(r["epoch"], r["iterations_since_restore"]) for r in history]
    assert len(cluster.global_state._live_node_ids()) == 3  # and so does a driver that finishes
    assert cluster.remaining_processes_alive()


def test_a_trial_no_node_of_the_joined_cluster_can_run_is_refused_at_once(cluster, tmp_path):
    """The cluster's nodes have one CPU and no GPU, and no autoscaler: a search asking a GPU per
    trial would queue for ever; it is refused once joined, before any trial or file."""
    space = _write_space(tmp_path, "gpu")
    raw = yaml.safe_load(space.read_text())
    raw["resources"] = {"cpu": 1, "gpu": 1}
    space.write_text(yaml.safe_dump(raw))
    proc = _start_search(tmp_path, str(space), "--address", cluster.address)
    assert _wait(proc, 120) == 2, _log(tmp_path)
    last = _log(tmp_path).strip().splitlines()[-1]
    assert last.startswith("vaetune search: error: resources: a trial asks for 1 CPU and 1 GPU") and cluster.address in last
    assert "Traceback" not in _log(tmp_path)
    assert not (tmp_path / "results").exists()  # the search state is written only once a trial can run
