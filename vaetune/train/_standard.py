"""The standard callbacks (contract in vaetune.train.callbacks), in their usual order.

`LatentPrior` (the fitted latent prior), `GenerativeEval` (FID/KID, values carried between
evaluations), `Grids`, `Checkpoints` (with pruning), `ProgressBar`; `standard_callbacks` composes
the first four as `vaetune train` runs them.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Container
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaetune.checkpoint import GRIDS_DIR
from vaetune.metrics.registry import (
    CHECKPOINT_TIME,
    EVAL_EPOCH,
    EVAL_TIME,
    IMAGE_SETS,
    ImageSet,
)
from vaetune.train._device import peak_memory
from vaetune.train._grids import GridWriter
from vaetune.train._state import prune_checkpoints, save_training_state
from vaetune.train.callbacks import Callback, EpochEnd, TrainStart, epochs_at

if TYPE_CHECKING:
    from vaetune.spec import Config


class LatentPrior(Callback):
    """The latent prior of the epoch's model at the epochs `at` (vaetune.models.fit_model_prior): a
    Gaussian mixture of `train.prior_components` components (`train.prior_covariance`) fitted to
    the posterior means of a seeded subset of the training split, in `end.prior` for the evaluation
    and the checkpoint after it. The fit is a function of the weights and `train.seed` and draws
    from none of the loop's generators, so a resumed run fits the same mixtures and trains the
    same weights."""

    def __init__(self, at: Container[int]):
        self.at = at

    def on_epoch_end(self, end: EpochEnd) -> None:
        if end.epoch not in self.at:
            return
        from vaetune.models import fit_model_prior

        t0 = time.perf_counter()
        tc = end.config.train
        images, labels = end.data.subset("train")
        labels = labels if end.config.model.conditional else None
        end.prior = fit_model_prior(end.model, images, labels, device=end.device,
                                    components=tc.prior_components,
                                    covariance=tc.prior_covariance, seed=tc.seed)
        seconds = time.perf_counter() - t0
        end.metrics["time/epoch_s"] += seconds  # the epoch's cost, as FID's
        end.metrics[EVAL_TIME] += seconds


class GenerativeEval(Callback):
    """FID/KID (vaetune.metrics) at the epochs `at`, of every image set; at the epochs `ranking_at`
    (ASHA's rungs) of the image sets `ranking_sets` only (what ranks the trial: the search
    metric's; none for a val/ metric, and then nothing is measured there). The last evaluation's
    values are carried into the metrics of the epochs between (and across a resume), with
    `eval/epoch` saying which epoch they measured, so a comparison at one epoch can tell a
    measurement from a carried value; a measure the last evaluation did not take is absent (NaN in
    a trial's reports), never carried from an older one. Before the first evaluation there are none."""

    def __init__(self, at: Container[int], ranking_at: Container[int] = (),
                 ranking_sets: Collection[ImageSet] = ()):
        self.at, self.ranking_at, self.ranking_sets = at, ranking_at, frozenset(ranking_sets)
        self.carried: dict[str, float] = {}

    def sets_at(self, epoch: int) -> frozenset[ImageSet]:
        """The image sets measured at `epoch` (empty: no evaluation there)."""
        if epoch in self.at:
            return frozenset(IMAGE_SETS)
        return self.ranking_sets if epoch in self.ranking_at else frozenset()

    def on_train_start(self, start: TrainStart) -> None:
        self.carried = {k: v for k, v in start.metrics.items() if k.startswith("eval/")}

    def on_epoch_end(self, end: EpochEnd) -> None:
        sets = self.sets_at(end.epoch)
        if sets:
            from vaetune.metrics import evaluate_generative

            t0 = time.perf_counter()
            dc = end.config.data
            self.carried = evaluate_generative(end.model, end.data, end.config.train, end.device,
                                               cache_dir=dc.cache_dir, background=dc.background,
                                               prior=end.prior, sets=sets)
            self.carried[EVAL_EPOCH] = end.epoch
            # an epoch's cost includes its evaluation (time, GPU memory): a trial's share of a GPU
            seconds = time.perf_counter() - t0
            end.metrics["time/epoch_s"] += seconds
            end.metrics[EVAL_TIME] += seconds
            end.metrics.update(peak_memory(end.device))
        end.metrics.update(self.carried)


class Grids(Callback):
    """Reconstruction and sample grids (vaetune.train._grids) into `folder` at the epochs `at`, the
    samples drawn the way the configuration's user is handed them (`Config.handed_sampler`)."""

    def __init__(self, folder: Path, at: Container[int]):
        self.folder, self.at, self.writer = Path(folder), at, None

    def on_train_start(self, start: TrainStart) -> None:
        val_x, val_y = start.val
        self.writer = GridWriter(start.model, val_x, val_y, start.model.num_classes,
                                 start.config.train.grid_size, start.device)
        self.handed = start.config.handed_sampler

    def on_epoch_end(self, end: EpochEnd) -> None:
        if end.epoch in self.at:
            t0 = time.perf_counter()
            # samples as the user is handed them: the epoch's fitted mixture (LatentPrior fits it at every grid epoch)
            prior = end.prior if self.handed.fitted else None
            end.artifacts += self.writer.write(self.folder, end.epoch, prior)
            end.metrics[CHECKPOINT_TIME] += time.perf_counter() - t0


class Checkpoints(Callback):
    """`folder/checkpoint_epochNNNN/` at the epochs `at`, keeping the newest `keep` (None: all)."""

    def __init__(self, folder: Path, at: Container[int], keep: int | None = None):
        self.folder, self.at, self.keep = Path(folder), at, keep

    def on_epoch_end(self, end: EpochEnd) -> None:
        if end.epoch in self.at:
            t0 = time.perf_counter()
            end.checkpoint = save_training_state(self.folder, end.model, end.optimizer,
                                                 end.generator, end.epoch, end.config, end.data,
                                                 end.metrics, end.prior)
            prune_checkpoints(self.folder, self.keep)
            end.metrics[CHECKPOINT_TIME] += time.perf_counter() - t0


class ProgressBar(Callback):
    """A tqdm bar per epoch (on stderr), closed with the epoch's loss and val/psnr."""

    def __init__(self):
        self.bar: Any = None
        self.steps = self.epochs = 0

    def on_train_start(self, start: TrainStart) -> None:
        self.steps, self.epochs = start.steps, start.config.train.epochs

    def on_step_end(self, epoch: int, step: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.steps, desc=f"epoch {epoch}/{self.epochs}", unit="batch",
                            leave=True)
        self.bar.update(1)

    def on_epoch_end(self, end: EpochEnd) -> None:
        if self.bar is not None:
            m = end.metrics
            self.bar.set_postfix(loss=f"{m['train/loss']:.4g}", val_psnr=f"{m['val/psnr']:.2f}")
        self.close()

    def close(self) -> None:
        """End the bar of an epoch that did not finish (training stopped), so it prints before
        whatever says why."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def standard_callbacks(config: Config, folder: str | Path, *,
                       keep_checkpoints: int | None = None) -> list[Callback]:
    """FID/KID every `train.fid_every` epochs (if > 0), grids every `grid_every`, checkpoints every
    `checkpoint_every`, each also at the last epoch; the latent prior (unless `train.prior` is
    none) fitted at each evaluation, checkpoint and grid; grids and checkpoints under `folder`."""
    tc, folder = config.train, Path(folder)
    fid = epochs_at(tc.fid_every, tc.epochs) if tc.fid_every else frozenset()
    checkpoints = epochs_at(tc.checkpoint_every, tc.epochs)
    grids = epochs_at(tc.grid_every, tc.epochs)
    prior = [LatentPrior(fid | checkpoints | grids)] if tc.fits_prior else []
    evaluation = [GenerativeEval(fid)] if tc.fid_every else []
    return [*prior, *evaluation, Grids(folder / GRIDS_DIR, grids), Checkpoints(folder, checkpoints, keep_checkpoints)]
