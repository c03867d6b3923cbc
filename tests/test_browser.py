"""The browser checks never pass unrun in CI: with `CI` set, a machine without Chromium fails
them with one line saying how to install it; elsewhere they are skipped with that reason.

A test of tests/browser.py itself, run by pytest in a subprocess whose PATH holds no Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test starts pytest in a process, as the browser checks run there

HERE = Path(__file__).parent


@pytest.fixture
def browser_test(tmp_path) -> Path:
    (tmp_path / "bin").mkdir()  # an empty PATH: no chromium on it, whatever this machine has
    test = tmp_path / "test_page.py"
    test.write_text("from browser import chromium_page\n\n\ndef test_page():\n    with chromium_page():\n        pass\n")
    return test


def _run(test: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    base.update(PATH=str(test.parent / "bin"), PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "pytest", str(test), "-q", "-rs", "-p", "no:cacheprovider",
                           "--rootdir", str(test.parent)], cwd=test.parent, env={**base, **env},
                          capture_output=True, text=True, timeout=300)


def test_under_ci_a_missing_chromium_fails_with_how_to_install_it(browser_test):
    done = _run(browser_test, CI="true")
    assert done.returncode == 1, done.stdout
    said = [line for line in done.stdout.splitlines() if "chromium is not installed" in line]
    assert said and all("apt-get install chromium" in line and "CI is set" in line for line in said), done.stdout
    assert "Traceback" not in done.stdout and "1 failed" in done.stdout


def test_elsewhere_a_missing_chromium_is_a_skip_with_the_reason(browser_test):
    done = _run(browser_test)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert "chromium is not installed: apt-get install chromium" in done.stdout  # -rs prints the reason
