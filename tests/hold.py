"""Hold a running `vaetune search` or `vaetune sweep` still, so that what a test does to it (kill
the driver, restart its tracking server) never races the machine's speed.

Holding stops this run's Ray worker processes (trial actors, idle workers) with SIGSTOP: no trial
trains on, while the driver (and the raylet and GCS it talks to) goes on, saves the experiment's
state and talks to MLflow. `kill_at_first_completion` holds a run at the first "completed" line
of its console (one line per trial event, printed as it happens) and, once the saved state and
the results folder both record a finished trial, SIGKILLs the driver and everything it started,
as a lost machine would.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from guards import HANG_GUARD_S

from vaetune.results import COMPLETED


def snapshot(exp_dir: Path) -> dict[str, str] | None:
    """Trial id -> status in the experiment's latest saved state ({} before the first one; None
    while it is being rewritten)."""
    files = sorted(glob.glob(str(exp_dir / "experiment_state-*.json")))
    if not files:
        return {}
    try:
        data = json.loads(Path(files[-1]).read_text())
    except (json.JSONDecodeError, OSError):  # being rewritten
        return None
    states = [json.loads(t[0]) for t in data["trial_data"]]
    return {s["trial_id"]: s["status"] for s in states}


def trial_epochs(exp_dir: Path) -> dict[str, list[int]]:
    """Trial id -> the epochs in its result.json in the results folder (a line being written, or
    cut by a kill, ends the list)."""
    out = {}
    for result in exp_dir.glob("run_trial_*/result.json"):
        records = []
        for line in result.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        if records:
            out[records[0]["trial_id"]] = [int(r["epoch"]) for r in records]
    return out


# the process title of a trial's actor: Tune runs a function trainable in an `ImplicitFunc` actor
TRIAL_ACTOR = b"ray::ImplicitFunc"


def hold_ray_workers(ray_tmp: str, held: set[int], *, only: bytes = b"ray::") -> None:
    """SIGSTOP the Ray worker processes (not the raylet, the GCS or the agents) of the Ray instance
    whose RAY_TMPDIR is `ray_tmp` whose title starts with `only` (`TRIAL_ACTOR`: trials' actors
    alone, idle workers left to host the next ones), adding each to `held`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in held:
            continue
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0]
            # a worker is "ray::IDLE" or "ray::<actor>.<method>"; a node's agents (which its raylet
            # fate-shares with) are "ray::DashboardAgent", "ray::RuntimeEnvAgent"
            worker = title.startswith(only) and not title.endswith(b"Agent")
            ours = f"RAY_TMPDIR={ray_tmp}".encode() in (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if worker and ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGSTOP)
                held.add(int(proc.name))


def hold_until_alive(ray_tmp: str, driver: subprocess.Popen, count: int, guard_s: float) -> set[int]:
    """Hold each trial's Ray process (SIGSTOP) as it appears until `count` are alive together (or
    the driver ends, or `guard_s` passes): none can finish before the last has started, however
    fast or slow the machine. Returns the held pids; release them with release_ray_workers."""
    held: set[int] = set()
    deadline = time.time() + guard_s
    while len(held) < count and driver.poll() is None and time.time() < deadline:
        hold_ray_workers(ray_tmp, held, only=TRIAL_ACTOR)
        time.sleep(0.05)
    return held


def kill_held(held: set[int]) -> None:
    """SIGKILL what `hold_ray_workers` stopped (a stopped process dies of SIGKILL too)."""
    for pid in held:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def read_until(stream, text: str) -> str:
    """The lines of a text stream up to the first that holds `text`, or all of them if it ended first."""
    seen = ""
    for line in stream:
        seen += line
        if text in line:
            break
    return seen


def read_to_first_completion(driver: subprocess.Popen) -> str:
    """What a driver started with `stdout=PIPE, text=True` printed, up to its console's first
    "completed" line (printed and flushed as the trial ends), or all of it if it ended first."""
    return read_until(driver.stdout, f"  {COMPLETED}")


def release_ray_workers(held: set[int]) -> None:
    """SIGCONT what `hold_ray_workers` stopped: the trials go on where they were."""
    for pid in held:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    held.clear()


def all_alive_at_once(ray_tmp: str, driver: subprocess.Popen, count: int,
                      on_held: Callable[[set[int]], None] = lambda held: None) -> tuple[int, int]:
    """Hold each trial actor of `driver`'s search as it appears until `count` are alive together
    (`on_held` sees them then), let them all go on and wait for the driver: (how many were alive
    at once, its exit code). A driver still running when this ends, by a failure, is killed."""
    held: set[int] = set()
    try:
        held = hold_until_alive(ray_tmp, driver, count, HANG_GUARD_S)
        on_held(held)
        at_once = len(held)
        release_ray_workers(held)
        return at_once, driver.wait(timeout=HANG_GUARD_S)
    finally:
        release_ray_workers(held)
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)


def stop_held(driver: subprocess.Popen, held: set[int]) -> None:
    """SIGKILL the driver and everything it started, and the held workers; reap it and close its output."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(driver.pid, signal.SIGKILL)
    kill_held(held)
    driver.wait()
    driver.stdout.close()


def kill_at_first_completion(env, args: list[str], exp_dir: Path, epochs: int, *,
                             timeout: float = HANG_GUARD_S) -> set[str]:
    """Run `vaetune ARGS` in `env` (tests/test_search.py's Env), hold it at its first completed trial,
    SIGKILL it once its saved state records a trial finished (`epochs` epochs in the results folder
    too), and clean up. Returns the finished trials (one or more)."""
    driver = subprocess.Popen(env.cmd(*args), cwd=env.tmp, env=env.env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    held: set[int] = set()
    try:
        if f"  {COMPLETED}" in read_to_first_completion(driver):
            hold_ray_workers(env.ray_tmp, held)
        assert held, "the run ended, or no trial completed, before its workers could be held"
        deadline = time.time() + timeout  # a hang guard
        finished: set[str] = set()
        while time.time() < deadline and driver.poll() is None and not finished:
            hold_ray_workers(env.ray_tmp, held)  # any worker Ray starts for the waiting trials
            done = {t for t, status in (snapshot(exp_dir) or {}).items() if status == "TERMINATED"}
            finished = {t for t, e in trial_epochs(exp_dir).items() if t in done and e[-1] == epochs}
            time.sleep(0.2)
        assert driver.poll() is None and finished, "the held run's state never recorded its finished trial"
        return finished
    finally:
        stop_held(driver, held)
        env.cleanup()
