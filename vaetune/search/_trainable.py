"""The Ray Tune adapter: one trial = `train()` of one configuration, reporting every epoch.

The trial's hyperparameters arrive as dotted keys ("train.beta") and are resolved against the
search space's fixed values. The trial runs `vaetune.train.train` with the callbacks of
`trial_callbacks`: FID at the rungs too, NaN placeholders for the scheduling metric before the
first FID, checkpoints wherever ASHA may stop the trial, and `tune.report` of every epoch with
its checkpoint (the epoch's grids inside it, so the driver can log them to MLflow) and that
checkpoint's `CHECKPOINT_SCORE`, by which Tune decides which checkpoints to keep. A restored
trial continues from `tune.get_checkpoint()` at its next epoch: the `epoch` metric, not Tune's
`training_iteration`, is the scheduler's clock, and it survives restores.
"""

from __future__ import annotations

import functools
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaetune.checkpoint import GRIDS_DIR
from vaetune.metrics.registry import ImageSet, generative, image_sets
from vaetune.results import CHECKPOINT_SCORE
from vaetune.train import (
    Callback,
    Checkpoints,
    EachEpoch,
    EpochEnd,
    GenerativeEval,
    Grids,
    LatentPrior,
    epochs_at,
    train,
)

if TYPE_CHECKING:
    from vaetune.spec import Config, SearchPlan

log = logging.getLogger(__name__)

