"""MLflow's model registry: an exported vaetune model logged with a signature and registered."""

from __future__ import annotations

from pathlib import Path

from vaetune.checkpoint import Reconstructor, load_model
from vaetune.errors import UserError
from vaetune.results import move_of, read_tracking
from vaetune.tracking._store import left_behind, resolve_uri


def register_model(path: Path, name: str, run_id: str, state: dict, results: str | Path) -> tuple[str, str]:
    """Log the exported model to MLflow with a signature and register it under `name`; returns
    (version, store URI). The store is the user's $MLFLOW_TRACKING_URI when set (a results folder
    copied to another project follows it; the trial's run, in the search's store, is not there, so
    the model gets a run of its own), else the store the search recorded."""
    import os

    import mlflow
    import torch
    from mlflow.models import infer_signature

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
