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
`vaetune._tune.ConsoleCallback`); rich is imported where it is used.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_EVERY_S = 300.0  # a log gets a summary line this often
REDRAW_EVERY_S = 1.0  # the terminal view is redrawn at most this often
RUNNING_ROWS = 6  # the terminal view lists at most this many running trials
# short names of well-known searched keys (the last part of the dotted key otherwise)
SHORT_KEYS = {"beta": "β", "latent_dim": "z", "warmup_epochs": "warmup", "batch_size": "batch"}
COMPLETED = "completed"
DIVERGED = "diverged"
ERRORED = "errored"


# ---------------------------------------------------------------------------------------------
# Names


def short_value(value: Any) -> str:
    """2 significant digits, exponent form below 0.001 and from 10^4 (`0.0033`, `2e-4`, `1e8`);
    integers below 10^4 as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value == 0 or not math.isfinite(value):
        return str(int(value)) if value == 0 else str(value)
    if abs(value) < 1e-3 or abs(value) >= 1e4:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if isinstance(value, int):
        return str(value)
    rounded = float(f"{value:.2g}")
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"


def short_keys(keys: list[str]) -> dict[str, str]:
    """Dotted searched keys -> short names, unique among them (the full key where two clash)."""
    short = {k: SHORT_KEYS.get(k.rsplit(".", 1)[-1], k.rsplit(".", 1)[-1]) for k in keys}
    clashing = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: (k if s in clashing else s) for k, s in short.items()}


def trial_label(searched: dict[str, Any]) -> str:
    """What a trial tried, e.g. `β=0.0033 z=4 lr=2e-4`: β and z first, then the space's order."""
    names = short_keys(list(searched))
    first = list(SHORT_KEYS)[:2]  # beta, latent_dim: what a VAE search is about

    def rank(key: str) -> int:
        last = key.rsplit(".", 1)[-1]
        return first.index(last) if last in first else len(first)

    order = sorted(searched, key=rank)  # stable: the others keep the space's order
    return " ".join(f"{names[k]}={short_value(searched[k])}" for k in order)


def trial_number(trial) -> int:
    """A Tune trial's number in its search, as in its folder name (run_trial_<id>_<number>_...)."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
    return int(head) if head.isdigit() else 0


def end_status(epochs: int, max_epochs: int, error: str | None = None) -> str:
    """How a trial ended, in the words of the console and of the MLflow tag vaetune.status."""
    if error is not None:
        return DIVERGED if "DivergedError" in error else ERRORED
    return COMPLETED if epochs >= max_epochs else f"stopped by ASHA at epoch {epochs}"


def _duration(seconds: float) -> str:
    """`4m10s`, `1h05m`."""
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _clock(seconds: float) -> str:
    """Time since the search started: `04:10`, `1:05:00`."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


# ---------------------------------------------------------------------------------------------
# The state of a search, as the console tells it


@dataclass
class _Trial:
    number: int
    label: str
    started: float
    ended: float | None = None
    status: str = "running"  # running, completed, stopped by ..., diverged, errored
    epoch: int = 0
    value: float | None = None  # the search metric at `epoch`
    best: float | None = None  # the best value of the search metric so far
    best_epoch: int = 0
    pending_rung: int | None = None  # a rung reached, told once the trial goes on past it


