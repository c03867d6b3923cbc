"""A search stopped by a signal ends as Ctrl-C does: SIGTERM (kill, a job scheduler, a closing
terminal) stops the trials, saves the state and exits 143 with the resume hint, and the search
resumes to its end; Ctrl-C while Ray is starting exits 130, never a crash of the interpreter.
Real processes and a real Ray; each signal is sent at a moment the process announces itself
(a console line), so nothing waits on a fixed time."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hold import read_until

from vaetune.results import STATUS, SUMMARY_FILE

pytestmark = pytest.mark.slow  # real searches stopped by signals, and interpreters started to be interrupted

HANG_S = 500  # a hang guard per process, sized for a loaded 2-core machine

SPACE = {
    "name": "sig",
    "data": {"source": "builtin:sprites", "image_size": 16, "count": 64, "min_images": 16},
    "model": {"arch": "conv", "width": 4, "latent_dim": 2},
    "train": {"epochs": 2, "batch_size": 16, "num_threads": 1, "grid_size": 2,
              "beta": {"loguniform": [0.01, 1.0]}},
    "search": {"num_samples": 2, "max_concurrent": 1, "max_failures": 0},
}


@pytest.fixture
def run(tmp_path):
    """Start `vaetune ARGS` in tmp_path with its own Ray temp dir; everything is killed afterwards."""
    ray_tmp = tempfile.mkdtemp(prefix="vt", dir="/tmp")  # short: Ray's socket paths are limited
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"RAY_TMPDIR": ray_tmp, "PYTHONUNBUFFERED": "1"})
    started: list[subprocess.Popen] = []

    def start(*args: str, stream: str) -> subprocess.Popen:
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        pipes["stderr" if stream == "stdout" else "stdout"] = subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, "-m", "vaetune.cli", *args], cwd=tmp_path, env=env, text=True,
                                start_new_session=True, **pipes)
        started.append(proc)
        return proc

    start.ray_tmp = ray_tmp
    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)  # Ray processes of this test's temp dir
    shutil.rmtree(ray_tmp, ignore_errors=True)


def space_file(tmp_path: Path) -> Path:
    raw = copy.deepcopy(SPACE)
    raw["data"]["cache_dir"] = str(tmp_path / "cache")
    path = tmp_path / "sig.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_sigterm_stops_a_search_like_ctrl_c_and_it_resumes(tmp_path, run):
    space = space_file(tmp_path)
    driver = run("search", str(space), stream="stdout")
    assert "started" in read_until(driver.stdout, "  started")  # a trial runs
    driver.send_signal(signal.SIGTERM)
    out = driver.stdout.read()
    code = driver.wait(timeout=HANG_S)
    assert code == 143, out[-3000:]  # 128 + SIGTERM, not Ray's abort (134)
    assert f"continue with: vaetune search {space} --resume" in out
    assert "Traceback" not in out

    resumed = run("search", str(space), "--resume", stream="stdout")
    out = resumed.stdout.read()
    assert resumed.wait(timeout=HANG_S) == 0, out[-3000:]
    summary = pd.read_csv(tmp_path / "results" / "sig" / SUMMARY_FILE)
    assert len(summary) == SPACE["search"]["num_samples"] and "errored" not in set(summary[STATUS])

    # the same search uninterrupted (its own name): the same trials (search.seed draws the same β
    # in the same order, train.seed the same weights) with the same values at their last epoch
    whole = run("search", str(space), "--set", "name=whole", stream="stdout")
    out = whole.stdout.read()
    assert whole.wait(timeout=HANG_S) == 0, out[-3000:]
    reference = pd.read_csv(tmp_path / "results" / "whole" / SUMMARY_FILE)
    measured = [c for c in reference if c.startswith("final/") and not c.startswith("final/time/")]
    assert "final/val/elbo" in measured and "final/train/loss" in measured
    keep = ["train.beta", STATUS, "epochs", *measured]
    a, b = (f[keep].sort_values("train.beta").reset_index(drop=True) for f in (summary, reference))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)


def ray_starting(ray_tmp: str) -> bool:
    """Whether the GCS server of the Ray that uses `ray_tmp` runs: ray.init started it and is now
    starting the rest (the raylet, the driver's connection)."""
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and b"gcs_server" in (cmd := (proc / "cmdline").read_bytes()) \
                    and ray_tmp.encode() in cmd:
                return True
    return False


def test_ctrl_c_while_ray_starts_exits_130(tmp_path, run):
    """Ctrl-C inside ray.init (sent once its GCS server runs): Ray finishes starting, shuts down,
    and the command exits as Ctrl-C (a KeyboardInterrupt inside ray.init crashed the interpreter)."""
    space = space_file(tmp_path)
    driver = run("search", str(space), stream="stderr")
    read_until(driver.stderr, "images of builtin:sprites")  # the pre-flight checks: Ray starts next
    deadline = time.time() + HANG_S
    while not ray_starting(run.ray_tmp) and driver.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert driver.poll() is None, "the search ended before Ray started"
    driver.send_signal(signal.SIGINT)
    err = driver.stderr.read()
    code = driver.wait(timeout=HANG_S)
    assert code == 130, err[-3000:]  # not 139 (a segfault) or 134
    assert "Fatal Python error" not in err and "Traceback" not in err


# Python code that a C extension runs (torch's import does, through pybind11), interrupted by Ctrl-C:
# CPython then marks the process as killed by SIGINT, whatever catches the KeyboardInterrupt later
_CTRL_C_IN_C_CODE = """
import ctypes, sys
from vaetune import cli
from vaetune.commands import spaces

def run(args):
    run_string = ctypes.pythonapi.PyRun_String
    run_string.restype = ctypes.py_object
    run_string.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object]
    scope = {}
    run_string(b"import os, signal\\nos.kill(os.getpid(), signal.SIGINT)\\n", 257, scope, scope)  # Py_file_input
    return 0

spaces.run = run  # `vaetune spaces` does it
sys.argv = ["vaetune", "spaces"]
EXIT
"""


@pytest.mark.parametrize(("ending", "code"), [("sys.exit(cli.main())", -signal.SIGINT), ("cli.entry()", 130)])
def test_ctrl_c_inside_code_a_c_extension_runs_exits_130(tmp_path, ending, code):
    """The command line prints `interrupted` either way; ended by sys.exit, as it was, the process
    then dies of SIGINT (what a Ctrl-C during torch's import did); `vaetune`'s entry exits 130."""
    (tmp_path / "ctrl_c.py").write_text(_CTRL_C_IN_C_CODE.replace("EXIT", ending))
    proc = subprocess.run([sys.executable, "-m", "ctrl_c"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=HANG_S)  # run as a module, as `python -m vaetune.cli` is
    assert proc.returncode == code, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == "vaetune spaces: interrupted"
