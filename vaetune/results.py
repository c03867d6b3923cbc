"""The results folder of a search: the one module that knows its layout.

`results/<name>/` (the search's summary folder; beside the Ray experiment for a local or shared
`search.storage`, under ./results for remote storage) holds:

    search.json            what ran: name, metric, mode, epochs, searched keys, kind (search/sweep)
    space.yaml             the search space as it ran (fixed values and distributions)
    summary.csv            one row per trial (the columns below)
    optuna.db              the Optuna study (sqlite), named after the search
    tracking.json          MLflow: store URI, experiment, parent run, trial id -> run id
    trials.json            trial id -> its searched values and whether it ran, ended or errored
    mlflow_pending.jsonl   tracking events MLflow could not take yet, sent on --resume
    mlflow_pending/        copies of the artifacts those events name
    report/                what `vaetune report` writes

The Ray experiment (`experiment_path`) holds one folder per trial: `result.json` (one line per
epoch) and `checkpoint_*/checkpoint.pt` with that epoch's `grids/`. Checkpoints may live in remote
storage (s3://...); `open_checkpoint` fetches them. Everything else in vaetune names these files,
columns and statuses through this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetune.checkpoint import CHECKPOINT_FILE
from vaetune.errors import UserError
from vaetune.fileio import atomic_write_text

log = logging.getLogger(__name__)

SEARCH_FILE = "search.json"
SPACE_FILE = "space.yaml"
SUMMARY_FILE = "summary.csv"
OPTUNA_FILE = "optuna.db"
TRACKING_FILE = "tracking.json"
TRIALS_FILE = "trials.json"  # the driver's record: trial id -> searched values, running/terminated/error
PENDING_FILE = "mlflow_pending.jsonl"
PENDING_DIR = "mlflow_pending"
REPORT_DIR = "report"
RESULT_FILE = "result.json"  # Ray Tune's per-trial metrics, one JSON object per report
EPOCH = "epoch"  # result.json: the trainable's own epoch counter (the scheduler's clock, survives restores)
CHECKPOINT_DIR = "checkpoint_dir_name"  # result.json: the report's checkpoint folder in the trial folder
GRIDS_DIR = "grids"  # inside a checkpoint folder: that epoch's reconstruction and sample grids

# summary.csv columns (besides one column per searched key, and best/ and final/ metric columns)
TRIAL_ID = "trial_id"
STATUS = "status"
EPOCHS = "epochs"
WALL_TIME = "wall_time_s"
ERROR = "error"
CHECKPOINT = "checkpoint"
TRIAL_PATH = "trial_path"
RUN_ID = "mlflow_run_id"
TEXT_COLUMNS = (TRIAL_ID, STATUS, ERROR, CHECKPOINT, TRIAL_PATH, RUN_ID)

# what a results folder holds (search.json "kind"): a search, or an equal-budget sweep of one key
KIND = "kind"
SEARCH = "search"
SWEEP = "sweep"
SWEEP_STATE = "sweep"  # search.json of a sweep: {key, values, seeds, source, trial_id}

# a trial's status in summary.csv
COMPLETED = "completed"  # ran every epoch
STOPPED = "stopped"  # stopped early by the scheduler (ASHA)
ERRORED = "errored"
DIVERGED = "diverged"  # its loss became NaN or infinite: a deterministic failure, not retried
UNFINISHED = "unfinished"  # the search was interrupted while it ran or waited


def best_column(metric: str) -> str:
    """The summary column holding a metric's best value over a trial's epochs."""
    return f"best/{metric}"


def final_column(metric: str) -> str:
    """The summary column holding a metric's value at a trial's last epoch."""
    return f"final/{metric}"


def final_metrics(columns) -> list[str]:
    """The metrics that have a final/ column, in column order."""
    prefix = final_column("")
    return [c[len(prefix):] for c in columns if c.startswith(prefix)]


# ---------------------------------------------------------------------------------------------
# Where things are: local, shared or remote storage


def is_remote(path: str) -> bool:
    """Remote storage (s3://bucket/..., gs://...) rather than a path on this machine."""
    return "://" in str(path)


def results_dir_for(storage: str, name: str) -> Path:
    """Local folder of a search's summary files: beside the Ray experiment for a local or shared
    path, under ./results for remote storage (s3://...)."""
    base = Path("results") if is_remote(storage) else Path(storage)
    return (base / name).resolve()


def experiment_path(storage: str, name: str) -> str:
    """Where Ray Tune keeps the experiment (trial folders, checkpoints)."""
    return f"{storage.rstrip('/')}/{name}" if is_remote(storage) else str(Path(storage).resolve() / name)


def storage_uri(storage: str, path: str | None) -> str:
    """A path Ray returns inside the storage filesystem, as something `vaetune export` can open:
    Ray drops the scheme of remote storage (s3://bucket/x comes back as bucket/x)."""
    if not path:
        return ""
    if is_remote(storage) and not is_remote(path) and not storage.startswith("file://"):
        return f"{storage.split('://', 1)[0]}://{path}"
    return path


def optuna_url(folder: str | Path) -> str:
    """Where a search's Optuna study lives: sqlite in its results folder."""
    return f"sqlite:///{Path(folder) / OPTUNA_FILE}"


# ---------------------------------------------------------------------------------------------
# Reading and writing the folder's files


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=str))


