"""Using a finished search: export the best checkpoint, sample from it, reconstruct images.

`vaetune export RESULTS_DIR` picks the best trial of `summary.csv` by a metric (the search's
own by default), reads that trial's best checkpoint from the search's storage (local, shared or
s3://) and writes one self-contained file: weights, resolved config, data shape and labels,
metrics, the fitted latent prior (when the trial fitted one), vaetune version, and where it came
from. The optimiser is left out. `--register NAME`
also logs it to the trial's MLflow run as an MLflow PyTorch model (image in, reconstruction
out) with a signature, registered under NAME.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from vaetune.checkpoint import atomic_save, load_model
from vaetune.errors import UserError
from vaetune.results import (
    CHECKPOINT,
    RUN_ID,
    SUMMARY_FILE,
    TRIAL_ID,
    best_column,
    final_column,
    final_metrics,
    load_checkpoint_at,
    load_search,
    move_of,
    rank,
    read_tracking,
)

log = logging.getLogger(__name__)

def pick_best(summary, metric: str, mode: str):
    """The summary row with the best value of `metric` (best over epochs if recorded, else final)."""
    col = best_column(metric) if best_column(metric) in summary else final_column(metric)
    if col not in summary:
        known = sorted(set(final_metrics(summary.columns)))
        raise UserError(f"--metric: got {metric!r}; this search recorded: {', '.join(known)}")
    scored = summary[summary[col].notna() & (summary[CHECKPOINT].fillna("") != "")]
    if scored.empty:
        raise UserError(f"no trial has both a value of {metric} and a checkpoint; see {SUMMARY_FILE}")
    return rank(scored, col, mode).iloc[0], col


@dataclass
class Exported:
    path: Path  # the written file
    trial_id: str
    selected_by: str  # "min best/eval/fid_sample"
    value: float  # the trial's value of that column
    epoch: int  # the checkpoint's epoch
    source: dict  # search, trial, checkpoint, MLflow run id


def export_best(results: str | Path, out: str | Path, *, metric: str | None = None, mode: str | None = None) -> Exported:
    """Write the best trial's checkpoint of a finished search as one self-contained file."""
    from vaetune import __version__
    from vaetune.metrics.registry import mode_of

    state, summary = load_search(results)
    metric = metric or state["metric"]
    mode = mode or (state["mode"] if metric == state["metric"] else mode_of(metric))
    row, col = pick_best(summary, metric, mode)
    ckpt = load_checkpoint_at(str(row[CHECKPOINT]))
    source = {"search": state["name"], "trial_id": str(row[TRIAL_ID]), "checkpoint": str(row[CHECKPOINT]),
              "mlflow_run_id": _str(row.get(RUN_ID)), "selected_by": f"{mode} {col}"}
    exported = {
        "model": ckpt["model"], "config": ckpt["config"], "data": ckpt["data"], "epoch": ckpt["epoch"],
        "metrics": ckpt.get("metrics", {}), "version": __version__, "trained_with_version": ckpt.get("version"),
        "source": source,
    }
    if ckpt.get("prior") is not None:
        exported["prior"] = ckpt["prior"]
    path = atomic_save(exported, out)
    return Exported(path=path, trial_id=source["trial_id"], selected_by=source["selected_by"], value=float(row[col]),
                    epoch=int(ckpt["epoch"]), source=source)


