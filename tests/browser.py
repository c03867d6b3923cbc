"""Look at a page as a person would: a server started like a user starts it, headless Chromium.

Shared by the tests of `vaetune ui` (MLflow's UI) and `vaetune dashboard` (Optuna Dashboard).
Chromium is Debian's (scripts/test.sh installs it in CI), driven by Playwright (the dev extra;
`playwright install` is never needed: the browser is the system's). A test without either is
skipped with the reason, except where the environment sets `CI`: there a missing browser fails
the test with one line saying how to install it, so that CI never passes with the browser checks
unrun. Single-page apps load their data over their own REST API after the
page: wait for selectors, never for a fixed time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from guards import SERVER_S

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user who set nothing for MLflow (whatever another test left set)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def vaetune(*args: str) -> list[str]:
    return [sys.executable, "-m", "vaetune.cli", *args]


@contextmanager
def serving(cmd: list[str], cwd: Path, ready_url: str, log: Path, timeout: float = SERVER_S):
    """Run a server command (its output to `log`) until `ready_url` answers; stop it after."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=user_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.time() + timeout  # a hang guard: MLflow's server starts in up to a minute
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=5).read()
                break
            except OSError:
                said = log.read_text()[-3000:]
                assert proc.poll() is None, f"{' '.join(cmd[2:])} exited {proc.returncode}:\n{said}"
                assert time.time() < deadline, f"{ready_url} did not answer:\n{said}"
                time.sleep(0.5)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def missing(reason: str) -> None:
    """Skip the test for want of `reason`; fail it, in one line, where `CI` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser checks must run)", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str:
    """The system's Chromium, or `missing` says how to install it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        missing("chromium is not installed: apt-get install chromium (scripts/test.sh does it as root)")
    return chromium


@contextmanager
def chromium_page(width: int = 1920, height: int = 1080):
    """A page of headless Chromium; without Chromium or Playwright, see `missing`."""
    chromium = find_chromium()
    try:
        from playwright import sync_api
    except ImportError:
        missing("playwright is not installed: pip install -e '.[dev]' (scripts/test.sh does it)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)  # a hang guard on a loaded machine, not a speed claim
            yield page
        finally:
            browser.close()
