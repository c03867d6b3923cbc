"""One process at a time on a results folder: while a search (or `vaetune train --out`) runs, a
second start, --resume, export or report of it is refused in one line naming the process; a
killed holder leaves nothing stuck. Real processes, a real Ray search held still by tests/hold.py
(its workers stopped), so that nothing races the machine's speed."""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.hold import hold_ray_workers, stop_held
from vaetune import cli
from vaetune.results import SEARCH_FILE, SPACE_FILE, SUMMARY_FILE

pytestmark = pytest.mark.slow  # a real search and a training run held from another process

HANG_S = 400  # a hang guard for a search to start its trials on a loaded 2-core machine

SPACE = {
    "name": "held",
    "data": {"source": "builtin:sprites", "image_size": 16, "count": 64, "min_images": 16},
    "model": {"arch": "conv", "width": 4, "latent_dim": 2},
    "train": {"epochs": 2, "batch_size": 16, "num_threads": 1, "grid_size": 2,
              "beta": {"loguniform": [0.01, 1.0]}},
    "search": {"num_samples": 2, "max_concurrent": 1, "max_failures": 0},
}


def run_cli(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def checksums(folder: Path) -> dict[str, str]:
    """vaetune's own files of a results folder (the live search's driver goes on writing Ray's)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.name in (SEARCH_FILE, SPACE_FILE, SUMMARY_FILE)}


def refused(capsys, argv: list[str], pid: int) -> str:
    code = run_cli(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith("vaetune") and "is running there now" in lines[-1], err[-2000:]
    assert f"in process {pid}" in lines[-1] and f"kill -INT {pid}" in lines[-1]
    return lines[-1]


def test_a_running_search_holds_its_folder(tmp_path, monkeypatch, capsys):
    space = tmp_path / "held.yaml"
    raw = copy.deepcopy(SPACE)
    raw["data"]["cache_dir"] = str(tmp_path / "cache")
    space.write_text(yaml.safe_dump(raw, sort_keys=False))
    ray_tmp = tempfile.mkdtemp(prefix="vt", dir="/tmp")  # short: Ray's socket paths are limited
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"RAY_TMPDIR": ray_tmp, "PYTHONUNBUFFERED": "1"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    driver = subprocess.Popen([sys.executable, "-m", "vaetune.cli", "search", str(space)], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    held: set[int] = set()
    try:
        deadline = time.time() + HANG_S
        for line in driver.stdout:  # a trial started: its folder and files exist
            if "  started" in line or time.time() > deadline:
                break
        hold_ray_workers(ray_tmp, held)  # no trial goes on, so the search cannot end meanwhile
        assert held and driver.poll() is None, "the search ended before it could be held"
        results = tmp_path / "results" / "held"
        before = checksums(results)
        assert {SEARCH_FILE, SPACE_FILE} <= before.keys()
        said = refused(capsys, ["search", str(space), "--resume"], driver.pid)
        assert str(results) in said
        refused(capsys, ["search", str(space)], driver.pid)  # not "already ran; use --resume"
        refused(capsys, ["export", str(results), "--out", str(tmp_path / "best.pt")], driver.pid)
        refused(capsys, ["report", str(results), "--no-mlflow"], driver.pid)
        assert checksums(results) == before and not (tmp_path / "best.pt").exists()
    finally:
        stop_held(driver, held)
        subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)  # Ray processes of this run's temp dir
        shutil.rmtree(ray_tmp, ignore_errors=True)
    # killed, the driver holds nothing: the lock left behind is stale and the search resumes past it
    code = run_cli(["search", str(space), "--resume"])
    err = capsys.readouterr().err
    assert "is running there now" not in err and code == 0, err[-2000:]


HOLDER = """
import sys
from vaetune.results import hold
with hold(sys.argv[1], "a training run"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_training_run_holds_its_folder_and_a_killed_holder_leaves_it_free(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    space = tmp_path / "s.yaml"
    raw = copy.deepcopy(SPACE)
    raw["train"]["epochs"] = 1
    raw["data"]["cache_dir"] = str(tmp_path / "cache")
    space.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused(capsys, ["train", str(space), "--out", str(out)], holder.pid)
        assert not out.exists()
    finally:
        holder.kill()  # SIGKILL: no clean-up of its own runs
        holder.wait()
        holder.stdout.close()
        holder.stdin.close()
    assert (tmp_path / ".run.lock").exists()  # left behind by the killed holder, and held by nobody
    assert run_cli(["train", str(space), "--out", str(out)]) == 0
    assert (out / "checkpoint_epoch0001").is_dir() and not (tmp_path / ".run.lock").exists()
