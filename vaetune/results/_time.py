"""Where a search's trial time went: training, evaluation, checkpoints, start-up and waiting.

Each epoch's report holds Tune's `time_this_iter_s` (the wall time since the trial's previous
report, start-up included for the first) and the trial's own split of the epoch
(vaetune.metrics.registry: `time/train_s` the optimiser steps and the validation pass,
`time/eval_s` FID/KID and the latent prior's fit, `time/checkpoint_s` checkpoints and grid
pictures). What Tune timed beyond those three is start-up (model, data, restores) and waiting
(reporting, persisting checkpoints, the driver's turn).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from vaetune.metrics.registry import CHECKPOINT_TIME, EVAL_TIME, TRAIN_TIME

TUNE_ITER_TIME = "time_this_iter_s"  # Ray Tune's own per-report wall time
PARTS = (("training", TRAIN_TIME), ("evaluation", EVAL_TIME), ("checkpoints", CHECKPOINT_TIME))
OTHER = "start-up and waiting"


@dataclass(frozen=True)
class TimeSplit:
    """Seconds of all trials' reported time, by part."""

    total: float
    parts: dict[str, float]  # training, evaluation, checkpoints, start-up and waiting

    def share(self, part: str) -> float:
        return self.parts[part] / self.total if self.total > 0 else math.nan

    def line(self) -> str:
        """`trials' time 412 s: training 66 % · evaluation 29 % · checkpoints 2 % · start-up and
        waiting 3 %`."""
        shares = " · ".join(f"{part} {100 * self.share(part):.0f} %" for part in self.parts)
        return f"trials' time {self.total:.0f} s: {shares}"


def _seconds(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def time_split(reports: Iterable[dict]) -> TimeSplit | None:
    """The split of every report of every trial (dicts as in result.json); None without the
    trial's own split (recorded by an older vaetune) or without any time."""
    total, parts, seen = 0.0, dict.fromkeys([p for p, _ in PARTS], 0.0), False
    for report in reports:
        iteration = _seconds(report.get(TUNE_ITER_TIME))
        if not iteration:
            continue
        total += iteration
        if TRAIN_TIME in report:
            seen = True
        for part, key in PARTS:
            parts[part] += _seconds(report.get(key))
    if not seen or total <= 0:
        return None
    parts[OTHER] = max(0.0, total - sum(parts.values()))
    return TimeSplit(total, parts)


def frame_reports(frames: Iterable) -> list[dict]:
    """The reports of per-trial DataFrames (one row per report), as dicts."""
    return [row for frame in frames if frame is not None for row in frame.to_dict("records")]
