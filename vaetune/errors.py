"""Errors meant for a person, not a traceback: the CLI prints each in one line.

- `UserError`: a mistake in a file or an argument; the message names the file or argument, the
  key, the bad value and what is accepted. Exit code 2.
- `Failure`: the work itself failed for a reason the message explains and the user can act on
  (training diverged); neither a mistake in the arguments nor a bug. Exit code 1.

`one_line` is how every one of them is printed; `disk_full` tells a full disk (or quota) in an
error however a library wrapped it; `crash_log` writes a bug's traceback to a file, so
the terminal gets one line naming it (vaetune.cli and the gallery's page).
"""

from __future__ import annotations

import errno
import os
import time
import traceback
from pathlib import Path

from vaetune import __version__
from vaetune.fileio import cache_root


class UserError(Exception):
    """Bad input from the user (a file, a key, a value); the message says what would be accepted."""


class Failure(Exception):
    """Work that failed for a reason its message explains (not a bug): one line, exit code 1."""


def one_line(err: BaseException) -> str:
    """An error's message on one line (a library's message may span several)."""
    return " ".join(str(err).split())


# how a full disk reads once a library has turned the OSError into text (Ray Tune's TuneError,
# pyarrow's, sqlite's SQLITE_FULL, which SQLAlchemy and Optuna wrap)
DISK_FULL_TEXTS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT), "database or disk is full",
                   "[errno 28]", "[Errno 28]")


def disk_full(err: BaseException | str | None) -> bool:
    """Whether an error (with its causes and contexts), or an error's text, says a disk or quota is full."""
    seen = set()
    while isinstance(err, BaseException) and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(err) for text in DISK_FULL_TEXTS):
            return True
        err = err.__cause__ or err.__context__
    return isinstance(err, str) and any(text in err for text in DISK_FULL_TEXTS)


def crash_log(argv: list[str]) -> Path | None:
    """Write the current exception's traceback, with the command line, to a log file; returns its path
    (None when neither the cache nor the working folder takes it: the one line must still be printed)."""
    try:
        cwd = str(Path.cwd())
    except OSError:  # the working folder was removed
        cwd = "(removed)"
    text = (f"vaetune {__version__}\ncommand: vaetune {' '.join(argv)}\ncwd: {cwd}\n\n"
            f"{traceback.format_exc()}")
    folder = cache_root() / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(text)
        return path
    except OSError:  # an unwritable cache: the working folder
        try:
            path = Path(f"vaetune-crash-{time.strftime('%Y%m%d-%H%M%S')}.log").resolve()
            path.write_text(text)
        except OSError:
            return None
        return path
