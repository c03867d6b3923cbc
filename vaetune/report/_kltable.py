"""The KL table as a value: its rows (one per value of the key), their cells, its CSV and Markdown,
the best cell of each column and whether two rows differ beyond their seeds' spread.

Built by vaetune.report._table, which chooses the rows and the epoch, and annotated by
vaetune.report._notes; the page, the findings and the plots read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vaetune.metrics.registry import get, table_columns
from vaetune.report._epochs import DASH, EXTRA_METRICS, KEY_LABELS
from vaetune.results import CHECKPOINT, EPOCH, RUN_ID, STATUS, TRIAL_ID


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
