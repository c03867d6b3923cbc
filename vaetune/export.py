"""Export the best checkpoint of a finished search as one self-contained file.

`vaetune export RESULTS_DIR` picks the best trial of `summary.csv` by a metric (the search's
own by default; the rule is `vaetune.ranking`'s, which every reader of a search shares), reads that trial's best checkpoint from the search's storage (local, shared or
s3://) and writes one self-contained file: weights, resolved config, data shape and labels,
metrics, the fitted latent prior (when the trial fitted one), vaetune version, and where it came
from. The optimiser is left out. (`--register NAME` then logs it to MLflow:
vaetune.tracking.register_model. Using a checkpoint, exported or not: vaetune.checkpoint.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vaetune.checkpoint import atomic_save, load_checkpoint_at
from vaetune.errors import UserError
from vaetune.ranking import has_checkpoint, pick_best
from vaetune.results import (
    CHECKPOINT,
    RUN_ID,
    STATUS,
    SUMMARY_FILE,
    TRIAL_ID,
    load_search,
    ranking_column,
)


@dataclass
class Exported:
    path: Path  # the written file
    trial_id: str
    selected_by: str  # "min best/eval/fid_sample", or "--trial ID"
    value: float  # the trial's value of `metric` (NaN: none)
    epoch: int  # the checkpoint's epoch
    source: dict  # search, trial, checkpoint, MLflow run id
    metric: str = ""  # the summary column of `value`
    sampler: str = ""  # the vaetune.samplers name `vaetune sample` draws its z with by default


def export_best(results: str | Path, out: str | Path, *, metric: str | None = None, mode: str | None = None,
                trial: str | None = None) -> Exported:
    """Write the best trial's checkpoint of a finished search (or that of `trial`) as one
    self-contained file."""
    from vaetune.metrics.registry import mode_of

    state, summary = load_search(results)
    metric = metric or state["metric"]
    mode = mode or (state["mode"] if metric == state["metric"] else mode_of(metric))
    if trial is not None:
        row = pick_trial(summary, trial)
        col = ranking_column(summary.columns, metric)
        selected = f"--trial {row[TRIAL_ID]}"
    else:
        row, col = pick_best(summary, metric, mode)
        selected = f"{mode} {col}"
    exported = exported_checkpoint(state, row, selected)
    path = atomic_save(exported, out)
    value = float(row[col]) if col in row and row[col] == row[col] else math.nan
    return Exported(path=path, trial_id=str(row[TRIAL_ID]), selected_by=selected, value=value,
                    epoch=int(exported["epoch"]), source=exported["source"], metric=col,
                    sampler=_handed(exported, path).name)


def _handed(exported: dict, path: Path):
    """The sampler `vaetune sample` draws the exported model's z with by default."""
    from vaetune.checkpoint import pick_sampler
    from vaetune.spec import stored_config

    config = stored_config(exported["config"], f"{path} (stored config)")
    return pick_sampler(None, exported.get("prior"), str(path), config)


def pick_trial(summary, trial_id: str):
    """The summary row of one trial (`vaetune export --trial ID`), with a checkpoint."""
    rows = summary[summary[TRIAL_ID].astype(str) == str(trial_id)]
    if rows.empty:
        known = ", ".join(summary[TRIAL_ID].astype(str))
        raise UserError(f"--trial: got {trial_id!r}; this search's trials are: {known}")
    row = rows.iloc[0]
    if not has_checkpoint(row):
        raise UserError(f"--trial: trial {trial_id} kept no checkpoint ({row.get(STATUS)}); see {SUMMARY_FILE}")
    return row


def exported_checkpoint(state: dict, row, selected_by: str) -> dict:
    """The self-contained checkpoint `vaetune export` writes for one trial (a summary row) of the
    search whose search.json is `state`; `selected_by` says how the trial was chosen."""
    from vaetune import __version__

    ckpt = load_checkpoint_at(str(row[CHECKPOINT]))
    source = {"search": state["name"], "trial_id": str(row[TRIAL_ID]), "checkpoint": str(row[CHECKPOINT]),
              "mlflow_run_id": _str(row.get(RUN_ID)), "selected_by": selected_by}
    exported = {
        "model": ckpt["model"], "config": ckpt["config"], "data": ckpt["data"], "epoch": ckpt["epoch"],
        "metrics": ckpt.get("metrics", {}), "version": __version__, "trained_with_version": ckpt.get("version"),
        "source": source,
    }
    if ckpt.get("prior") is not None:
        exported["prior"] = ckpt["prior"]
    return exported


def checkpoint_bytes(checkpoint: dict) -> bytes:
    """A checkpoint dict as the bytes of its file (what `atomic_save` writes), for a download."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    return buf.getvalue()


def _str(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


