"""The KL-weight quality/coherence table: one row per value of β, every value measured at one
epoch that is the same for all rows of the table.

Rows: a sweep (`vaetune sweep`) gives one row per value, each metric the mean ± standard
deviation over the value's seeds; a search gives one row per value of β (each value of a grid or
choice list, or log-spaced bins of a continuous β), showing the best trial of each by the search
metric at the table's epoch. The epoch (vaetune.report._epochs): the deepest one that at least
three rows reached (all rows when there are fewer); each other rung epoch gives a further table.
Under the capacity objective β is not in the loss, so the rows are the capacity target instead.
Columns come from the metric registry; a metric the search never recorded is "—" with a note.
"""

from __future__ import annotations

import math
from typing import Any

from vaetune.metrics.registry import table_columns
from vaetune.ranking import describe, feasible, feasible_rows, rank
from vaetune.report._epochs import (
    CAPACITY,
    EXTRA_METRICS,
    KEY_LABELS,
    OBJECTIVE,
    SCHEDULE,
    at_epoch,
    candidate_epochs,
)
from vaetune.report._kltable import KLTable, Row
from vaetune.report._notes import main_notes, missing_notes, schedule_notes
from vaetune.results import (
    CHECKPOINT,
    EPOCHS,
    FEASIBLE,
    RUN_ID,
    STATUS,
    TRIAL_ID,
    SearchResults,
)
from vaetune.spec import BETA, SEED

MAX_DISTINCT_ROWS = 8  # more distinct values than this (a continuous search) are binned
MIN_ROWS = 3  # a table's epoch is the deepest one that at least this many rows reached


# ---------------------------------------------------------------------------------------------
# Building the tables


def table_key(results: SearchResults) -> str:
    """The rows' key: the sweep's key; the capacity target when β is not in the loss; else β."""
    if results.sweep:
        return results.sweep["key"]
    config = results.config()
    if config is not None and config.train.objective == "capacity" and OBJECTIVE not in results.searched:
        return CAPACITY
    return BETA


def _config_value(results: SearchResults, key: str) -> Any:
    from vaetune.spec import flatten

    config = results.config()
    return flatten(config).get(key) if config is not None else 1.0


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _groups(results: SearchResults, key: str) -> tuple[list[tuple[Any, str, set[str]]], str]:
    """(value, label, trial ids) per row over every trial of the search, and how they were formed."""
    s, label = results.summary, KEY_LABELS.get(key, key)
    ids = s[TRIAL_ID].astype(str)
    if key not in s:
        fixed = _config_value(results, key)
        return [(fixed, _fmt(fixed), set(ids))], f"{label} was not searched (fixed at {_fmt(fixed)}): one row"
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    known = s[key].notna()
    numeric = is_numeric_dtype(s[key]) and not is_bool_dtype(s[key])
    distinct = sorted(s.loc[known, key].unique(), key=lambda v: float(v) if numeric else str(v))
    kind = results.space.params[key].kind if results.space is not None and key in results.space.params else None
    if not numeric or kind in ("grid", "choice") or len(distinct) <= MAX_DISTINCT_ROWS:
        groups = [(_plain(v), _fmt(_plain(v)), set(ids[s[key] == v])) for v in distinct]
        return groups, f"one row per {label} value ({kind or 'as sampled'})"
    return _bins(s, key, [float(v) for v in distinct]), f"{label} searched continuously ({kind}): log-spaced bins"


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _bins(summary, key: str, distinct: list[float]) -> list[tuple[Any, str, set[str]]]:
    import numpy as np

    n_bins = min(6, max(2, int(math.ceil(math.sqrt(len(distinct))))))
    lo, hi = distinct[0], distinct[-1]
    log = lo > 0
    edges = np.geomspace(lo, hi, n_bins + 1) if log else np.linspace(lo, hi, n_bins + 1)
    which = np.clip(np.searchsorted(edges, summary[key].astype(float).to_numpy(), side="right") - 1, 0, n_bins - 1)
    groups = []
    for i in range(n_bins):
        members = set(summary[TRIAL_ID].astype(str)[(which == i) & summary[key].notna().to_numpy()])
        if members:
            close = "]" if i == n_bins - 1 else ")"
            centre = math.sqrt(edges[i] * edges[i + 1]) if log else (edges[i] + edges[i + 1]) / 2
            groups.append((float(centre), f"[{edges[i]:.3g}, {edges[i + 1]:.3g}{close}", members))
    return groups


def kl_tables(results: SearchResults) -> list[KLTable]:
    """The main table (first) and one further table per other epoch where trials can be compared."""
    key = table_key(results)
    groups, how = _groups(results, key)
    columns = table_columns()
    metrics = tuple(dict.fromkeys((*columns, *EXTRA_METRICS, results.metric, *results.constraints)))
    frames = {e: at_epoch(results, e, metrics) for e in candidate_epochs(results)}
    reach = {e: sum(bool(ids & set(f[TRIAL_ID])) for _, _, ids in groups) for e, f in frames.items()}
    need = min(MIN_ROWS, len(groups))
    deep = [e for e in frames if reach[e] >= need and reach[e]]
    main = max(deep) if deep else max(frames, key=lambda e: (reach[e], e))
    epochs = [main, *sorted(e for e in frames if e != main and reach[e])]
    tables = [_table(results, key, groups, how, frames[e], e, columns) for e in epochs]
    tables[0].notes += main_notes(results, key, tables, need)
    return tables


