"""The state of a search as the console tells it: trials, their events, lines and the view."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from vaetune.ranking import Standing, best_first
from vaetune.results import COMPLETED

SUMMARY_EVERY_S = 300.0  # a log gets a summary line this often
RUNNING_ROWS = 6  # the terminal view lists at most this many running trials


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
    best: float | None = None  # the best value of the search metric so far, at an epoch inside the bounds
    best_epoch: int = 0
    feasible: bool = True  # its latest values hold the bounds (search.constraints)
    checkpoint: bool = False  # it reported a checkpoint: a model export could hand over
    pending_rung: int | None = None  # a rung reached, told once the trial goes on past it
    restored: bool = False  # ended before this driver started (a resumed search): not timed


@dataclass
class SearchProgress:
    """What happened so far in a search, fed by Tune's events; it writes lines and the view.

    Args:
        name: the search name.
        metric: the search metric, `mode` its direction.
        max_epochs: epochs of a trial that runs to the end.
        rungs: ASHA's rung epochs (empty for FIFO).
        planned: trials the search will run.
        sampler: what chooses the trials, e.g. "sampler TPE ..., 2 random trials first (...)".
        aim: a search of several objectives or with constraints, in words ("objectives val/mse
            (min) and eval/fid_sample (min), trials held to val/kl >= 5"); else it is ranked by `metric`.
        drawn: where the samples that `metric` measures draw z from, when it measures samples
            ("the fitted latent mixture"), for the first line.
    """

    name: str
    metric: str
    mode: str
    max_epochs: int
    rungs: list[int]
    planned: int
    sampler: str = ""  # what chooses the trials (SamplerChoice.describe), for the first line
    aim: str = ""  # several objectives or constraints, in words, for the first line
    drawn: str = ""  # the samples `metric` measures: z from what (vaetune.samplers' words)
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

    def restored(self, number: int, label: str, status: str, epoch: int, value: float | None,
                 now: float, *, best: tuple[float, int] | None = None, feasible: bool = True,
                 checkpoint: bool = False) -> None:
        """A trial a resumed search found ended: counted and ranked, not timed. `value` is its last
        value; `best` its best (value, epoch) inside the bounds, when its reports are at hand
        (else its last value counts, if `feasible`: its last values hold the bounds)."""
        value = value if value is not None and math.isfinite(value) else None
        if best is None and value is not None and feasible:
            best = (value, epoch)
        self.trials[number] = _Trial(number, label, now, ended=now, status=status, epoch=epoch, value=value,
                                     best=best[0] if best else None, best_epoch=best[1] if best else 0,
                                     feasible=feasible, checkpoint=checkpoint, restored=True)

    def result(self, number: int, epoch: int, value: float | None, epoch_s: float | None,
               now: float, feasible: bool = True, checkpoint: bool = False) -> list[str]:
        """An epoch's report; `feasible`: whether its values hold search.constraints (an epoch
        outside them is shown but never the best, and a trial whose latest epoch is outside them
        is not ranked); `checkpoint`: whether it came with a checkpoint."""
        t = self.trials.get(number)
        if t is None:
            return []
        lines = []
        if t.pending_rung is not None and epoch > t.pending_rung:  # it went on past that rung
            lines.append(self._event(now, number, f"passed rung {t.pending_rung}", t))
            t.pending_rung = None
        t.epoch, t.feasible, t.checkpoint = epoch, feasible, t.checkpoint or checkpoint
        if value is not None and math.isfinite(value):
            t.value = value
            if feasible and (t.best is None or (value < t.best if self.mode == "min" else value > t.best)):
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
    def headline(self) -> str:
        """The first line: the trials, the sampler that chooses them, how they are ranked and cut."""
        at = f"epoch{'s' if len(self.rungs) > 1 else ''} {', '.join(map(str, self.rungs))}"
        rungs = f"; ASHA compares them at {at}" if self.rungs else ""
        sampler = f"; {self.sampler}" if self.sampler else ""
        drawn = f", samples with z from {self.drawn} as vaetune sample draws them" if self.drawn else ""
        aim = f"; {self.aim}; lines show {self.metric}" if self.aim else f"; ranked by {self.metric} ({self.mode}{drawn})"
        return f"search {self.name}: {self.planned} trials of up to {self.max_epochs} epochs{sampler}{aim}{rungs}"

    def summary(self, now: float) -> str:
        """One line: counts, the best so far, elapsed time and the estimate of what is left."""
        best = self.best()
        parts = [self._counts(), self._eta(now)]
        if best is not None:
            parts.insert(1, f"best #{best.number} {best.label} {self.metric} {best.best:.4g}")
        return f"[{_clock(now - self.start)}] " + " · ".join(parts)

    def view(self, now: float) -> list[str]:
        """The terminal view: a few lines, at most RUNNING_ROWS + 7 of them."""
        lines = [f"vaetune search {self.name} · {self.metric} ({self.mode}) · elapsed "
                 f"{_clock(now - self.start)} · {self._eta(now)}", self._counts()]
        if self.sampler:
            lines.insert(0, self.headline())
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
        """The best trial so far, by the rule every reader of a search shares (vaetune.ranking)."""
        ranked = best_first([Standing(t.number, t.best, t.feasible, t.checkpoint)
                             for t in sorted(self.trials.values(), key=lambda t: t.number)], self.mode)
        return self.trials[ranked[0].key] if ranked else None

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
        durations = [t.ended - t.started for t in self.trials.values() if t.ended is not None and not t.restored]
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