@dataclass
class SearchProgress:
    """What happened so far in a search, fed by Tune's events; it writes lines and the view.

    Args:
        name: the search name.
        metric: the search metric, `mode` its direction.
        max_epochs: epochs of a trial that runs to the end.
        rungs: ASHA's rung epochs (empty for FIFO).
        planned: trials the search will run.
    """

    name: str
    metric: str
    mode: str
    max_epochs: int
    rungs: list[int]
    planned: int
    start: float = field(default_factory=time.monotonic)
    trials: dict[int, _Trial] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    peak_running: int = 1
    recent: list[str] = field(default_factory=list)  # the last events, for the terminal view

    # -- events (each returns the lines a log gets) ---------------------------------------------
    def started(self, number: int, label: str, now: float) -> list[str]:
        known = self.trials.get(number)
        if known is not None and known.ended is None:  # a restored trial starting again
            return []
        self.trials[number] = _Trial(number, label, now)
        self.peak_running = max(self.peak_running, len(self._running()))
        return [self._event(now, number, "started")]

    def result(self, number: int, epoch: int, value: float | None, epoch_s: float | None,
               now: float) -> list[str]:
        t = self.trials.get(number)
        if t is None:
            return []
        lines = []
        if t.pending_rung is not None and epoch > t.pending_rung:  # it went on past that rung
            lines.append(self._event(now, number, f"passed rung {t.pending_rung}", t))
            t.pending_rung = None
        t.epoch = epoch
        if value is not None and math.isfinite(value):
            t.value = value
            if t.best is None or (value < t.best if self.mode == "min" else value > t.best):
                t.best, t.best_epoch = value, epoch
        if epoch in self.rungs:
            t.pending_rung = epoch
        if epoch_s:
            self.epoch_seconds.append(float(epoch_s))
        return lines

    def ended(self, number: int, status: str, now: float, error: str | None = None,
              traceback_at: str | None = None) -> list[str]:
        t = self.trials.get(number)
        if t is None:
            return []
        t.ended, t.status, t.pending_rung = now, status, None
        if error is None:
            return [self._event(now, number, status, t)]
        return [self.failed(number, status, error, traceback_at, now)]

    def failed(self, number: int, what: str, error: str, traceback_at: str | None,
               now: float) -> str:
        """The one line of a failure: the trial, the error, where the full traceback is."""
        where = f" (traceback: {traceback_at})" if traceback_at else ""
        return self._event(now, number, f"{what}: {error}{where}")

    # -- what is shown ----------------------------------------------------------------------------
    def summary(self, now: float) -> str:
        """One line: counts, the best so far, elapsed time and the estimate of what is left."""
        best = self.best()
        parts = [self._counts(), self._eta(now)]
        if best is not None:
            parts.insert(1, f"best #{best.number} {best.label} {self.metric} {best.best:.4g}")
        return f"[{_clock(now - self.start)}] " + " · ".join(parts)

    def view(self, now: float) -> list[str]:
        """The terminal view: a few lines, at most RUNNING_ROWS + 6 of them."""
        lines = [f"vaetune search {self.name} · {self.metric} ({self.mode}) · elapsed "
                 f"{_clock(now - self.start)} · {self._eta(now)}", self._counts()]
        best = self.best()
        if best is not None:
            lines.append(f"best  #{best.number} {best.label}  {self.metric} {best.best:.4g} "
                         f"at epoch {best.best_epoch}")
        running = self._running()
        for t in running[:RUNNING_ROWS]:
            value = f"  {self.metric} {t.value:.4g}" if t.value is not None else ""
            lines.append(f"  #{t.number} {t.label}  epoch {t.epoch}/{self.max_epochs}{value}")
        if len(running) > RUNNING_ROWS:
            lines.append(f"  and {len(running) - RUNNING_ROWS} more running")
        lines += [f"last  {line}" for line in self.recent[-2:]]
        return lines

    def best(self) -> _Trial | None:
        scored = [t for t in self.trials.values() if t.best is not None]
        if not scored:
            return None
        return (min if self.mode == "min" else max)(scored, key=lambda t: t.best)

    # -- helpers --------------------------------------------------------------------------------
    def _running(self) -> list[_Trial]:
        return sorted((t for t in self.trials.values() if t.ended is None), key=lambda t: t.number)

    def _counts(self) -> str:
        ended = [t for t in self.trials.values() if t.ended is not None]
        stopped = sum(t.status.startswith("stopped") for t in ended)
        completed = sum(t.status == COMPLETED for t in ended)
        failed = len(ended) - stopped - completed
        waiting = max(0, self.planned - len(self.trials))
        return (f"trials {self.planned}: {len(self._running())} running · {stopped} stopped · "
                f"{completed} completed · {failed} failed · {waiting} to start")

    def _eta(self, now: float) -> str:
        """Time left if the trials to come last as long as those that ended (epochs until one
        has), run `peak_running` at a time."""
        durations = [t.ended - t.started for t in self.trials.values() if t.ended is not None]
        if durations:
            per_trial = sum(durations) / len(durations)
        elif self.epoch_seconds:
            per_trial = sum(self.epoch_seconds) / len(self.epoch_seconds) * self.max_epochs
        else:
            return "time left: estimating"
        waiting = max(0, self.planned - len(self.trials))
        if not waiting and not self._running():
            return "all trials ended"
        running = sum(max(0.0, per_trial - (now - t.started)) for t in self._running())
        left = waiting * per_trial + running
        return f"~{_duration(left / max(1, self.peak_running))} left"

    def _event(self, now: float, number: int, what: str, t: _Trial | None = None) -> str:
        trial = self.trials[number]
        value = ""
        if t is not None and t.value is not None:
            value = f"  {self.metric} {t.value:.4g}"
            if t.best is not None and t.best_epoch != t.epoch:
                value += f" (best {t.best:.4g} at epoch {t.best_epoch})"
        line = f"#{trial.number} {trial.label}  {what}{value}"
        self.recent.append(line)
        del self.recent[:-5]
        return f"[{_clock(now - self.start)}] {line}"