def _str(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def register_model(path: Path, name: str, run_id: str, state: dict, results: str | Path) -> tuple[str, str]:
    """Log the exported model to MLflow with a signature and register it under `name`; returns
    (version, store URI). The store is the user's $MLFLOW_TRACKING_URI when set (a results folder
    copied to another project follows it; the trial's run, in the search's store, is not there, so
    the model gets a run of its own), else the store the search recorded."""
    import os

    import mlflow
    import torch
    from mlflow.models import infer_signature

    from vaetune.tracking import left_behind, resolve_uri

    recorded = read_tracking(results).get("uri")
    uri = resolve_uri(os.environ["MLFLOW_TRACKING_URI"]) if os.environ.get("MLFLOW_TRACKING_URI") else (
        recorded or resolve_uri(None))
    if uri != recorded:
        run_id = ""
    mlflow.set_tracking_uri(uri)
    if run_id:
        old = left_behind(mlflow.MlflowClient(uri).get_run(run_id).info.artifact_uri, move_of(results))
        if old:
            raise UserError(f"--register: the MLflow store {uri} moved with this search's project, but MLflow keeps "
                            f"its runs' artifacts at {old} (it records absolute paths), where nothing may be written "
                            "now; register into a store of this project with MLFLOW_TRACKING_URI=sqlite:///PATH")
    model, config, _ = load_model(path)
    wrapped = Reconstructor(model).eval()
    example = torch.rand(2, *model.image_shape)
    with torch.no_grad():
        signature = infer_signature(example.numpy(), wrapped(example).numpy())
    with mlflow.start_run(run_id=run_id or None, run_name=None if run_id else f"{state['name']}-export"):
        info = mlflow.pytorch.log_model(wrapped, name="model", signature=signature, input_example=example.numpy(),
                                        registered_model_name=name)
    return str(getattr(info, "registered_model_version", "?")), uri


def _reconstructor_class():
    import torch

    class _Reconstructor(torch.nn.Module):
        """Image batch in [0, 1] (B, C, H, W) -> reconstruction: what a served VAE answers."""

        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, x):
            return self.vae(x).recon

    return _Reconstructor


def Reconstructor(vae):  # noqa: N802 - builds a module; torch is imported lazily
    return _reconstructor_class()(vae)


# ---------------------------------------------------------------------------------------------
# using a checkpoint


SAMPLERS = ("gmm", "prior")  # `vaetune sample --sampler`: the fitted latent prior, or N(0, I)


def sample_images(model, n: int, *, label: int | None = None, seed: int = 0, prior=None):
    """n images (n, C, H, W) in [0, 1] decoded from z ~ N(0, I), or from `prior` (a fitted
    vaetune.prior.LatentMixture) when given; a conditional model decodes `label` (default 0)."""
    import torch

    from vaetune.viz import class_labels

    if n < 1:
        raise UserError(f"--n: got {n}; give at least 1")
    y = class_labels(model, n, label)
    with torch.no_grad():
        return model.sample(n, y, generator=torch.Generator().manual_seed(seed), prior=prior)


def pick_sampler(sampler: str | None, prior, path: str) -> str:
    """The sampler `vaetune sample` uses: the one asked for, else gmm when the checkpoint has a
    fitted prior and prior (N(0, I)) otherwise."""
    if sampler is None:
        return "gmm" if prior is not None else "prior"
    if sampler not in SAMPLERS:
        raise UserError(f"--sampler: got {sampler!r}; accepted: {', '.join(SAMPLERS)}")
    if sampler == "gmm" and prior is None:
        raise UserError(f"--sampler gmm: {path} holds no fitted latent prior (trained with "
                        "train.prior: none, or by a vaetune without one); use --sampler prior for "
                        "z ~ N(0, I)")
    return sampler


def read_for_model(path: str, config):
    """One image file decoded the way the model's data was: float (1, C, H, W) in [0, 1]."""
    from vaetune.data import load_image

    d = config.data
    return load_image(path, image_size=d.image_size, channels=d.channels, background=tuple(d.background),
                      resize=d.resize).float().div(255)[None]


def reconstruct(model, config, path: str):
    """(input, reconstruction) of one image file, each (1, C, H, W) in [0, 1]."""
    import torch

    if model.num_classes:
        raise UserError("reconstruct needs labels for a conditional model; use sample --label instead")
    x = read_for_model(path, config)
    with torch.no_grad():
        return x, model(x).recon
