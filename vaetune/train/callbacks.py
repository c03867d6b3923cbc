"""What happens around the training loop: the callback contract.

`train(config, callbacks)` calls, on each callback in list order:
1. `on_train_start(TrainStart)` once, after the model is built and a resumed state restored;
2. `on_step_end(epoch, step)` after every optimiser step;
3. `on_epoch_end(EpochEnd)` once per epoch, all callbacks sharing one record: a callback may add
   metrics, append to `artifacts`, set `prior` or `checkpoint`, and the callbacks after it see that.
Hence the order: producers, writers, reporter: `LatentPrior` (sets `prior`), `GenerativeEval`
(adds eval/ metrics, also of the prior's samples), `Grids` (writes PNGs), `Checkpoints` (stores
the metrics and the prior; a checkpoint follows its epoch's grids), then whatever reports the
epoch (the CLI's printer, the Tune adapter's `tune.report`). The standard callbacks live in
vaetune.train._standard; all are importable from vaetune.train.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from vaetune.data import ImageData
    from vaetune.models import VAE, LatentMixture
    from vaetune.spec import Config


@dataclass
class TrainStart:
    """What a callback may need before the first epoch of this run (a resumed run: the next one)."""

    config: Config
    model: VAE
    data: ImageData
    device: str
    epoch: int  # epochs completed before this run: 0, or the resumed checkpoint's
    metrics: dict[str, float]  # the resumed checkpoint's metrics; {} for a fresh run
    steps: int  # optimiser steps per epoch
    val: tuple[torch.Tensor, torch.Tensor | None]  # validation uint8 images, labels if conditional


@dataclass
class EpochEnd:
    """One epoch's end, shared by all callbacks in turn; the last one sees everything added."""

    epoch: int  # epochs completed, 1-based
    metrics: dict[str, float]  # this epoch's; callbacks may add to it
    model: VAE
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # orders the batches; a checkpoint saves its state
    config: Config
    data: ImageData
    device: str
    artifacts: list[Path] = field(default_factory=list)  # files written this epoch (grids)
    prior: LatentMixture | None = None  # the latent prior fitted to this epoch's model
    checkpoint: Path | None = None  # the checkpoint folder written this epoch


class Callback:
    """Hooks of the training loop, each a no-op here: override the ones you need."""

    def on_train_start(self, start: TrainStart) -> None:
        pass

    def on_step_end(self, epoch: int, step: int) -> None:
        """After optimiser step `step` (1-based) of epoch `epoch` (1-based)."""

    def on_epoch_end(self, end: EpochEnd) -> None:
        pass


class EachEpoch(Callback):
    """Calls `fn(end)` at the end of every epoch: a reporter as a plain function."""

    def __init__(self, fn: Callable[[EpochEnd], Any]):
        self.fn = fn

    def on_epoch_end(self, end: EpochEnd) -> None:
        self.fn(end)
