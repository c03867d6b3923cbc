"""MLflow tracking of a search, from the driver only.

One writer avoids both of MLflow's concurrency traps on sqlite ("database is locked", and
trial processes racing to create the experiment): the trials never talk to MLflow; a Tune
callback in the driver logs for them. Each search is a parent run in an experiment named after
the search; each trial a nested child run named by what it tried (`β=0.0033 z=4 lr=2e-4`), with
its resolved hyperparameters, its metrics every epoch (step = epoch), its grids and final
checkpoint, and a status tag (summary.csv's word: completed, stopped, diverged, errored). When the
search ends, the parent run gets the best trial's metrics and parameters, a tag naming its run,
and `summary.csv`.

The store is where MLflow itself looks when nothing is set (`sqlite:///mlflow.db` in the working
folder for MLflow 3, artifacts in `mlruns/` beside it), or $MLFLOW_TRACKING_URI, so `mlflow ui`,
`mlflow server` and `mlflow.search_runs()` find the runs without flags. The experiment is marked
as one of model training (`mlflow.experimentKind`) and carries a saved view of each search (its
trials listed flat, best first by the search metric, with the searched parameters as columns),
which `vaetune ui` opens in the UI's model-training mode.

If the tracking server is unreachable, nothing fails: events are queued and retried before each
later event; whatever is still unsent at the end is written to `mlflow_pending.jsonl` in the
results folder, with a warning, and sent by `vaetune search SPACE --resume`.
"""

from __future__ import annotations

from vaetune.tracking._outcome import log_search_outcome
from vaetune.tracking._registry import register_model
from vaetune.tracking._store import (
    TAG_BEST_RUN,
    TAG_BEST_TRIAL,
    TAG_ERROR,
    TAG_FEASIBLE,
    TAG_IMPORTED,
    TAG_PARETO,
    TAG_SEARCH,
    TAG_STATUS,
    TAG_TRIAL,
    TAG_WARM_START,
    check_server,
    check_store,
    default_artifact_root,
    imported_tags,
    latest_search,
    left_behind,
    open_store,
    resolve_uri,
    search_view,
    ui_command,
    view_url,
)
from vaetune.tracking._tracker import SearchTracker, numeric_metrics

__all__ = [
    "TAG_BEST_RUN", "TAG_BEST_TRIAL", "TAG_ERROR", "TAG_FEASIBLE", "TAG_PARETO", "TAG_SEARCH", "TAG_STATUS", "TAG_TRIAL", "TAG_IMPORTED",
    "TAG_WARM_START", "SearchTracker",
    "check_server", "check_store", "default_artifact_root", "imported_tags", "latest_search", "left_behind", "log_search_outcome",
    "numeric_metrics", "open_store", "register_model", "resolve_uri", "search_view", "ui_command", "view_url",
]
