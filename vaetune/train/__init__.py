"""Training one configuration: the loop, its validation, and the callbacks around it.

`train(config, callbacks)` (vaetune.train._loop) is plain PyTorch and knows nothing of Ray,
MLflow or files; what happens at each epoch's end is composed from callbacks
(vaetune.train.callbacks): FID/KID, grids, checkpoints, a progress bar, a reporter. `vaetune
train` and the Ray Tune adapter (vaetune.search._trainable) each compose their own list.

Modules, one concern each: `_device` (device, batches on it or in pinned host memory), `_rng`
(RNG streams), `_validate` (val/ metrics and their units, `register_measure`), `_grids` (grid
images), `_state` (checkpoint contents and folders), `callbacks` (the contract), `_standard`
(the standard callbacks), `_loop`.
"""

from __future__ import annotations

from vaetune.train._device import (
    DEVICE_DATA_FRACTION,
    Batches,
    fits_on_device,
    place_batches,
)
from vaetune.train._grids import GRID_SEED
from vaetune.train._loop import train
from vaetune.train._standard import (
    Checkpoints,
    GenerativeEval,
    Grids,
    LatentPrior,
    ProgressBar,
    standard_callbacks,
)
from vaetune.train._state import (
    checkpoint_bytes,
    latest_checkpoint,
    restore_training_state,
    save_training_state,
)
from vaetune.train._validate import ACTIVE_UNIT_THRESHOLD, MEASURES, register_measure, validate
from vaetune.train.callbacks import Callback, EachEpoch, EpochEnd, TrainStart

__all__ = [
    "ACTIVE_UNIT_THRESHOLD", "DEVICE_DATA_FRACTION", "GRID_SEED", "MEASURES",
    "Batches", "Callback", "Checkpoints", "EachEpoch", "EpochEnd", "GenerativeEval", "Grids", "LatentPrior",
    "ProgressBar", "TrainStart",
    "checkpoint_bytes", "fits_on_device", "latest_checkpoint", "place_batches",
    "register_measure", "restore_training_state", "save_training_state", "standard_callbacks", "train", "validate",
]
