"""Atomic file writes: readers (a resumed driver, racing trial processes) never see half a file.

A writer fills a temporary file in the destination's folder and renames it over the destination
with ``os.replace``, which is atomic on one file system: a reader sees either the old file or the
new complete one, and two writers racing simply leave the last complete file. Every file vaetune
writes this way gets ordinary permissions (readable by all, as a shared cache must be), not the
private mode of ``tempfile.mkstemp``. A write that fails because the disk filled up raises
OSError(ENOSPC) naming the file, whatever the writer raised (torch.save says only "unexpected pos").
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write(fileobj)`` so that it appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as exc:
        full = isinstance(exc, Exception) and not isinstance(exc, OSError) and free_bytes(path.parent) < FULL_BYTES
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if full or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and not exc.filename):
            code = exc.errno if isinstance(exc, OSError) else errno.ENOSPC
            raise OSError(code, os.strerror(code), str(path)) from exc
        raise
    return path


FULL_BYTES = 1 << 20  # a write that failed with less than this left on its device failed for want of space


def free_bytes(folder: str | Path) -> int:
    """Bytes a user may still write on the device of `folder` (its nearest existing ancestor)."""
    folder = Path(folder).expanduser().absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def is_remote(path: str | Path) -> bool:
    """Remote storage (s3://bucket/..., gs://...) rather than a path on this machine."""
    return "://" in str(path)


def cache_root() -> Path:
    """Folder of vaetune's per-user caches (FID weights, crash logs): $VAETUNE_CACHE, else ~/.cache/vaetune."""
    return Path(os.environ.get("VAETUNE_CACHE") or Path.home() / ".cache" / "vaetune")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``atomic_write`` of UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
