"""Where a command's output goes, when it is not a plain UTF-8 terminal.

- A console (or log, or pipe) whose encoding cannot hold vaetune's characters (`·`, `β`, `→`,
  accented names): each such character is written as the nearest the encoding holds (`-`,
  `beta`, `->`, the letter without its accent), else `?`, instead of failing the command with
  UnicodeEncodeError half-way (a search after Ray started). `fit_encoding` sets it up once, in
  the CLI, for stdout and stderr.
- A pipe closed early (`vaetune spaces | head -1`): the command ends quietly, as a Unix tool
  killed by SIGPIPE does (exit code 141), without a traceback or a line on stderr.
  `close_broken_pipe` silences what is still buffered for it.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys
import unicodedata

BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a Unix tool whose reader went away
ERRORS = "vaetune.plain"  # the codec error handler registered here

# characters vaetune prints, as the nearest ASCII (what an accent-stripping fallback cannot give)
PLAIN = {
    "·": "-", "β": "beta", "σ": "sigma", "μ": "mu", "λ": "lambda", "ρ": "rho", "→": "->", "←": "<-",
    "—": "-", "–": "-", "…": "...", "×": "x", "≤": "<=", "≥": ">=", "≈": "~", "±": "+/-", "²": "^2",
    "“": '"', "”": '"', "‘": "'", "’": "'", "•": "*", "✓": "ok", "✗": "x",
}


def _plain(exc: UnicodeEncodeError) -> tuple[str, int]:
    """The codec error handler: what cannot be encoded, as the nearest plain text."""
    out = []
    for char in exc.object[exc.start:exc.end]:
        if char in PLAIN:
            out.append(PLAIN[char])
            continue
        bare = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        out.append(bare if bare and bare.isascii() else "?")
    return "".join(out), exc.end


codecs.register_error(ERRORS, _plain)


def fit_encoding(*streams) -> None:
    """Write through `streams` (default: stdout and stderr) whatever their encoding: a stream
    that is not UTF-8 replaces what it cannot hold (see the module's docstring)."""
    for stream in streams or (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if encoding.startswith("utf") or not hasattr(stream, "reconfigure"):
            continue
        with contextlib.suppress(ValueError, OSError):  # a closed or detached stream: nothing to fit
            stream.reconfigure(errors=ERRORS)


def close_broken_pipe() -> int:
    """After BrokenPipeError: send what stdout and stderr still hold to /dev/null (Python's flush at
    exit would raise again), and return the exit code of a Unix tool ended by SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    return BROKEN_PIPE
