"""The results folder's names: files, summary columns, statuses, and where storage puts things."""

from __future__ import annotations

import logging
from pathlib import Path

from vaetune.fileio import is_remote

log = logging.getLogger(__name__)

SEARCH_FILE = "search.json"
SPACE_FILE = "space.yaml"
SUMMARY_FILE = "summary.csv"
OPTUNA_FILE = "optuna.db"
TRACKING_FILE = "tracking.json"
TRIALS_FILE = "trials.json"  # the driver's record: trial id -> searched values, running/terminated/error
PENDING_FILE = "mlflow_pending.jsonl"
# vaetune's own files beside Ray Tune's experiment state, kept current by the driver as it runs
DRIVER_FILES = (SEARCH_FILE, TRACKING_FILE, TRIALS_FILE)
PENDING_DIR = "mlflow_pending"
REPORT_DIR = "report"
RESULT_FILE = "result.json"  # Ray Tune's per-trial metrics, one JSON object per report
EPOCH = "epoch"  # result.json: the trainable's own epoch counter (the scheduler's clock, survives restores)
CHECKPOINT_DIR = "checkpoint_dir_name"  # result.json: the report's checkpoint folder in the trial folder
# result.json: the score by which Tune keeps a trial's checkpoints (the highest: search.keep_checkpoints
# plus one per kept epoch) beside its latest; reported with each checkpoint, never logged as a metric
CHECKPOINT_SCORE = "checkpoint_score"
CHECKPOINT_FOLDERS = "checkpoint_*"  # a Ray trial's checkpoint_00000N/ and a train run's checkpoint_epochNNNN/

# summary.csv columns (besides one column per searched key, and best/ and final/ metric columns)
TRIAL_ID = "trial_id"
STATUS = "status"
EPOCHS = "epochs"
WALL_TIME = "wall_time_s"
ERROR = "error"
CHECKPOINT = "checkpoint"
TRIAL_PATH = "trial_path"
RUN_ID = "mlflow_run_id"
# a search with search.constraints or several search.metrics (decided by vaetune.ranking):
FEASIBLE = "feasible"  # its final values hold every constraint
PARETO = "pareto"  # feasible, it ran every epoch, and no such trial beats it on every objective
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
DIVERGED = "diverged"  # the loss became NaN or infinite: deterministic, so the trial is not retried
UNFINISHED = "unfinished"  # the search was interrupted while it ran or waited

# in a trial's last report (result.json) when it diverged: why, epoch and step included
DIVERGENCE = "divergence"


def best_column(metric: str) -> str:
    """The summary column holding a metric's best value over a trial's epochs."""
    return f"best/{metric}"


def final_column(metric: str) -> str:
    """The summary column holding a metric's value at a trial's last epoch."""
    return f"final/{metric}"


def ranking_column(columns, metric: str) -> str:
    """The summary column by which trials rank on `metric`: its best over each trial's epochs where
    summary.csv keeps one (the search metric's), else its value at the last epoch."""
    return best_column(metric) if best_column(metric) in columns else final_column(metric)


def final_metrics(columns) -> list[str]:
    """The metrics that have a final/ column, in column order."""
    prefix = final_column("")
    return [c[len(prefix):] for c in columns if c.startswith(prefix)]


# ---------------------------------------------------------------------------------------------
# Where things are: local, shared or remote storage


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


