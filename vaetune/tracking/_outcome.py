"""The end of a search on its MLflow parent run: the best trial's metrics, parameters and run."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from vaetune.errors import UserError
from vaetune.results import (
    EPOCHS,
    FEASIBLE,
    PARETO,
    RUN_ID,
    SUMMARY_FILE,
    TRIAL_ID,
    final_column,
    final_metrics,
    read_summary,
    read_tracking,
)
from vaetune.tracking._store import TAG_BEST_RUN, TAG_BEST_TRIAL, TAG_FEASIBLE, TAG_PARETO

log = logging.getLogger(__name__)


def log_search_outcome(results: Path, metric: str, mode: str, searched: list[str]) -> str | None:
    """The end of a search, on its MLflow parent run: the best trial's metrics (final values, and
    `best/<metric>`) and searched parameters, a tag with its run id, and summary.csv as an
    artifact. Returns the best trial's run id, or None. MLflow failing only warns."""
    from vaetune.ranking import pick_best

    results = Path(results)
    summary_file = results / SUMMARY_FILE
    state = read_tracking(results)
    if not state or not summary_file.exists():
        return None
    parent = state.get("parent_run_id")
    if not parent:
        return None
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=state["uri"])
        client.log_artifact(parent, str(summary_file))
        summary = read_summary(results)
        _tag_front(client, summary)
        try:
            best, col = pick_best(summary, metric, mode)
        except UserError:  # no trial scored: nothing to point at
            return None
        run_id = str(best.get(RUN_ID) or "")
        now = int(time.time() * 1000)
        values = {m: best[final_column(m)] for m in final_metrics(best.index)}
        values[col] = best[col]
        metrics = [Metric(k, float(v), now, int(best[EPOCHS])) for k, v in values.items()
                   if isinstance(v, (int, float)) and math.isfinite(v)]
        client.log_batch(parent, metrics=metrics)
        if run_id:
            client.set_tag(parent, TAG_BEST_RUN, run_id)
            client.set_tag(parent, TAG_BEST_TRIAL, state.get("run_names", {}).get(best[TRIAL_ID], best[TRIAL_ID]))
        try:  # the same keys as the trials' own parameters, so the search's row lines up with theirs
            client.log_batch(parent, params=[Param(k, str(best[k])) for k in searched if k in best.index])
        except Exception as exc:  # a resumed search that found a better trial: parameters are immutable
            log.warning("the search's MLflow run keeps the parameters of its earlier best trial (%s); "
                        "tag %s names the best run", str(exc).splitlines()[0][:200], TAG_BEST_RUN)
        return run_id or None
    except Exception as exc:  # the files are written; a tracking outage must not fail the search
        log.warning("logging the outcome to MLflow run %s at %s failed (%s: %s)", parent, state["uri"],
                    type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
        return None


def _tag_front(client, summary) -> None:
    """Each trial's run of a multi-objective or constrained search: whether it is on the Pareto
    front and whether it held the constraints (summary.csv's columns), so the MLflow UI filters
    by them (tags.`vaetune.pareto` = 'true')."""
    for column, tag in ((PARETO, TAG_PARETO), (FEASIBLE, TAG_FEASIBLE)):
        if column not in summary:
            continue
        for _, row in summary.iterrows():
            run_id = str(row.get(RUN_ID) or "")
            if run_id:
                client.set_tag(run_id, tag, "true" if bool(row[column]) else "false")
