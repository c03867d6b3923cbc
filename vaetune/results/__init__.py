"""The results folder of a search: the one package that knows its layout.

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

and beside it `.<name>.lock`, held (flock) by the search while it runs (`hold`), so that a second
start, --resume, export or report of a running search is refused naming its process.

The Ray experiment (`experiment_path`) holds one folder per trial: `result.json` (one line per
epoch) and `checkpoint_*/checkpoint.pt` with that epoch's `grids/`. Checkpoints may live in remote
storage (s3://...); `vaetune.checkpoint.open_checkpoint` fetches them. Everything else in vaetune
names these files, columns and statuses through this module. A folder moved or copied since its
search ran is read where it is now (`move_of`): the absolute paths its files recorded follow it.
Which trial is best, which hold search.constraints and the Pareto front: `vaetune.ranking`.
"""

from __future__ import annotations

from vaetune.results._files import (
    checkpoint_at,
    checkpoint_file,
    checkpoint_folders,
    last_grids,
    latest_checkpoint_of,
    load_search,
    read_history,
    read_json,
    read_summary,
    read_tracking,
    write_json,
    write_summary,
    write_tracking,
)
from vaetune.results._layout import (
    CHECKPOINT,
    CHECKPOINT_DIR,
    CHECKPOINT_FOLDERS,
    CHECKPOINT_SCORE,
    COMPLETED,
    DIVERGED,
    DIVERGENCE,
    DRIVER_FILES,
    EPOCH,
    EPOCHS,
    ERROR,
    ERRORED,
    FEASIBLE,
    KIND,
    OPTUNA_FILE,
    PARETO,
    PENDING_DIR,
    PENDING_FILE,
    REPORT_DIR,
    RESULT_FILE,
    RUN_ID,
    SEARCH,
    SEARCH_FILE,
    SPACE_FILE,
    STATUS,
    STOPPED,
    SUMMARY_FILE,
    SWEEP,
    SWEEP_STATE,
    TEXT_COLUMNS,
    TRACKING_FILE,
    TRIAL_ID,
    TRIAL_PATH,
    TRIALS_FILE,
    UNFINISHED,
    WALL_TIME,
    best_column,
    experiment_path,
    final_column,
    final_metrics,
    optuna_url,
    ranking_column,
    results_dir_for,
    storage_uri,
)
from vaetune.results._lock import hold, holder, lock_file, refuse_if_held
from vaetune.results._moved import Move, move_of
from vaetune.results._search import SearchResults, load_results
from vaetune.results._time import TimeSplit, frame_reports, time_split
from vaetune.results._trials import (
    SHORT_KEYS,
    end_status,
    error_line,
    error_summary,
    short_keys,
    short_value,
    status_phrase,
    trial_label,
    trial_number,
)

__all__ = [
    "CHECKPOINT", "CHECKPOINT_DIR", "CHECKPOINT_FOLDERS", "CHECKPOINT_SCORE", "COMPLETED", "DIVERGED", "DIVERGENCE",
    "DRIVER_FILES", "EPOCH", "EPOCHS", "ERROR", "ERRORED", "FEASIBLE", "KIND", "OPTUNA_FILE", "PARETO", "PENDING_DIR",
    "PENDING_FILE", "REPORT_DIR", "RESULT_FILE", "RUN_ID", "SEARCH", "SEARCH_FILE", "SHORT_KEYS", "SPACE_FILE",
    "STATUS", "STOPPED", "SUMMARY_FILE", "SWEEP", "SWEEP_STATE", "TEXT_COLUMNS", "TRACKING_FILE", "TRIALS_FILE",
    "TRIAL_ID", "TRIAL_PATH", "UNFINISHED", "WALL_TIME",
    "Move", "SearchResults", "TimeSplit",
    "best_column", "checkpoint_at", "checkpoint_file", "checkpoint_folders", "end_status", "error_line",
    "error_summary", "experiment_path", "final_column", "final_metrics", "frame_reports", "hold", "holder",
    "last_grids", "latest_checkpoint_of", "load_results", "load_search", "lock_file", "move_of", "optuna_url",
    "ranking_column", "read_history", "read_json", "read_summary", "read_tracking", "refuse_if_held",
    "results_dir_for", "short_keys", "short_value", "status_phrase", "storage_uri", "time_split", "trial_label",
    "trial_number", "write_json", "write_summary", "write_tracking",
]
