"""Which trial is best, which trials hold search.constraints, and the Pareto front.

One rule names "the best trial" (`_best`): candidates hold the constraints and measured the
metric, those that kept a checkpoint first, then by value. `vaetune export`, MLflow's outcome,
summary.csv's end line, the console, the report, `vaetune sweep` and the gallery all ask it, so
they name the same trial. Feasibility, violations and the front of several objectives
(`_pareto`) are decided here too. Column names come from `vaetune.results`, which owns the
results folder and ranks nothing.
"""

from __future__ import annotations

from vaetune.ranking._best import (
    Standing,
    best_first,
    best_over_epochs,
    best_trial,
    has_checkpoint,
    pick_best,
    rank,
    ranked_trials,
)
from vaetune.ranking._pareto import (
    MISSING_VIOLATION,
    Bounds,
    FrontTable,
    constraint_names,
    describe,
    dominates,
    feasible,
    feasible_rows,
    finite_number,
    front_table,
    is_feasible,
    non_dominated,
    violations,
)

__all__ = [
    "MISSING_VIOLATION", "Bounds", "FrontTable", "Standing", "best_first", "best_over_epochs", "best_trial",
    "constraint_names", "describe", "dominates", "feasible", "feasible_rows", "finite_number", "front_table",
    "has_checkpoint", "is_feasible", "non_dominated", "pick_best", "rank", "ranked_trials", "violations",
]