def read_tracking(folder: str | Path) -> dict:
    """tracking.json ({} when the search logged nothing to MLflow)."""
    return read_json(Path(folder) / TRACKING_FILE)


def write_tracking(folder: str | Path, state: dict) -> None:
    write_json(Path(folder) / TRACKING_FILE, state)


def write_summary(folder: str | Path, rows: list[dict[str, Any]]) -> Path | None:
    """summary.csv from one dict per trial; None (and nothing written) when there are no rows."""
    import pandas as pd

    if not rows:
        return None
    path = Path(folder) / SUMMARY_FILE
    atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
    return path


def read_summary(folder: str | Path):
    """summary.csv as a DataFrame: text columns as strings ("" when empty)."""
    import pandas as pd

    frame = pd.read_csv(Path(folder) / SUMMARY_FILE, dtype={c: str for c in TEXT_COLUMNS})
    for col in TEXT_COLUMNS:
        if col in frame:
            frame[col] = frame[col].fillna("")
    return frame


def load_search(folder: str | Path) -> tuple[dict, Any]:
    """search.json and summary.csv of a search folder; a UserError naming what is missing."""
    folder = Path(folder)
    if not (folder / SEARCH_FILE).exists():
        raise UserError(f"{folder}: not a vaetune search folder (no {SEARCH_FILE}); pass results/<name>")
    if not (folder / SUMMARY_FILE).exists():
        raise UserError(f"{folder}: the search has no {SUMMARY_FILE} yet; finish it with vaetune search --resume")
    return read_json(folder / SEARCH_FILE), read_summary(folder)


def read_history(trial_path: str):
    """A trial's metrics per epoch from its Ray `result.json` (one JSON object per line), with the
    folder name of the checkpoint reported at that epoch (CHECKPOINT_DIR, None without one).

    A restored trial may report an epoch twice; the later report wins. Remote trial folders
    (s3://...) and trials without results give None.
    """
    import pandas as pd

    if not trial_path or is_remote(trial_path):
        return None
    path = Path(trial_path) / RESULT_FILE
    if not path.exists():
        return None
    records = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        records.append({k: v for k, v in rec.items() if _is_number(v) or (k == CHECKPOINT_DIR and v)})
    if not records:
        return None
    frame = pd.DataFrame(records)
    if EPOCH not in frame:
        return None
    return frame.drop_duplicates(EPOCH, keep="last").sort_values(EPOCH).reset_index(drop=True)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def value(row, metric: str) -> float | None:
    """The last-epoch value of `metric` (`epochs` itself for "epochs") in a summary row, or None."""
    col = metric if metric == EPOCHS else final_column(metric)
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


