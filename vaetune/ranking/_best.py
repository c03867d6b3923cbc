"""The best trial: one rule, decided here, which every reader of a search asks.

A trial is a candidate when
  1. it holds search.constraints: its last reported values lie inside every bound (summary.csv's
     `feasible` column; every trial of a search without constraints), and
  2. it measured the metric: a finite value, its best over the epochs whose values held the
     constraints (summary.csv's `best/<metric>`; the last epoch's `final/<metric>` for a metric
     the summary keeps no best of).
Candidates rank by that value (`mode`), those that kept a checkpoint before those that did not
(a model that cannot be handed over is never preferred to one that can); ties keep trial order.
The first is the best trial. `vaetune export`, the gallery's download and MLflow's outcome hand
over its model, so when no candidate kept a checkpoint they name none; the search's end line,
the console and the report still name the first candidate (the end line and the report say it
kept no checkpoint).

`best_first` is the rule on plain records (`Standing`): the live console ranks the trials it
has heard of with it, and `ranked_trials` ranks summary.csv's rows with it for everyone else.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from vaetune.errors import UserError
from vaetune.ranking._pareto import Bounds, feasible, finite_number
from vaetune.results import (
    CHECKPOINT,
    EPOCH,
    FEASIBLE,
    SUMMARY_FILE,
    final_metrics,
    ranking_column,
)


@dataclass(frozen=True)
class Standing:
    """What the rule reads of one trial."""

    key: Hashable  # the trial (its id, its number, a row's index)
    value: float | None  # its value of the metric (best over its epochs inside the constraints)
    feasible: bool = True  # its last values hold search.constraints
    checkpoint: bool = True  # it kept a checkpoint: a model to hand over


def best_first(standings: Iterable[Standing], mode: str) -> list[Standing]:
    """The candidates among `standings`, best first: feasible, with a finite value, those with a
    checkpoint before those without, each by value (lowest first for "min"); ties keep their order."""
    sign = 1.0 if mode == "min" else -1.0
    candidates = [s for s in standings if s.feasible and finite_number(s.value) is not None]
    return sorted(candidates, key=lambda s: (not s.checkpoint, sign * float(s.value)))


def ranked_trials(summary, metric: str, mode: str):
    """summary.csv's candidate rows (a DataFrame), best first by `best_first`: the first is the
    best trial. Empty when the summary has no column of `metric`."""
    column = ranking_column(summary.columns, metric)
    if column not in summary:
        return summary.iloc[0:0]
    held = summary[FEASIBLE].fillna(False).astype(bool) if FEASIBLE in summary else None
    standings = [Standing(i, finite_number(row[column]), True if held is None else bool(held[i]),
                          has_checkpoint(row)) for i, row in summary.iterrows()]
    return summary.loc[[s.key for s in best_first(standings, mode)]]


def best_trial(summary, metric: str, mode: str):
    """The best trial's summary row (a Series), or None when no trial is a candidate."""
    ranked = ranked_trials(summary, metric, mode)
    return ranked.iloc[0] if len(ranked) else None


def pick_best(summary, metric: str, mode: str):
    """The best trial's row and its ranking column, for what hands over its model (`vaetune
    export`, MLflow's outcome); a UserError when the metric is unknown or the best trial kept no
    checkpoint (then none did)."""
    column = ranking_column(summary.columns, metric)
    if column not in summary:
        known = sorted(set(final_metrics(summary.columns)))
        raise UserError(f"--metric: got {metric!r}; this search recorded: {', '.join(known)}")
    best = best_trial(summary, metric, mode)
    if best is None or not has_checkpoint(best):
        if FEASIBLE in summary:
            raise UserError(f"no trial held the search's constraints with a value of {metric} and a checkpoint; "
                            f"see the {FEASIBLE} column of {SUMMARY_FILE}, or pick one with --trial ID")
        raise UserError(f"no trial has both a value of {metric} and a checkpoint; see {SUMMARY_FILE}")
    return best, column


def rank(frame, column: str, mode: str):
    """Rows with a finite value in `column`, best first by that value alone (ties keep their
    order): a table's order. Which trial is best is `best_trial`'s."""
    if column not in frame:
        return frame.iloc[0:0]
    values = frame[column].map(finite_number)
    return frame[values.notna()].sort_values(column, ascending=(mode == "min"), kind="stable")


def best_over_epochs(history, metric: str, mode: str, bounds: Bounds | None = None) -> tuple[float, int] | None:
    """A trial's value of `metric` and its epoch, from its reports (`history`: a DataFrame, one
    row per report, metrics as columns): the best over the epochs whose values hold `bounds`;
    None when none measured it there."""
    if history is None or metric not in history or not len(history):
        return None
    inside = feasible(history, dict(bounds or {}))
    best = None
    for i, row in history[inside].iterrows():
        value = finite_number(row[metric])
        if value is not None and (best is None or (value < best[0] if mode == "min" else value > best[0])):
            epoch = finite_number(row.get(EPOCH))
            best = (value, int(epoch) if epoch is not None else int(i))
    return best


def has_checkpoint(row) -> bool:
    """Whether a summary row names a checkpoint (a path; "" or NaN: none kept)."""
    v: Any = row.get(CHECKPOINT) if hasattr(row, "get") else None
    return isinstance(v, str) and bool(v)
