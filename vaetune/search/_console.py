"""What a person watching `vaetune search` sees, and how a trial is called there and in MLflow.

On a terminal: one compact view, redrawn in place (rich's Live), with the trials running,
stopped, completed and failed, the best so far with its values, the time elapsed and an
estimate of the time left. In a log or CI (no terminal): one line per trial event (started,
passed a rung, stopped, completed, failed) and a one-line summary every few minutes. A failed
trial is one line naming it, the error and where its full traceback is (its trial folder; MLflow
keeps it too). `vaetune search --verbose` gives Ray Tune's own tables back instead.

A trial is called by what it tried, e.g. `#3 β=0.0033 z=4 lr=2e-4`: its number in the search
(the one in its Tune folder name) and its searched values, short keys, 2 significant digits.

The Tune callback that drives it is `_searcher.ConsoleCallback`; the state it tells is
`_progress.SearchProgress`; rich is imported where it is used.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from vaetune.metrics import registry
from vaetune.ranking import Bounds, best_over_epochs, describe, is_feasible
from vaetune.results import (
    CHECKPOINT_DIR,
    DIVERGED,
    DIVERGENCE,
    ERRORED,
    end_status,
    error_summary,
    read_history,
    status_phrase,
    trial_label,
    trial_number,
)
from vaetune.samplers import get as get_sampler
from vaetune.search._faults import OUTPUT, stop_search
from vaetune.search._progress import SUMMARY_EVERY_S, SearchProgress, _duration

REDRAW_EVERY_S = 1.0  # the terminal view is redrawn at most this often


def _number(value) -> float | None:
    """A metric as reported, or None when it is not a number."""
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else value


# ---------------------------------------------------------------------------------------------
# The Tune callback's body (mixed into ray.tune.Callback in vaetune.search._searcher)


class SearchConsole:
    """Turns Tune's callback events into the console: lines in a log, a live view on a terminal."""

    def __init__(self, progress: SearchProgress, searched: list[str], bounds: Bounds | None = None):
        self.progress, self.searched = progress, list(searched)
        # search.constraints: an epoch counts towards "best" only inside them, and a trial only while
        # its latest epoch is (vaetune.ranking's rule, applied to what has been reported so far)
        self.bounds = dict(bounds or {})
        self.live = None
        self.last_summary = self.last_draw = 0.0
        self.restored_seen = False
        self.closed = False  # stdout's reader went away
        self.swapped: list[tuple[logging.StreamHandler, Any]] = []

    @classmethod
    def for_plan(cls, plan, *, sampler: str = ""):
        """The console of a search as planned (`vaetune.spec.SearchPlan`: its epochs, ASHA's rungs;
        the number of trials is Tune's, told at setup); `sampler` is what the sampler is, for the
        first line (`SamplerChoice.describe`)."""
        config = plan.config
        s = config.search
        aims = []
        if s.metrics:
            aims.append("objectives " + " and ".join(f"{m} ({md})" for m, md in zip(s.metrics, s.modes, strict=True)))
        if s.constraints:
            aims.append(f"trials held to {describe(s.bounds())}")
        measured = registry.METRICS.get(s.metric)
        drawn = get_sampler(measured.sampler).words if measured is not None and measured.sampler else ""
        if aims and not s.metrics:
            aims.insert(0, f"ranked by {s.metric} ({s.mode}{f', z from {drawn}' if drawn else ''})")
        progress = SearchProgress(config.name, s.metric, s.mode, plan.max_epochs, list(plan.rungs),
                                  s.num_samples, sampler=sampler, aim=", ".join(aims), drawn=drawn)
        return cls(progress, plan.searched, bounds=s.bounds())

    # -- Tune callback hooks --------------------------------------------------------------------
    def setup(self, total_num_samples: int | None = None, **info):
        p = self.progress
        if total_num_samples and total_num_samples < 2**31:
            p.planned = int(total_num_samples)
        p.start = self.last_summary = time.monotonic()
        if sys.stdout.isatty():
            self._start_live()
            return
        self._write([f"{p.headline()}; a summary every {_duration(SUMMARY_EVERY_S)}"])

    def on_step_begin(self, iteration, trials, **info):
        """The first step of a resumed search sees the trials that ended before: counted, once."""
        if self.restored_seen:
            return
        self.restored_seen = True
        now, ended = time.monotonic(), [t for t in trials if t.status in ("TERMINATED", "ERROR")]
        for trial in ended:
            last = trial.last_result or {}
            epochs = int(last.get(registry.EPOCH, 0) or 0)
            status = (DIVERGED if last.get(DIVERGENCE) else ERRORED if trial.status == "ERROR"
                      else status_phrase(end_status(epochs, self.progress.max_epochs), epochs))
            p = self.progress
            history = read_history(str(getattr(trial, "path", "") or ""))  # None: remote, or no report
            best = best_over_epochs(history, p.metric, p.mode, self.bounds) if history is not None else None
            p.restored(trial_number(trial), self._label(trial), status, epochs, _number(last.get(p.metric)), now,
                       best=best, feasible=is_feasible(last, self.bounds),
                       checkpoint=getattr(trial, "checkpoint", None) is not None)
        if ended:
            self._write([self.progress.summary(now)])

    def on_trial_start(self, iteration, trials, trial, **info):
        self._write(self.progress.started(trial_number(trial), self._label(trial), time.monotonic()))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get(DIVERGENCE):  # not an epoch: the trial's last word, told when it completes
            return
        value = _number(result.get(self.progress.metric))
        epoch = int(result.get(registry.EPOCH, 0) or 0)
        self._write(self.progress.result(trial_number(trial), epoch, value, result.get("time_this_iter_s"),
                                         time.monotonic(), feasible=is_feasible(result, self.bounds),
                                         checkpoint=bool(result.get(CHECKPOINT_DIR))))

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        if last.get(DIVERGENCE):  # ended by the trial itself, not retried: one line with the fix
            self._write(self.progress.ended(trial_number(trial), DIVERGED, time.monotonic(),
                                            error=str(last[DIVERGENCE])))
            return
        epochs = int(last.get(registry.EPOCH, 0) or 0)
        status = status_phrase(end_status(epochs, self.progress.max_epochs), epochs)
        self._write(self.progress.ended(trial_number(trial), status, time.monotonic()))

    def on_trial_error(self, iteration, trials, trial, **info):
        error = error_summary(trial)
        status = end_status(0, self.progress.max_epochs, error)
        self._write(self.progress.ended(trial_number(trial), status, time.monotonic(), error=error,
                                        traceback_at=_traceback_path(trial)))

    def on_trial_recover(self, iteration, trials, trial, **info):
        """A trial that failed and is retried from its last checkpoint (search.max_failures)."""
        number = trial_number(trial)
        if number in self.progress.trials:
            self._write([self.progress.failed(number, "failed, retried from its last checkpoint",
                                              error_summary(trial), _traceback_path(trial),
                                              time.monotonic())])

    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        if self.live is not None:
            if now - self.last_draw >= REDRAW_EVERY_S:
                self._draw(now)
        elif now - self.last_summary >= SUMMARY_EVERY_S:
            self.last_summary = now
            self._write([self.progress.summary(now)])

    def on_experiment_end(self, trials, **info):
        now = time.monotonic()
        if self.live is not None:
            self._draw(now)
            self._stop_live()
        else:
            self._write([self.progress.summary(now)])

    def _label(self, trial) -> str:
        """`β=0.1 z=8`: what the trial tried."""
        return trial_label({k: trial.config.get(k) for k in self.searched})

    # -- output ---------------------------------------------------------------------------------
    def _write(self, lines: list[str]) -> None:
        if not lines or self.closed:
            return
        if self.live is not None:  # on a terminal the view tells it
            self._draw(time.monotonic())
            return
        try:
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away (`| head`): the search stops, as a Unix tool would
            self.closed = True
            stop_search(OUTPUT, "the search's output was closed")

    def _draw(self, now: float) -> None:
        from rich.text import Text

        self.last_draw = now
        view = Text("\n".join(self.progress.view(now)), no_wrap=True, overflow="ellipsis")
        self.live.update(view, refresh=True)

    def _start_live(self) -> None:
        from rich.live import Live

        self.live = Live(auto_refresh=False, redirect_stdout=True, redirect_stderr=True)
        self.live.start()
        # a log record written straight to the terminal would land under the view and break it:
        # send it through the stream that Live prints above itself
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and handler.stream in (sys.__stderr__,
                                                                                  sys.__stdout__):
                self.swapped.append((handler, handler.setStream(sys.stderr)))
        self._draw(time.monotonic())

    def _stop_live(self) -> None:
        for handler, stream in self.swapped:
            handler.setStream(stream)
        self.swapped = []
        self.live.stop()
        self.live = None

    def __getstate__(self):  # the Tuner pickles its callbacks; a live view does not travel
        return {**self.__dict__, "live": None, "swapped": []}


def _traceback_path(trial) -> str:
    """Where a failed trial's full traceback is kept: error.txt in its trial folder (relative to
    the working folder when inside it)."""
    folder = getattr(trial, "path", None)
    if not folder:
        return str(getattr(trial, "error_file", "") or "")
    path = Path(folder) / "error.txt"
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


