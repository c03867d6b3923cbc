"""What stops a running search that is neither a mistake in it nor a bug: a disk that fills up, an
output that is closed (`| head`), Ray's raylet killed (as the kernel's out-of-memory killer does).

Each ends the search in one line of vaetune's instead of pages of Ray's, with what to do:
- a full disk (a trial's checkpoint, Tune's experiment snapshot, the Optuna study): the search is
  stopped as Ctrl-C stops it (trials stopped, state saved), Ray's repeated tracebacks are
  dropped, and the command says which folder is full and to free space, then `--resume`; trials
  that errored for want of space are resumed with the search (`resume_errored`);
- a closed output: the search is stopped the same way and the command ends quietly (exit 141);
- a dead raylet: the driver's Ray ends the process on its own seconds later (exit 1, no Python
  code runs), so a watcher sees the raylet die first, says so with the resume hint, and ends
  the process itself; the experiment's state is saved every few seconds while it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from vaetune.errors import UserError, disk_full
from vaetune.fileio import FULL_BYTES, free_bytes, is_remote
from vaetune.machine import size

log = logging.getLogger(__name__)

DISK = "disk"
OUTPUT = "output"
_STOPPED: dict[str, str] = {}  # why vaetune stopped the running search itself: DISK or OUTPUT -> detail
RAYLET = "raylet"  # the process name of Ray's node manager


def reset() -> None:
    """A new search starts: nothing has stopped it yet."""
    _STOPPED.clear()


def stopped_for(reason: str) -> str | None:
    """What stopped the last search for `reason` (DISK, OUTPUT), or None."""
    return _STOPPED.get(reason)


def stop_search(reason: str, detail: str) -> None:
    """Stop the running search as Ctrl-C does (Ray Tune stops the trials and saves its state),
    once, for `reason`; the command tells why when the Tuner returns."""
    if reason in _STOPPED:
        return
    _STOPPED[reason] = detail
    os.kill(os.getpid(), signal.SIGINT)  # handled in the main thread: Tune's handler while it fits


class _DiskFullLines(logging.Filter):
    """Ray's lines about a full disk (a failed sync of the experiment, repeated every snapshot)
    stop the search and are dropped; Tune's "Stop signal received" is dropped when vaetune sent it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if disk_full(message) or (record.exc_info and disk_full(record.exc_info[1])):
            stop_search(DISK, message)
            return False
        return not (_STOPPED and message.startswith(("Stop signal received", "Unhandled error")))


_FILTER = _DiskFullLines()
# Tune's sync of the experiment and its controller; Ray's "Unhandled error" of the trial's lost result
_WATCHED_LOGGERS = ("ray.train._internal.syncer", "ray.train._internal.storage", "ray.tune.tune",
                    "ray.tune.execution.tune_controller", "ray.tune.execution.experiment_state",
                    "ray._private.worker")


def watch_ray_logs() -> None:
    """Install the filter on the Ray loggers that report a full disk (idempotent)."""
    for name in _WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def on_trial_error(error: str) -> None:
    """A trial that failed for want of space stops the search (the next would fail the same way)."""
    if disk_full(error):
        stop_search(DISK, error)


def out_of_space(folders: dict[str, str], command: str, *, started: bool) -> UserError:
    """The one line for a search stopped by a full disk: the folders with (almost) no room left
    (`folders`: key or variable -> folder), and what to do."""
    full = [f"{key} {folder} ({size(free_bytes(folder))} free)" for key, folder in folders.items()
            if not is_remote(folder) and free_bytes(folder) < FULL_BYTES]
    where = "; ".join(full) or f"search.storage {folders.get('search.storage', '?')}"
    then = f"continue with: {command} --resume" if started else f"run it again: {command}"
    return UserError(f"no space left on device: {where}; the search stopped: free space there, then {then}")


@contextlib.contextmanager
def watch_raylet(command: str, *, quiet: bool) -> Iterator[None]:
    """While the block runs: if the raylet of the Ray this process started dies, print one line
    naming how it died and the resume hint, and end the process (exit 1) before Ray's core
    worker does so without a word. `quiet` (no --verbose): Ray's own report of the death (the
    raylet's last 20 log lines, printed to stdout) is dropped."""
    raylets = [pid for pid, name in children(os.getpid()) if name == RAYLET]
    if not raylets:  # a joined cluster's raylet is not ours to watch
        yield
        return
    done = threading.Event()
    thread = threading.Thread(target=_watch, args=(raylets[0], done, command), daemon=True, name="raylet-watch")
    thread.start()
    stdout = sys.stdout
    if quiet:
        sys.stdout = _WithoutRayletDeath(stdout)
    try:
        yield
    finally:
        done.set()  # the thread ends when ray.shutdown() stops the raylet
        sys.stdout = stdout


RAYLET_DEATH = "Raylet is terminated. Termination is unexpected"  # how Ray's report of it starts


class _WithoutRayletDeath:
    """A stream that writes what it is given but Ray's report of its raylet's death (one print:
    the text, then its newline), which the watcher says in one line instead."""

    def __init__(self, stream):
        self._stream = stream
        self._dropped = threading.local()  # the report was just dropped in this thread: its newline too

    def write(self, text: str) -> int:
        if RAYLET_DEATH in text:
            self._dropped.newline = True
            return len(text)
        if text == "\n" and getattr(self._dropped, "newline", False):
            self._dropped.newline = False
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def children(parent: int) -> list[tuple[int, str]]:
    """(pid, name) of the processes whose parent is `parent`, from /proc (Linux; none elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if int(rest[1]) == parent:  # the fields after the name: state, ppid, ...
            found.append((int(stat.parent.name), name))
    return found


def _watch(raylet: int, done: threading.Event, command: str) -> None:
    """Wait for the raylet's end (it is this process's child: the kernel wakes the wait at once,
    before Ray's own processes have noticed and printed pages of its log)."""
    try:
        info = os.waitid(os.P_PID, raylet, os.WEXITED | os.WNOWAIT)  # leaves it for Ray to reap
    except ChildProcessError:  # reaped by Ray already: it is gone
        info = None
    if done.is_set():  # ray.shutdown() ended it after the block: not a death
        return
    prefix = " ".join(command.split()[:2])
    sys.stderr.write(f"{prefix}: failed: Ray's raylet (pid {raylet}, which runs the trials on this machine) "
                     f"{_how_it_ended(info)}; the search's state was saved every few seconds: continue "
                     f"with: {command} --resume\n")
    sys.stderr.flush()
    os._exit(1)


def _how_it_ended(info) -> str:
    """`was killed by SIGKILL (...)`, `exited with code N`, from its exit status."""
    if info is None:
        return "died"
    if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        name = signal.Signals(info.si_status).name
        oom = ", as the kernel's out-of-memory killer does (see dmesg or journalctl -k)" if name == "SIGKILL" else ""
        return f"was killed by {name}{oom}"
    return f"exited with code {info.si_status}"


def results_folders(results: Path, config, ray_temp: str) -> dict[str, str]:
    """The folders a search fills, by the key or variable that chose each, for `out_of_space`."""
    from vaetune.tracking import resolve_uri

    folders = {"search.storage": str(results), "Ray's temporary folder": ray_temp,
               "data.cache_dir": str(config.data.cache_dir)}
    uri = resolve_uri(config.tracking.uri)
    if uri.startswith("sqlite:///"):
        folders["the MLflow store"] = str(Path(uri[len("sqlite:///"):]).parent)
    return folders