# ---------------------------------------------------------------------------------------------
# The Tune callback's body (mixed into ray.tune.Callback in vaetune._tune)


class _SearchConsole:
    """Turns Tune's callback events into the console: lines in a log, a live view on a terminal."""

    def __init__(self, progress: SearchProgress, searched: list[str]):
        self.progress, self.searched = progress, list(searched)
        self.live = None
        self.last_summary = self.last_draw = 0.0
        self.swapped: list[tuple[logging.StreamHandler, Any]] = []

    @classmethod
    def for_space(cls, space, *, max_epochs: int, rungs: list[int]):
        """The console of a search space's search (the number of trials is Tune's, told at setup).

        Args:
            space: the search space.
            max_epochs: epochs of a trial that runs to the end.
            rungs: ASHA's rung epochs (empty for FIFO).
        """
        config = space.default_config()
        s = config.search
        progress = SearchProgress(config.name, s.metric, s.mode, max_epochs, list(rungs),
                                  s.num_samples)
        return cls(progress, list(space.params))

    # -- Tune callback hooks --------------------------------------------------------------------
    def setup(self, total_num_samples: int | None = None, **info):
        p = self.progress
        if total_num_samples and total_num_samples < 2**31:
            p.planned = int(total_num_samples)
        p.start = self.last_summary = time.monotonic()
        if sys.stdout.isatty():
            self._start_live()
            return
        rungs = f"; ASHA compares them at epochs {', '.join(map(str, p.rungs))}" if p.rungs else ""
        every = _duration(SUMMARY_EVERY_S)
        self._write([f"search {p.name}: {p.planned} trials of up to {p.max_epochs} epochs, ranked "
                     f"by {p.metric} ({p.mode}){rungs}; a summary every {every}"])

    def on_trial_start(self, iteration, trials, trial, **info):
        label = trial_label({k: trial.config.get(k) for k in self.searched})
        self._write(self.progress.started(trial_number(trial), label, time.monotonic()))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = result.get(self.progress.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = None
        epoch = int(result.get("epoch", 0) or 0)
        self._write(self.progress.result(trial_number(trial), epoch, value,
                                         result.get("time_this_iter_s"), time.monotonic()))

    def on_trial_complete(self, iteration, trials, trial, **info):
        epochs = int((trial.last_result or {}).get("epoch", 0) or 0)
        status = end_status(epochs, self.progress.max_epochs)
        self._write(self.progress.ended(trial_number(trial), status, time.monotonic()))

    def on_trial_error(self, iteration, trials, trial, **info):
        from vaetune.tracking import error_summary

        error = error_summary(trial)
        status = end_status(0, self.progress.max_epochs, error)
        self._write(self.progress.ended(trial_number(trial), status, time.monotonic(), error=error,
                                        traceback_at=_traceback_path(trial)))

    def on_trial_recover(self, iteration, trials, trial, **info):
        """A trial that failed and is retried from its last checkpoint (search.max_failures)."""
        from vaetune.tracking import error_summary

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

    # -- output ---------------------------------------------------------------------------------
    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self.live is not None:  # on a terminal the view tells it
            self._draw(time.monotonic())
            return
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()

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


# ---------------------------------------------------------------------------------------------
# Quieter libraries


class _DropMessages(logging.Filter):
    def __init__(self, *prefixes: str):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_libraries() -> None:
    """What the console tells, the libraries need not: Optuna's and MLflow's INFO lines, Tune's
    trial tracebacks (the console names the error and where the traceback is) and its list of
    trials that did not complete."""
    import mlflow  # noqa: F401 - it sets its loggers' level when imported: set ours after
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    tune_controller = logging.getLogger("ray.tune.execution.tune_controller")
    tune_controller.addFilter(_DropMessages("Trial task failed"))
    logging.getLogger("ray.tune.tune").addFilter(_DropMessages("Trials did not complete"))
