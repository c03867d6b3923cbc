"""The Ray Tune adapter: one trial = `train()` of one configuration, reporting every epoch.

The trial's hyperparameters arrive as dotted keys ("train.beta") and are resolved against the
search space's fixed values. Every epoch goes to `tune.report`; checkpoints (with the grids of
that epoch inside them, so the driver can log them to MLflow) go with the report. A restored
trial continues from `tune.get_checkpoint()` at its next epoch: the `epoch` metric, not Tune's
`training_iteration`, is the scheduler's clock, and it survives restores.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
GRIDS_DIR = "grids"


def run_trial(params: dict[str, Any], *, space_raw: dict, source: str, data=None, eval_epochs=()) -> None:
    """Tune function trainable. `data` is the shared ImageData (object store) or None to load
    it from the on-disk cache (when the trial's data settings are themselves searched)."""
    from ray import tune

    from vaetune.spec import space_from_dict
    from vaetune.train import train

    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "checkpoint created" line per epoch is noise
    config = space_from_dict(space_raw, source).resolve(params)
    if data is None:
        data = _load_data_on_this_node(config.data)
    workdir = Path(tempfile.mkdtemp(prefix="vaetune-trial-"))
    resume = _restore(tune.get_checkpoint(), workdir / "restored")

    def report(metrics: dict, ckpt: Path | None, artifacts: list[Path]) -> None:
        if ckpt is None:
            tune.report(metrics)
            return
        grids = ckpt / GRIDS_DIR
        grids.mkdir(exist_ok=True)
        for path in artifacts:
            shutil.copy2(path, grids / path.name)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(ckpt)))
        shutil.rmtree(ckpt, ignore_errors=True)  # Tune has persisted it to the trial's storage

    try:
        train(config, report, workdir / "run", data=data, resume=resume, eval_epochs=eval_epochs,
              checkpoint_with_grids=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _load_data_on_this_node(cfg):
    """Trials of a search over data.* keys load on their own node (from `data.cache_dir` if it
    is cached there, else decoding the source): on a cluster the source must be on every node."""
    import socket

    from vaetune.data import load_data
    from vaetune.errors import UserError

    try:
        return load_data(cfg)
    except UserError as exc:
        raise UserError(f"{exc} (on node {socket.gethostname()}: on a cluster data.source must exist at the same "
                        "path on every node, or data.cache_dir be shared; see README, Run on a cluster)") from None


def _restore(checkpoint, dest: Path) -> Path | None:
    if checkpoint is None:
        return None
    checkpoint.to_directory(str(dest))
    log.info("restoring trial from %s", checkpoint.path)
    return dest