def kl_table(results: SearchResults) -> KLTable:
    """The main table: the deepest epoch at least three rows reached."""
    return kl_tables(results)[0]


def _table(results: SearchResults, key: str, groups, how: str, frame, epoch: int,
           columns: tuple[str, ...]) -> KLTable:
    sweep = results.sweep is not None
    if results.constraints:  # whether each trial holds search.constraints at this epoch
        frame = frame.assign(**{FEASIBLE: feasible(frame, results.constraints)})
    rows, left_out = [], []
    for value, label, ids in groups:
        members = frame[frame[TRIAL_ID].isin(ids)]
        if members.empty:
            left_out.append(_left_out(results, f"{KEY_LABELS.get(key, key)}={label}", ids))
        else:
            rows.append((_mean_row if sweep else _best_row)(results, value, label, members, columns))
    if sweep:
        how = (f"one row per value of {key} (the sweep's grid), each metric the mean ± standard deviation over "
               f"its seeds (n), all at epoch {epoch}")
    else:
        how = f"{how}, the best trial of each by {results.metric} at epoch {epoch}"
    table = KLTable(epoch=epoch, key=key, rows=rows, how=how, sweep=sweep, trials=frame, metrics=columns)
    table.missing = [m for m in columns if all(r.values[m] is None for r in rows)]
    if results.constraints:
        held = describe(results.constraints)
        table.notes.append(f"Held to {held} at epoch {epoch}: " + (
            "a row says how many of its seeds break it in its status." if sweep else
            "each row shows the best trial of its value that holds it; a row none of whose trials holds it says "
            "so in its status."))
    table.notes += missing_notes(results, table.missing, epoch) + schedule_notes(results, table)
    if left_out:
        table.notes.append(f"Not in this table (no trial measured at epoch {epoch}): " + "; ".join(left_out) + ".")
    return table


def _values(record, metrics) -> dict[str, float | None]:
    return {m: (float(record[m]) if m in record and record[m] == record[m] else None) for m in metrics}


def _best_row(results: SearchResults, value, label: str, members, columns: tuple[str, ...]) -> Row:
    held = feasible_rows(members)  # the trials that hold search.constraints at the epoch: all without
    ranked = rank(held if len(held) else members, results.metric, results.mode)
    best = (ranked if len(ranked) else members).iloc[0]
    metrics = (*columns, *EXTRA_METRICS)
    status = str(best[STATUS]) + (f"; breaks {describe(results.constraints)}" if held.empty else "")
    return Row(value=value, label=label, trial_id=str(best[TRIAL_ID]), status=status, trials=len(members), n=1,
               values=_values(best, metrics), spread=dict.fromkeys(metrics), checkpoint=str(best[CHECKPOINT]),
               mlflow_run_id=str(best[RUN_ID]), schedule=_schedule(results, members))


def _mean_row(results: SearchResults, value, label: str, members, columns: tuple[str, ...]) -> Row:
    members = members.sort_values(SEED) if SEED in members else members
    shown = members.iloc[0]
    means, stds = {}, {}
    for m in (*columns, *EXTRA_METRICS):
        vals = members[m].dropna() if m in members else members.iloc[0:0][TRIAL_ID]
        means[m] = float(vals.mean()) if len(vals) else None
        stds[m] = float(vals.std(ddof=1)) if len(vals) >= 2 else None
    statuses = ", ".join(sorted(set(members[STATUS])))
    broke = len(members) - len(feasible_rows(members))
    if broke:
        statuses += f"; {broke} of {len(members)} break {describe(results.constraints)}"
    return Row(value=value, label=label, trial_id=str(shown[TRIAL_ID]), status=statuses,
               trials=len(members), n=len(members), values=means, spread=stds, checkpoint=str(shown[CHECKPOINT]),
               mlflow_run_id=str(shown[RUN_ID]), schedule=_schedule(results, members))


def _schedule(results: SearchResults, members) -> str:
    config = results.config()

    def used(key: str, default: str) -> str:
        return ", ".join(sorted(set(members[key].astype(str)))) if key in members else default

    objective = used(OBJECTIVE, config.train.objective if config is not None else "elbo")
    schedule = used(SCHEDULE, config.train.beta_schedule if config is not None else "constant")
    return schedule if objective == "elbo" else f"{objective} objective"


def _left_out(results: SearchResults, row: str, ids: set[str]) -> str:
    s = results.summary[results.summary[TRIAL_ID].astype(str).isin(ids)]
    how = ", ".join(f"trial {r[TRIAL_ID]} {r[STATUS]} at epoch {int(r[EPOCHS] or 0)}" for _, r in s.head(3).iterrows())
    return f"{row} ({how}{', ...' if len(s) > 3 else ''})"
