"""After a search: one summary row per trial (summary.csv) and the outcome the command prints."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetune.metrics.registry import EVAL_EPOCH, GENERATIVE
from vaetune.ranking import (
    Bounds,
    FrontTable,
    best_over_epochs,
    best_trial,
    describe,
    feasible,
    front_table,
    is_feasible,
    non_dominated,
)
from vaetune.results import (
    CHECKPOINT,
    COMPLETED,
    DIVERGED,
    DIVERGENCE,
    EPOCH,
    EPOCHS,
    ERROR,
    ERRORED,
    FEASIBLE,
    PARETO,
    RUN_ID,
    SEARCH_FILE,
    STATUS,
    TRIAL_ID,
    TRIAL_PATH,
    TRIALS_FILE,
    UNFINISHED,
    WALL_TIME,
    TimeSplit,
    best_column,
    end_status,
    error_line,
    final_column,
    frame_reports,
    read_json,
    read_tracking,
    storage_uri,
    time_split,
    write_summary,
)
from vaetune.search._state import WARM_KEY
from vaetune.spec import Config, SearchPlan


@dataclass
class Outcome:
    """What a finished (or interrupted) search amounts to."""

    rows: list[dict[str, Any]]  # summary.csv, one dict per trial
    summary_path: Path | None
    metric: str
    mode: str
    unfinished: int  # trials interrupted or never started
    best: dict[str, Any] | None  # the best trial's row (vaetune.ranking.best_trial)
    time: TimeSplit | None = None  # where the trials' time went (None: nothing timed)
    front: FrontTable | None = None  # several objectives: the Pareto front marked in summary.csv
    held_to: str = ""  # search.constraints in words ("val/kl >= 5"); "" without
    imported: int = 0  # a warm start's observations: earlier trials in the study, none of `rows`
    imported_from: str = ""  # the earlier search's results folder

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row[STATUS]] = out.get(row[STATUS], 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    @property
    def exit_code(self) -> int:
        """130 when the search was interrupted, 1 when no trial reported the metric, else 0."""
        if self.unfinished:
            return 130
        return 0 if self.best is not None else 1


def summarise(result_grid, plan: SearchPlan, results: Path) -> Outcome:
    """Write summary.csv and return the outcome."""
    import pandas as pd

    config = plan.config
    rows = mark_front(trial_rows(result_grid, plan, results), config)
    path = write_summary(results, rows)
    unfinished = sum(r[STATUS] == UNFINISHED for r in rows) + max(0, plan.trials - len(rows))
    metric, mode = config.search.metric, config.search.mode
    found = best_trial(pd.DataFrame(rows), metric, mode) if rows else None
    best = found.to_dict() if found is not None else None
    s = config.search
    front = (front_table(pd.DataFrame(rows), list(zip(s.metrics, s.modes, strict=True)), s.bounds())
             if rows and s.metrics else None)
    frames = [getattr(r, "metrics_dataframe", None) for r in result_grid]
    warm = read_json(results / SEARCH_FILE).get(WARM_KEY) or {}
    return Outcome(rows=rows, summary_path=path, metric=metric, mode=mode, unfinished=unfinished, best=best,
                   time=time_split(frame_reports(frames)), front=front,
                   held_to=describe(s.bounds()) if s.constraints else "",
                   imported=len(warm.get("imported", [])), imported_from=str(warm.get("from", "")))


def mark_front(rows: list[dict[str, Any]], config: Config) -> list[dict[str, Any]]:
    """A search with constraints: each row's `feasible` (its final values hold them); with several
    objectives: `pareto`, the feasible trials that ran every epoch and that no other such trial
    beats on every objective's final value (all at the last epoch: like with like)."""
    import pandas as pd

    s = config.search
    if not rows or not (s.constraints or s.metrics):
        return rows
    frame = pd.DataFrame(rows)
    ok = feasible(frame, s.bounds(), final_column)
    if s.constraints:
        frame[FEASIBLE] = ok
    if s.metrics:
        among = ok & (frame[STATUS] == COMPLETED)
        frame[PARETO] = non_dominated(frame, [(final_column(m), md) for m, md in zip(s.metrics, s.modes, strict=True)],
                                      among=among)
    return frame.to_dict("records")


