"""A disk that fills up, for the tests of a full disk: a tmpfs of a given size, mounted by the test
on a folder of its own and unmounted after it, and a filler that takes what room is left.

Mounting needs CAP_SYS_ADMIN: root (this machine and CI's container run the suite as root), or a
user namespace (`unshare -Urm python -m pytest ...` runs the suite as root of its own namespace,
where a tmpfs may be mounted without privileges). Elsewhere the mount fails and the test is
skipped with that reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CHUNK = 64 << 10


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """`folder` as a tmpfs of `size` (e.g. "4m") while the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a size-limited disk needs a tmpfs mounted by the test, which needs root or a user namespace "
                    f"(unshare -Urm): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write a file in `folder` until its disk has at most `leave` bytes free; returns the file."""
    path = folder / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while (free := free_bytes(folder)) > leave:
            try:
                os.write(fd, b"\0" * min(CHUNK, free - leave))
            except OSError:  # full
                break
    finally:
        os.close(fd)
    return path


def free_bytes(folder: Path) -> int:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize
