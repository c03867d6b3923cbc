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
from dataclasses import dataclass, field
from typing import Any

from vaetune.metrics.registry import get, table_columns
from vaetune.ranking import describe, feasible, feasible_rows, rank
from vaetune.report._epochs import (
    CAPACITY,
    DASH,
    EXTRA_METRICS,
    KEY_LABELS,
    OBJECTIVE,
    SCHEDULE,
    at_epoch,
    candidate_epochs,
)
from vaetune.report._notes import main_notes, missing_notes, schedule_notes
from vaetune.results import (
    CHECKPOINT,
    EPOCH,
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


@dataclass
class Row:
    value: Any  # the key's value (a bin's centre)
    label: str  # the value, or the bin "[lo, hi)"
    trial_id: str  # the trial shown: the best (search) or the first seed's (sweep)
    status: str
    trials: int  # trials of this value or bin measured at the table's epoch
    n: int  # trials behind each number: 1 for a search row, the seeds for a sweep
    values: dict[str, float | None]  # metric -> value at the epoch (sweep: mean over seeds)
    spread: dict[str, float | None]  # metric -> standard deviation over seeds (None: n < 2)
    checkpoint: str  # the shown trial's checkpoint at the table's epoch
    mlflow_run_id: str
    schedule: str  # how β acts in the row's trials: its schedule, or the objective that ignores it


@dataclass
class KLTable:
    epoch: int  # every value of every row was measured at this epoch
    key: str  # the rows' key (train.beta)
    rows: list[Row]
    how: str  # one line: where the rows come from
    sweep: bool  # rows are means over seeds
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # metrics no row recorded
    trials: Any = None  # DataFrame: every trial measured at the epoch (vaetune.report._epochs.at_epoch)
    metrics: tuple[str, ...] = field(default_factory=table_columns)  # its metric columns, in order

    @property
    def key_label(self) -> str:
        return KEY_LABELS.get(self.key, self.key)

    def header(self) -> list[str]:
        lead = ["n"] if self.sweep else ["trial", "status", "trials"]
        return [self.key_label, *lead, *(get(m).label for m in self.metrics), "epoch"]

    def cell(self, row: Row, metric: str) -> str:
        v, s = row.values.get(metric), row.spread.get(metric)
        fmt = get(metric).fmt
        return DASH if v is None else fmt.format(v) + (f" ± {fmt.format(s)}" if s is not None else "")

    def cells(self) -> list[list[str]]:
        lead = (lambda r: [str(r.n)]) if self.sweep else (lambda r: [r.trial_id, r.status, str(r.trials)])
        return [[r.label, *lead(r), *(self.cell(r, m) for m in self.metrics), str(self.epoch)] for r in self.rows]

    def best_cells(self) -> set[tuple[int, int]]:
        """(row, column) of each ranked column's best value, and of every row indistinguishable from it."""
        first = len(self.header()) - len(self.metrics) - 1
        out = set()
        for c, metric in enumerate(self.metrics):
            best = best_row(self.rows, metric)
            if best is None or get(metric).descriptive or len(self.rows) < 2:
                continue
            out |= {(i, first + c) for i, r in enumerate(self.rows) if r is best or differs(r, best, metric) is False}
        return out

    def frame(self, number: int = 1):
        """The table as numbers (CSV): one row per value, `epoch` and the table's number in the file."""
        import pandas as pd

        leaf = self.key.rsplit(".", 1)[-1]
        return pd.DataFrame([{"table": number, EPOCH: self.epoch, leaf: r.value, f"{leaf}_label": r.label,
                              TRIAL_ID: r.trial_id, STATUS: r.status, "trials": r.trials, "n": r.n,
                              **{m: r.values.get(m) for m in self.metrics},
                              **({f"{m}_std": r.spread.get(m) for m in self.metrics} if self.sweep else {}),
                              "schedule": r.schedule, CHECKPOINT: r.checkpoint, RUN_ID: r.mlflow_run_id}
                             for r in self.rows])

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header()) + " |", "|" + "---|" * len(self.header())]
        lines += ["| " + " | ".join(cells) + " |" for cells in self.cells()]
        return "\n".join(lines)

    def points(self):
        """What the rate-distortion plane draws at this epoch: a sweep's rows (means, with `_std`
        columns) or a search's trials; `label` names a point, `value` is its key's value."""
        import pandas as pd

        if self.sweep:
            metrics = (*self.metrics, *EXTRA_METRICS)
            return pd.DataFrame([{"label": r.label, "value": r.value, "n": r.n, EPOCH: self.epoch,
                                  **{m: r.values.get(m) for m in metrics},
                                  **{f"{m}_std": r.spread.get(m) for m in metrics}} for r in self.rows])
        pts = self.trials.copy()
        pts["label"] = pts[TRIAL_ID]
        pts["value"] = pts[self.key] if self.key in pts else self.rows[0].value if self.rows else math.nan
        return pts


def best_row(rows: list[Row], metric: str) -> Row | None:
    """The row with the best value of `metric` in its registered direction (None: none recorded)."""
    scored = [r for r in rows if r.values.get(metric) is not None]
    if not scored:
        return None
    return (min if get(metric).mode == "min" else max)(scored, key=lambda r: r.values[metric])


def differs(a: Row, b: Row, metric: str, metric_b: str | None = None) -> bool | None:
    """Whether two rows differ in `metric` by more than their seeds' spread: the difference of
    their means exceeds the larger of their two standard deviations over seeds. None when either
    row has fewer than two seeds (the spread is unknown) or lacks the metric. With `metric_b`,
    `metric` of row a against `metric_b` of row b (two measures of one row: a and b the same)."""
    metric_b = metric_b or metric
    va, sa = a.values.get(metric), a.spread.get(metric)
    vb, sb = b.values.get(metric_b), b.spread.get(metric_b)
    if va is None or vb is None or sa is None or sb is None:
        return None
    return abs(va - vb) > max(sa, sb)


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