# ---------------------------------------------------------------------------------------------
# Checkpoints, local or remote


@contextlib.contextmanager
def open_checkpoint(path: str) -> Iterator[Path]:
    """A trial checkpoint folder (or file) as a local path; remote ones are fetched through Ray's
    Checkpoint into a temporary folder that is removed afterwards."""
    if not is_remote(path):
        yield Path(path)
        return
    from ray import tune

    with tempfile.TemporaryDirectory() as tmp:
        tune.Checkpoint(path).to_directory(tmp)
        yield Path(tmp)


def load_checkpoint_at(path: str) -> dict:
    """`vaetune.checkpoint.load_checkpoint` of a local or remote checkpoint."""
    from vaetune.checkpoint import load_checkpoint

    with open_checkpoint(path) as local:
        return load_checkpoint(local)


def load_model_at(path: str):
    """`vaetune.checkpoint.load_model` of a local or remote checkpoint: (model, Config, dict)."""
    from vaetune.checkpoint import load_model

    with open_checkpoint(path) as local:
        return load_model(local)


def checkpoint_file(folder: str | Path) -> Path:
    """The checkpoint file inside a trial checkpoint folder."""
    return Path(folder) / CHECKPOINT_FILE


def checkpoint_at(trial_path: str, history, epoch: int) -> str:
    """The local checkpoint folder a trial reported at `epoch` (from its history), or "" when it
    reported none there or Tune has since deleted it."""
    if history is None or CHECKPOINT_DIR not in history or not trial_path or is_remote(trial_path):
        return ""
    names = history.loc[history[EPOCH] == epoch, CHECKPOINT_DIR].dropna()
    if names.empty:
        return ""
    folder = Path(trial_path) / str(names.iloc[-1])
    return str(folder) if checkpoint_file(folder).exists() else ""


def latest_checkpoint_of(trial_path: str) -> str:
    """A local trial folder's newest checkpoint folder (Tune never deletes a trial's latest), or ""."""
    if not trial_path or is_remote(trial_path):
        return ""
    found = sorted(p.parent for p in Path(trial_path).glob(f"checkpoint_*/{CHECKPOINT_FILE}"))
    return str(found[-1]) if found else ""


def last_grids(checkpoint: str) -> dict[str, bytes]:
    """The last reconstruction and sample grids training saved in a local checkpoint folder."""
    if not checkpoint or is_remote(checkpoint):
        return {}
    folder = Path(checkpoint)
    folder = folder.parent if folder.is_file() else folder
    out = {}
    for kind in ("recon", "samples"):
        found = sorted((folder / GRIDS_DIR).glob(f"{kind}_epoch*.png"))
        if found:
            out[kind] = found[-1].read_bytes()
    return out


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
    def searched(self) -> list[str]:
        return list(self.state.get("searched", []))

    @property
    def max_epochs(self) -> int:
        return int(self.state.get("max_epochs", 0))

    @property
    def sweep(self) -> dict | None:
        """A sweep's record ({key, values, seeds, source, trial_id}); None for a search."""
        return self.state.get(SWEEP_STATE) if self.state.get(KIND) == SWEEP else None

    def config(self):
        """The fixed configuration (each searched key at its default), or None without space.yaml."""
        return self.space.default_config() if self.space is not None else None

    def best_column(self) -> str:
        """summary column that ranks trials by the search metric: best over epochs, else final."""
        best, final = best_column(self.metric), final_column(self.metric)
        return best if best in self.summary else final


def load_results(folder: str | Path) -> SearchResults:
    """Read a search folder; a folder that is not a finished search is a UserError naming it."""
    folder = Path(folder).resolve()
    state, summary = load_search(folder)
    if summary.empty:
        raise UserError(f"{folder / SUMMARY_FILE}: no trials recorded; nothing to report")
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
