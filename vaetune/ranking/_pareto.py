"""Ranking by several objectives and by constraints: which trials are feasible, and which of those
no other feasible trial beats on every objective (the Pareto front).

A constraint bounds one metric: `{"val/kl": {"min": 5.0}}` holds where val/kl >= 5. Its
violation is how far a value lies outside its bounds (0 inside them; a value never measured
violates by MISSING_VIOLATION), the number Optuna's constrained samplers take (<= 0: feasible).
Objectives are (column, mode) pairs; a point dominates another when it is no worse on every
objective and better on one. Every caller (the searcher, summary.csv, MLflow's tags, the
console, `vaetune export --pareto`, the report, the best trial of `_best`) decides feasibility
and the front here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vaetune.results import COMPLETED, FEASIBLE, PARETO, STATUS, TRIAL_ID, final_column

Bounds = Mapping[str, Mapping[str, float | None]]  # metric -> {"min": x, "max": y}
MISSING_VIOLATION = 1.0  # a constrained metric a trial never reported: infeasible by this much


def finite_number(v: Any) -> float | None:
    """A value as a finite float, or None (not a number, NaN or infinite: not measured)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def constraint_names(constraints: Bounds) -> list[str]:
    """One name per bound, in the order of `violations`: 'val/kl >= 5'."""
    return [describe({metric: {side: bounds[side]}}) for metric, bounds in constraints.items()
            for side in ("min", "max") if bounds.get(side) is not None]


def violations(values: Mapping[str, Any], constraints: Bounds) -> list[float]:
    """One number per bound, in the order of `constraints` (min before max): how far the value lies
    outside the bound, 0.0 inside it."""
    out = []
    for metric, bounds in constraints.items():
        v = finite_number(values.get(metric))
        for side in ("min", "max"):
            bound = bounds.get(side)
            if bound is None:
                continue
            if v is None:
                out.append(max(MISSING_VIOLATION, abs(float(bound))))
            else:
                out.append(max(0.0, (bound - v) if side == "min" else (v - bound)))
    return out


def is_feasible(values: Mapping[str, Any], constraints: Bounds) -> bool:
    return not any(violations(values, constraints))


def feasible(frame, constraints: Bounds, column: Callable[[str], str] = lambda m: m):
    """A boolean Series over `frame`'s rows: whether each row's values (in `column(metric)`) hold
    every bound. With no constraints every row is feasible."""
    import pandas as pd

    return pd.Series([is_feasible({m: row.get(column(m)) for m in constraints}, constraints)
                      for _, row in frame.iterrows()], index=frame.index, dtype=bool)


def feasible_rows(summary):
    """The rows of summary.csv (a DataFrame) that hold the search's constraints: all of them in a
    search without constraints (no `feasible` column). What "the best trial" is chosen from."""
    return summary[summary[FEASIBLE].fillna(False).astype(bool)] if FEASIBLE in summary else summary


def dominates(a: Sequence[float], b: Sequence[float], modes: Sequence[str]) -> bool:
    """Whether point `a` is no worse than `b` on every objective and better on one."""
    signs = [1.0 if m == "min" else -1.0 for m in modes]
    pa, pb = [s * x for s, x in zip(signs, a, strict=True)], [s * x for s, x in zip(signs, b, strict=True)]
    return all(x <= y for x, y in zip(pa, pb, strict=True)) and any(x < y for x, y in zip(pa, pb, strict=True))


def non_dominated(frame, objectives: Sequence[tuple[str, str]], among=None):
    """A boolean Series over `frame`'s rows: on the Pareto front of `objectives` ((column, mode)
    pairs) among the rows `among` marks (default: all) that have every objective's value."""
    import pandas as pd

    columns, modes = [c for c, _ in objectives], [m for _, m in objectives]
    eligible = pd.Series(True, index=frame.index) if among is None else among.reindex(frame.index, fill_value=False)
    points = {}
    for i, row in frame.iterrows():
        values = [finite_number(row.get(c)) for c in columns]
        if bool(eligible[i]) and all(v is not None for v in values):
            points[i] = values
    front = {i for i, p in points.items() if not any(dominates(q, p, modes) for j, q in points.items() if j != i)}
    return pd.Series([i in front for i in frame.index], index=frame.index, dtype=bool)


def describe(constraints: Bounds) -> str:
    """'val/kl >= 5, val/active_units >= 2': the bounds in words."""
    parts = []
    for metric, bounds in constraints.items():
        lo, hi = bounds.get("min"), bounds.get("max")
        if lo is not None and hi is not None:
            parts.append(f"{lo:g} <= {metric} <= {hi:g}")
        else:
            parts.append(f"{metric} >= {lo:g}" if lo is not None else f"{metric} <= {hi:g}")
    return ", ".join(parts)


@dataclass
class FrontTable:
    """summary.csv's Pareto front as the console and `vaetune export --pareto` print it."""

    members: list[str]  # trial ids, best first by the first objective
    text: str


def front_table(summary, objectives: Sequence[tuple[str, str]], constraints: Bounds) -> FrontTable:
    """The front marked in summary.csv (its `pareto` column), ordered by the first objective, with
    each member's objectives, KL and active units at the last epoch."""
    marked = summary[PARETO].fillna(False).astype(bool) if PARETO in summary else summary[TRIAL_ID].isna() & False
    first, mode = objectives[0]
    front = summary[marked].sort_values(final_column(first), ascending=(mode == "min"), kind="stable")
    shown = [m for m, _ in objectives] + [m for m in ("val/kl", "val/active_units")
                                          if m not in dict(objectives) and final_column(m) in summary]
    done = summary[STATUS] == COMPLETED if STATUS in summary else summary[TRIAL_ID].isna() & False
    head = (f"Pareto front at the last epoch ({', '.join(f'{m} {md}' for m, md in objectives)}): "
            f"{len(front)} trial{'s' * (len(front) != 1)}, of the {int(done.sum())} that ran every epoch")
    if constraints and FEASIBLE in summary:
        broke = int((~summary[FEASIBLE].fillna(False).astype(bool) & done).sum())
        head += f", {broke} of which broke {describe(constraints)}"
    lines = [head + ":"]
    width = max([len("trial"), *(len(str(t)) for t in front[TRIAL_ID])])
    lines.append("  " + "trial".ljust(width) + "".join(f"  {m:>16}" for m in shown))
    for _, row in front.iterrows():
        cells = [row.get(final_column(m)) for m in shown]
        lines.append("  " + str(row[TRIAL_ID]).ljust(width)
                     + "".join(f"  {_cell(v):>16}" for v in cells))
    if front.empty:
        why = ("none ran every epoch" if not done.any() else "none of those held the constraints" if constraints
               else "none of those has a value of every objective")
        lines.append(f"  (no trial is on it: {why})")
    return FrontTable([str(t) for t in front[TRIAL_ID]], "\n".join(lines))


def _cell(v: Any) -> str:
    n = finite_number(v)
    return "—" if n is None else f"{n:.5g}"