def run_trial(params: dict[str, Any], *, plan: SearchPlan, data=None, driver_cwd: str | None = None) -> None:
    """Tune function trainable. `plan` is the search's (its configuration for these `params`, and
    its kept epochs, where trials are compared: ASHA's rungs and the last epoch, with FID there
    and a checkpoint that is kept); `data` is the shared ImageData (object store) or None to load
    it from the on-disk cache (when the trial's data settings are themselves searched);
    `driver_cwd` is the folder a searched relative data path is read against (a trial runs in its
    own folder).

    A trial whose loss diverges ends here, with a last report saying so (`DIVERGENCE`), instead
    of raising: the same configuration diverges again from the same checkpoint, so Tune must not
    retry it the way it retries a crash or a lost node.
    """
    from ray import tune

    from vaetune.models import DivergedError

    logging.getLogger("ray.train").setLevel(logging.WARNING)  # one "checkpoint created" line per epoch is noise
    config = _paths_from(plan.trial_config(params), driver_cwd)
    if data is None:
        data = _load_data_on_this_node(config.data)
    workdir = Path(tempfile.mkdtemp(prefix="vaetune-trial-"))
    resume = _restore(tune.get_checkpoint(), workdir / "restored")
    try:
        callbacks = trial_callbacks(config, workdir / "run", plan.kept_epochs, _report_to_tune)
        train(config, callbacks, data=data, resume=resume)
    except DivergedError as exc:
        log.warning("trial diverged: %s", exc)
        tune.report(diverged_report(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def diverged_report(exc) -> dict[str, Any]:
    """A diverged trial's last report: why, the epochs it completed (ASHA has seen them all), and
    NaN for every metric (Tune wants the searched ones in every report; Optuna is told FAIL)."""
    from vaetune.metrics.registry import rankable
    from vaetune.results import DIVERGENCE

    return {**dict.fromkeys(rankable(True, True), math.nan), "epoch": exc.epoch - 1, DIVERGENCE: str(exc)}


def _paths_from(config: Config, driver_cwd: str | None) -> Config:
    """The trial's data.source as the driver meant it: a relative local path (a searched one is
    not made absolute when the search starts) is taken from the driver's working folder."""
    if not driver_cwd or Path(config.data.source).is_absolute():
        return config
    there = Path(driver_cwd) / config.data.source
    if not there.exists():  # builtin:..., hf:..., or a path that exists only where the trial runs
        return config
    return config.model_copy(update={"data": config.data.model_copy(update={"source": str(there)})})


def trial_callbacks(config: Config, folder: Path, rungs: Iterable[int],
                    report: Callable[[EpochEnd], None]) -> list[Callback]:
    """What a trial does at each epoch's end, in order (vaetune.train.callbacks).

    The latent prior (unless `train.prior` is none) fitted at every checkpoint epoch, which
    includes every evaluation, so every checkpoint holds the prior of its own weights;
    FID/KID (when `train.fid_every` > 0) of every image set every fid_every epochs and at the
    last epoch, and at each rung of what ranks the trial (`evaluation_epochs`), its values carried
    between evaluations and NaN before the first; grids every
    grid_every epochs and at the last; a checkpoint every checkpoint_every epochs, with every
    grid (the driver logs the grids from the checkpoint), at every evaluation and rung (ASHA may
    stop the trial right after a rung's report, and Tune restores or exports from its last
    checkpoint) and at the last epoch, scored so that Tune keeps those of the rungs and the last
    epoch (`checkpoint_score`); then `report`.

    Args:
        config: the trial's resolved `Config`.
        folder: where grids and checkpoints are written before `report` ships them.
        rungs: the epochs (1-based) where trials are compared: ASHA's rungs, and the last epoch.
        report: the last callback, given each epoch's record (`tune.report` in a trial).
    """
    tc, rungs = config.train, tuple(rungs)
    full, ranking = evaluation_epochs(config, rungs)
    fid = full | ranking
    grids = epochs_at(tc.grid_every, tc.epochs)
    checkpoints = epochs_at(tc.checkpoint_every, tc.epochs, rungs) | grids | fid
    prior = [LatentPrior(checkpoints)] if tc.fits_prior else []  # every evaluation has a checkpoint
    evaluation = [GenerativeEval(full, ranking, ranking_sets(config)),
                  EachEpoch(_nan_until_measured)] if tc.fid_every else []
    score = functools.partial(_score_checkpoint, kept=frozenset([*rungs, tc.epochs]),
                              metric=config.search.metric, mode=config.search.mode)
    return [*prior, *evaluation, Grids(folder / GRIDS_DIR, grids), Checkpoints(folder, checkpoints),
            EachEpoch(score), EachEpoch(report)]


def evaluation_epochs(config: Config, rungs: Iterable[int]) -> tuple[frozenset[int], frozenset[int]]:
    """The epochs (1-based) of a trial's generative evaluations: those that measure every image
    set (every `train.fid_every` epochs and the last; the rungs too under `search.rung_eval:
    full`), and the rungs that measure only what ranks the trial (`ranking_sets`). Both empty
    when `train.fid_every` is 0."""
    tc, rungs = config.train, frozenset(rungs)
    if not tc.fid_every:
        return frozenset(), frozenset()
    full = epochs_at(tc.fid_every, tc.epochs, rungs if config.search.rung_eval == "full" else ())
    return full, (rungs - full if ranking_sets(config) else frozenset())


def ranking_sets(config: Config) -> frozenset[ImageSet]:
    """The image sets a rung's evaluation decodes: those of the search metric(s) and of the
    constrained metrics (none for val/ metrics: every epoch reports them)."""
    s = config.search
    return image_sets([s.metric, *s.metrics, *s.constraints])


def checkpoint_score(epoch: int, metrics: dict[str, float], kept: Collection[int], metric: str,
                     mode: str) -> float:
    """The score by which Tune keeps a checkpoint (higher is kept): +inf at the kept epochs, so
    that every rung's and the last epoch's checkpoint survives for the report's equal-epoch
    comparisons, else the search metric (negated when lower is better); NaN (not measured yet)
    ranks below every number."""
    if epoch in kept:
        return math.inf
    value = float(metrics.get(metric, math.nan))
    return -value if mode == "min" else value


def _score_checkpoint(end: EpochEnd, *, kept: Collection[int], metric: str, mode: str) -> None:
    if end.checkpoint is not None:
        end.metrics[CHECKPOINT_SCORE] = checkpoint_score(end.epoch, end.metrics, kept, metric, mode)


def _nan_until_measured(end: EpochEnd) -> None:
    """Tune requires the scheduling metric in every report: until the first evaluation the eval/
    keys this trial's evaluations report (the search metric among them: the spec checks it) are
    NaN, present in each report but never logged or told to Optuna as a value."""
    for key in generative(end.config.train.fits_prior):
        end.metrics.setdefault(key, math.nan)


def _report_to_tune(end: EpochEnd) -> None:
    """`tune.report` of the epoch's metrics, with its checkpoint (the epoch's grids inside it)."""
    from ray import tune

    if end.checkpoint is None:
        tune.report(end.metrics)
        return
    grids = end.checkpoint / GRIDS_DIR
    grids.mkdir(exist_ok=True)
    for path in end.artifacts:
        shutil.copy2(path, grids / path.name)
    tune.report(end.metrics, checkpoint=tune.Checkpoint.from_directory(str(end.checkpoint)))
    shutil.rmtree(end.checkpoint, ignore_errors=True)  # Tune has persisted it to trial storage


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
                        "path on every node, or data.cache_dir be shared; see docs/cluster.md, Data on every node)") from None


def _restore(checkpoint, dest: Path) -> Path | None:
    if checkpoint is None:
        return None
    checkpoint.to_directory(str(dest))
    log.info("restoring trial from %s", checkpoint.path)
    return dest
