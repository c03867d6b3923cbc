"""The shell scripts: setup fails loudly when pip does, and the GPU check stands down without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_setup_fails_with_pips_message_when_the_install_fails(tmp_path):
    """A project pip cannot install (its pyproject.toml is not TOML): setup exits 1 with pip's own
    error and a line naming the failed install, instead of running on with a stale .venv."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    (tmp_path / "pyproject.toml").write_text("this is [[ not toml\n")
    done = subprocess.run(["bash", "scripts/setup.sh", "dev"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)  # creates .venv first (python3 -m venv): seconds
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Expected '=' after a key" in done.stderr  # pip's message, shown
    assert "setup failed: pip install -e '.[dev]'" in done.stderr.splitlines()[-1]


def test_gpu_check_without_a_gpu_says_so_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU visible, whatever this machine has
    done = subprocess.run(["bash", "scripts/gpu-check.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpu-check: no GPU on this machine")
    assert done.stdout.count("\n") == 1  # one line: it stopped before any setup or test


def test_every_script_parses():
    for script in sorted((ROOT / "scripts").glob("*.sh")):
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{script.name}: {done.stderr}"
