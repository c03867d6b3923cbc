"""A finished search as the report reads it: search.json, summary.csv, tracking.json, space.yaml,
and every trial's per-epoch metrics (its Ray `result.json`)."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetune.errors import UserError

log = logging.getLogger(__name__)

# metrics where larger is better; every other metric the report ranks is minimised
MAXIMISED = ("val/psnr", "val/ssim", "val/active_units")


@dataclass
class SearchResults:
    """Everything the report needs from `results/<name>/`, read once."""

    folder: Path
    state: dict  # search.json
    summary: Any  # summary.csv as a DataFrame, trial_id and mlflow_run_id as strings
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
    def searched(self) -> list[str]:
        return list(self.state.get("searched", []))

    @property
    def max_epochs(self) -> int:
        return int(self.state.get("max_epochs", 0))

    def config(self):
        """The fixed configuration (each searched key at its default), or None without space.yaml."""
        return self.space.default_config() if self.space is not None else None

    def best_column(self) -> str:
        """summary column that ranks trials by the search metric: best over epochs, else final."""
        best, final = f"best/{self.metric}", f"final/{self.metric}"
        return best if best in self.summary else final


def load_results(folder: str | Path) -> SearchResults:
    """Read a search folder; a folder that is not a finished search is a UserError naming it."""
    import pandas as pd

    from vaetune.search import SUMMARY_FILE, load_search

    folder = Path(folder).resolve()
    state, _ = load_search(folder)  # checks the folder and names what is missing
    summary = pd.read_csv(folder / SUMMARY_FILE, dtype={"trial_id": str, "mlflow_run_id": str,
                                                        "checkpoint": str, "trial_path": str, "error": str})
    for col in ("mlflow_run_id", "checkpoint", "trial_path", "error"):
        if col in summary:
            summary[col] = summary[col].fillna("")
    if summary.empty:
        raise UserError(f"{folder / SUMMARY_FILE}: no trials recorded; nothing to report")
    tracking_file = folder / "tracking.json"
    tracking = json.loads(tracking_file.read_text()) if tracking_file.exists() else {}
    results = SearchResults(folder=folder, state=state, summary=summary, tracking=tracking,
                            space=_read_space(folder / "space.yaml"))
    for _, row in summary.iterrows():
        history = read_history(row.get("trial_path", ""))
        if history is not None:
            results.histories[str(row["trial_id"])] = history
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


def read_history(trial_path: str) -> Any | None:
    """A trial's metrics per epoch from its Ray `result.json` (one JSON object per line).

    A restored trial may report an epoch twice; the later report wins. Remote trial folders
    (s3://...) and trials without results give None.
    """
    import pandas as pd

    if not trial_path or "://" in trial_path:
        return None
    path = Path(trial_path) / "result.json"
    if not path.exists():
        return None
    records = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        records.append({k: v for k, v in rec.items() if _is_number(v)})
    if not records:
        return None
    frame = pd.DataFrame(records)
    if "epoch" not in frame:
        return None
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value(row, metric: str) -> float | None:
    """The last-epoch value of `metric` (`epochs` itself for "epochs") in a summary row, or None."""
    col = metric if metric == "epochs" else f"final/{metric}"
    v = row.get(col) if hasattr(row, "get") else None
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def rank(frame, column: str, mode: str):
    """Rows with a value in `column`, best first."""
    scored = frame[frame[column].notna()] if column in frame else frame.iloc[0:0]
    return scored.sort_values(column, ascending=(mode == "min"), kind="stable")