def trial_rows(result_grid, plan: SearchPlan, results: Path) -> list[dict[str, Any]]:
    """One row per trial: params, final and best metrics, status, epochs, wall time, run ids.

    With search.constraints a trial's best value of the search metric, and the checkpoint it
    names, are those of its epochs whose values held them (vaetune.ranking's rule)."""
    config = plan.config
    metric, mode, top = config.search.metric, config.search.mode, plan.max_epochs
    bounds = config.search.bounds() if config.search.constraints else {}
    runs = read_tracking(results).get("trial_runs", {})
    ledger = read_json(results / TRIALS_FILE)
    rows = []
    for r in result_grid:
        last = r.metrics or {}
        trial_id = str(last.get("trial_id") or _trial_id_from_path(r.path))
        recorded = ledger.get(trial_id, {})
        config_of = r.config or recorded.get("config") or {}
        epochs = int(last.get(EPOCH, 0) or 0)
        ended = bool(last.get("done")) or recorded.get("state") == "terminated"
        if r.error is not None:
            status = ERRORED
        elif last.get(DIVERGENCE):
            status = DIVERGED
        elif not ended:
            status = UNFINISHED
        else:
            status = end_status(epochs, top)
        row: dict[str, Any] = {TRIAL_ID: trial_id, **{k: config_of.get(k) for k in plan.searched}}
        row.update({STATUS: status, EPOCHS: epochs, WALL_TIME: round(float(last.get("time_total_s", 0.0)), 2),
                    ERROR: _error_of(r.error) if r.error is not None else str(last.get(DIVERGENCE) or "")})
        for key in sorted(k for k in last if "/" in k and isinstance(last[k], (int, float))):
            row[final_column(key)] = last[key]
        best = best_over_epochs(r.metrics_dataframe, metric, mode, bounds)
        row[best_column(metric)] = best[0] if best is not None else None
        # several objectives: the front judges the last epoch, so its checkpoint is the trial's
        last_checkpoint = r.checkpoint.path if r.checkpoint else None
        row[CHECKPOINT] = storage_uri(config.search.storage, last_checkpoint if config.search.metrics
                                      else _best_checkpoint(r, metric, mode, bounds))
        row[TRIAL_PATH] = storage_uri(config.search.storage, r.path)
        row[RUN_ID] = runs.get(trial_id, "")
        rows.append(row)
    return rows


def _best_checkpoint(result, metric: str, mode: str, bounds: Bounds) -> str | None:
    """The checkpoint whose model has the best value of `metric` among those whose values hold
    `bounds` (search.constraints); the latest when none has one.

    Not Ray's `Result.get_best_checkpoint`: it also ranks the NaN placeholders of the epochs before
    the first FID evaluation (`min`/`max` then keep the first checkpoint, never measured) and the
    FID values carried to epochs between evaluations (measured on an earlier model). Here an eval/
    value counts only at the epoch it measured (`eval/epoch`); ties go to the earliest epoch.
    """
    scored = []
    for ckpt, metrics in result.best_checkpoints or []:
        value, epoch = _lookup(metrics, metric), _lookup(metrics, EPOCH)
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            continue
        if bounds and not is_feasible({m: _lookup(metrics, m) for m in bounds}, bounds):
            continue  # an epoch outside search.constraints is never the trial's best
        if metric in GENERATIVE and _lookup(metrics, EVAL_EPOCH) != epoch:
            continue  # carried from an earlier epoch's model
        scored.append((float(value) if mode == "min" else -float(value), epoch or 0, ckpt))
    if scored:
        return min(scored, key=lambda s: s[:2])[2].path
    return result.checkpoint.path if result.checkpoint else None


def _lookup(metrics: dict, key: str) -> Any:
    """A reported metric, under its flat name ("eval/fid_sample") or nested as Tune may keep it."""
    if key in metrics:
        return metrics[key]
    node: Any = metrics
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _trial_id_from_path(path: str | None) -> str:
    """Tune names trial folders <trainable>_<trial id>_<n>_<params>_<date>."""
    parts = Path(path or "").name.split("_")
    return parts[2] if len(parts) > 3 and parts[0] == "run" else "?"


def _error_of(err: BaseException) -> str:
    return error_line(str(err)) if str(err).strip() else type(err).__name__
