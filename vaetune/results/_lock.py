"""One process at a time on a results folder: a search, a sweep or `vaetune train --out` holds
its folder while it runs, and a second start, --resume, export or report of it is refused,
naming the process that holds it.

The hold is an `fcntl.flock` on a small file beside the folder (``.<name>.lock``, beside it so that
a start refused before anything is written leaves no folder behind). The kernel releases a flock
when its holder dies, however it dies, so a killed process never leaves a folder stuck: a lock
file nobody holds is stale and ignored. The file says who holds it (pid, command, start time).
A hold may also wait for its holder (`wait_s`): two first searches of a project take turns to
create its MLflow store (vaetune.tracking.open_store).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from vaetune.errors import UserError


def lock_file(folder: str | Path) -> Path:
    """The lock of `folder`: ``.<name>.lock`` beside it."""
    folder = Path(folder).expanduser().absolute()
    return folder.with_name(f".{folder.name}.lock")


def holder(folder: str | Path) -> dict | None:
    """Who holds `folder` now ({pid, command, started}), or None: nobody, a stale lock file, or this
    very process (which may read its own folder)."""
    path = lock_file(folder)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file: nobody holds it
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        try:
            info = json.loads(os.read(fd, 65536) or b"{}")
        except ValueError:  # being written by its holder
            info = {}
        info = info if isinstance(info, dict) else {}
        return None if info.get("pid") == os.getpid() else info
    finally:
        os.close(fd)


def refuse_if_held(folder: str | Path, what: str) -> None:
    """A UserError when another process holds `folder`: which one, and what to do.

    Args:
        folder: the results (or run) folder about to be read or written.
        what: the running thing, for the message ("a search", "a training run").
    """
    info = holder(folder)
    if info is not None:
        raise UserError(running_message(folder, info, what))


def running_message(folder: str | Path, info: dict, what: str) -> str:
    pid = info.get("pid", "?")
    command = f" ({info['command']}, since {info.get('started', '?')})" if info.get("command") else ""
    return (f"{folder}: {what} is running there now, in process {pid}{command}; wait for it to end, or stop it "
            f"(Ctrl-C in its terminal, or kill -INT {pid}), then run this again")


WAIT_POLL_S = 0.1  # how often a waiting hold tries again


@contextlib.contextmanager
def hold(folder: str | Path, what: str, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold `folder` for the duration of the block; refused (UserError) when another process holds
    it, at once or after waiting `wait_s` seconds for it to let go."""
    path = lock_file(folder)
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]  # deepest first
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise UserError(running_message(folder, holder(folder) or {}, what)) from None
            time.sleep(WAIT_POLL_S)
            continue
        if _same_file(path, fd):
            break
        os.close(fd)  # its holder let go and removed the file meanwhile: lock the one there now
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": " ".join(["vaetune", *sys.argv[1:]])[:300],
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still held: a process that locks it now locks a file of its own
        os.close(fd)
        for parent in made:  # a start refused before it wrote anything leaves no folder behind
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if empty


def _same_file(path: Path, fd: int) -> bool:
    """Whether `fd` is still the file at `path` (a holder removes its lock file when it lets go)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
