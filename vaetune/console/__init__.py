"""What a person watching `vaetune search` sees, and how a trial is called there and in MLflow.

On a terminal: one compact view, redrawn in place (rich's Live), with the trials running,
stopped, completed and failed, the best so far with its values, the time elapsed and an
estimate of the time left. In a log or CI (no terminal): one line per trial event (started,
passed a rung, stopped, completed, failed) and a one-line summary every few minutes. A failed
trial is one line naming it, the error and where its full traceback is (its trial folder; MLflow
keeps it too). `vaetune search --verbose` gives Ray Tune's own tables back instead.

A trial is called by what it tried, e.g. `#3 β=0.0033 z=4 lr=2e-4`: its number in the search
(the one in its Tune folder name) and its searched values, short keys, 2 significant digits.

Only `vaetune.search` uses the console, inside the command (the Tune callback that drives it is
`vaetune.search._searcher.ConsoleCallback`); rich is imported where it is used.
"""

from __future__ import annotations

from vaetune.console._progress import RUNNING_ROWS, SUMMARY_EVERY_S, SearchProgress
from vaetune.console._quiet import quiet_libraries
from vaetune.console._view import REDRAW_EVERY_S, SearchConsole

__all__ = [
    "REDRAW_EVERY_S", "RUNNING_ROWS", "SUMMARY_EVERY_S", "SearchConsole", "SearchProgress", "quiet_libraries",
]
