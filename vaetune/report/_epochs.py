"""Trials measured at one epoch: the only ground on which the report compares them.

ASHA stops most trials at its first rung, so a trial's last report is no basis for comparing it
with another: every comparison is made at one epoch, from each trial's per-epoch history
(result.json). FID/KID (`eval/`) are measured only at some epochs and carried in between; a
value in the history counts at epoch E only when `eval/epoch` says it measured epoch E (for a
search recorded before `eval/epoch` existed: when E is one of the configuration's FID epochs),
else it is not measured there. At ASHA's rungs a trial measures only what ranks it
(`search.rung_eval`): the other eval/ values of that epoch are not measured either.
A trial whose history is not on this machine (remote storage), or lacks its last epoch (a
driver killed before Ray copied the history to the results folder), counts at its last epoch from
summary.csv (where a completed or stopped trial always measured FID), with its newest checkpoint.

The epochs that can hold a comparison are those where every trial is measured and keeps its
checkpoint: ASHA's rungs and the last epoch (`vaetune.search.kept_epochs`).
"""

from __future__ import annotations

import math

from vaetune.metrics.registry import EVAL_EPOCH, GENERATIVE
from vaetune.ranking import finite_number
from vaetune.results import (
    CHECKPOINT,
    COMPLETED,
    EPOCH,
    EPOCHS,
    RUN_ID,
    STATUS,
    STOPPED,
    TRIAL_ID,
    TRIAL_PATH,
    SearchResults,
    checkpoint_at,
    final_column,
    latest_checkpoint_of,
)
from vaetune.spec import BETA

# the table's rows: β, or the capacity target when β is not in the loss (train.objective capacity)
CAPACITY = "train.capacity_max"
SCHEDULE = "train.beta_schedule"
OBJECTIVE = "train.objective"
KEY_LABELS = {BETA: "β", CAPACITY: "C_max"}
DASH = "—"  # a value not measured

BETA_IN_EFFECT = "beta"  # the registry's metric: the KL weight in effect at the epoch's end
# what else a row carries: the rate-distortion plane's axes, the Pareto front's fallback, β in effect
EXTRA_METRICS = ("val/recon", "val/elbo", BETA_IN_EFFECT)


def candidate_epochs(results: SearchResults) -> list[int]:
    """Epochs where trials can be compared: ASHA's rungs and the last epoch."""
    return list(results.plan.kept_epochs) if results.plan is not None else [results.max_epochs]


def _fid_epochs(results: SearchResults) -> frozenset[int]:
    """The FID epochs of a search recorded before eval/epoch existed, from its configuration."""
    from vaetune.train import epochs_at

    config = results.config()
    if config is None or not config.train.fid_every:
        return frozenset()
    return epochs_at(config.train.fid_every, config.train.epochs, candidate_epochs(results))



def measured_at(results: SearchResults, row, epoch: int, metrics: tuple[str, ...]) -> dict[str, float | None] | None:
    """A trial's metrics measured at `epoch` (None for one it did not measure there: not recorded,
    or an eval/ value carried from an earlier epoch); None when the trial did not reach `epoch`, or
    when the search ranks by an eval/ metric that the trial did not measure there."""
    history = results.histories.get(str(row[TRIAL_ID]))
    at = history[history[EPOCH] == epoch] if history is not None else None
    if at is not None and not at.empty:
        record = at.iloc[-1]
        if EVAL_EPOCH in record.index:
            stamp = finite_number(record[EVAL_EPOCH])
            measured_eval = stamp == epoch
        else:
            measured_eval = epoch in _fid_epochs(results)
        values = {m: finite_number(record[m]) if m in record.index else None for m in metrics}
    else:
        if finite_number(row.get(EPOCHS)) != epoch:
            return None
        if final_column(EVAL_EPOCH) in row:
            measured_eval = finite_number(row.get(final_column(EVAL_EPOCH))) == epoch
        else:  # a trial measures FID where it ends, unless an error ended it
            measured_eval = row.get(STATUS) in (COMPLETED, STOPPED)
        values = {m: finite_number(row.get(final_column(m))) for m in metrics}
    if not measured_eval:  # what the history holds of FID/KID at this epoch was measured earlier
        if results.metric in GENERATIVE:
            return None  # not ranked at this epoch: left out of its comparison
        values.update({m: None for m in metrics if m in GENERATIVE})  # ranked by a val/ metric
    return values


def at_epoch(results: SearchResults, epoch: int, metrics: tuple[str, ...]):
    """One row per trial measured at `epoch`: trial id, searched values, status, the checkpoint
    it reported at that epoch, MLflow run, `epoch` and each metric (NaN: not recorded)."""
    import pandas as pd

    rows = []
    for _, trial in results.summary.iterrows():
        values = measured_at(results, trial, epoch, metrics)
        if values is None:
            continue
        path = str(trial.get(TRIAL_PATH, "") or "")
        checkpoint = checkpoint_at(path, results.histories.get(str(trial[TRIAL_ID])), epoch)
        if not checkpoint and finite_number(trial.get(EPOCHS)) == epoch:  # its last epoch, not in its history
            checkpoint = latest_checkpoint_of(path) or str(trial.get(CHECKPOINT, "") or "")
        rows.append({TRIAL_ID: str(trial[TRIAL_ID]), **{k: trial[k] for k in results.searched if k in trial},
                     STATUS: str(trial.get(STATUS, "")), EPOCHS: trial.get(EPOCHS), CHECKPOINT: checkpoint,
                     RUN_ID: str(trial.get(RUN_ID, "") or ""), EPOCH: epoch,
                     **{m: math.nan if v is None else v for m, v in values.items()}})
    columns = [TRIAL_ID, *results.searched, STATUS, EPOCHS, CHECKPOINT, RUN_ID, EPOCH, *metrics]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
