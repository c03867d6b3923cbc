"""A finished search, read once: state, summary, tracking, space and per-trial histories."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.results._files import damaged, load_search, read_history, read_tracking
from vaetune.results._layout import (
    ERRORED,
    KIND,
    SPACE_FILE,
    STATUS,
    SUMMARY_FILE,
    SWEEP,
    SWEEP_STATE,
    TRIAL_ID,
    TRIAL_PATH,
    final_column,
    ranking_column,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# A finished search, read once


@dataclass
class SearchResults:
    """Everything the report and export need from `results/<name>/`."""

    folder: Path
    state: dict  # search.json
    summary: Any  # summary.csv as a DataFrame (read_summary)
    tracking: dict  # tracking.json ({} when the search logged nothing to MLflow)
    space: Any  # vaetune.spec.SearchSpace of space.yaml, or None when it is missing
    histories: dict[str, Any] = field(default_factory=dict)  # trial_id -> per-epoch DataFrame

    @property
    def name(self) -> str:
        return self.state["name"]

    @property
    def metric(self) -> str:
        return self.state["metric"] if isinstance(self.state["metric"], str) else self.state["metric"][0]

    @property
    def mode(self) -> str:
        return self.state["mode"] if isinstance(self.state["mode"], str) else self.state["mode"][0]

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """(metric, mode) of each of a multi-objective search's objectives; [] for one objective."""
        return list(zip(self.state.get("metrics", []), self.state.get("modes", []), strict=True))

    @property
    def constraints(self) -> dict[str, dict[str, float]]:
        """search.constraints as the search ran them ({} without)."""
        return dict(self.state.get("constraints", {}))

    @property
    def searched(self) -> list[str]:
        return list(self.state.get("searched", []))

    @property
    def max_epochs(self) -> int:
        return int(self.state.get("max_epochs", 0))

    @property
    def sweep(self) -> dict | None:
        """A sweep's record ({key, values, seeds, source, trial_id}); None for a search."""
        return self.state.get(SWEEP_STATE) if self.state.get(KIND) == SWEEP else None

    @functools.cached_property
    def plan(self):
        """The search's plan (vaetune.spec.SearchPlan: its epochs, ASHA's rungs, the kept epochs)
        from its space.yaml, or None when space.yaml is missing."""
        from vaetune.spec import SearchPlan

        return SearchPlan.of(self.space) if self.space is not None else None

    def config(self):
        """The fixed configuration (each searched key at its default), or None without space.yaml."""
        return self.plan.config if self.plan is not None else None

    def best_column(self) -> str:
        """summary column that ranks trials by the search metric: best over epochs, else final."""
        return ranking_column(self.summary.columns, self.metric)


def load_results(folder: str | Path) -> SearchResults:
    """Read a search folder; a folder that is not a finished search is a UserError naming it."""
    folder = Path(folder).resolve()
    state, summary = load_search(folder)
    if summary.empty:
        raise UserError(f"{folder / SUMMARY_FILE}: no trials recorded; nothing to report")
    metric = state["metric"] if isinstance(state.get("metric"), str) else (state.get("metric") or ["?"])[0]
    finals = summary.get(final_column(metric))
    if finals is None and (summary[STATUS] != ERRORED).any():  # a trial that ran has its final metric
        raise damaged(folder / SUMMARY_FILE, f"it lacks the column {final_column(metric)} (the search metric)",
                      state.get("space_file"))
    if finals is None or finals.isna().all():
        statuses = ", ".join(f"{n} {s}" for s, n in summary[STATUS].value_counts().items()) if STATUS in summary else ""
        raise UserError(f"{folder}: no trial of this search finished an epoch ({statuses or 'no statuses'}); nothing "
                        f"to report; their errors are in {folder / SUMMARY_FILE}")
    results = SearchResults(folder=folder, state=state, summary=summary, tracking=read_tracking(folder),
                            space=_read_space(folder / SPACE_FILE))
    for _, row in summary.iterrows():
        history = read_history(row.get(TRIAL_PATH, ""))
        if history is not None:
            results.histories[str(row[TRIAL_ID])] = history
    return results


def _read_space(path: Path):
    from vaetune.spec import load_space

    if not path.exists():
        return None
    try:
        return load_space(path)
    except UserError as err:  # written by vaetune, so only an edited file lands here
        log.warning("%s: cannot read the search space (%s); β defaults unknown", path, err)
        return None
