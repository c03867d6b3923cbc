"""The training state in a checkpoint: what is saved, how it is restored, where the folders are.

A run's folder holds one `checkpoint_epochNNNN/checkpoint.pt` per checkpointed epoch (the dict's
keys are listed in docs/CONTRACTS.md and vaetune.checkpoint). Restoring the weights, the
optimiser and the RNG streams continues a run at its next epoch with the same result, bit for
bit, as a run that never stopped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vaetune.checkpoint import CHECKPOINT_FILE, atomic_save, load_checkpoint
from vaetune.train._rng import rng_state, set_rng_state

_FOLDER_GLOB = "checkpoint_epoch*"


def checkpoint_folder(out: str | Path, epoch: int) -> Path:
    """`out/checkpoint_epochNNNN`: zero-padded, so the folders sort in epoch order."""
    return Path(out) / f"checkpoint_epoch{epoch:04d}"


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest `checkpoint_epochNNNN/` folder under checkpoint_dir, or None."""
    found = sorted(Path(checkpoint_dir).glob(f"{_FOLDER_GLOB}/{CHECKPOINT_FILE}"))
    return found[-1].parent if found else None


def save_training_state(out: Path, model, optimizer, shuffle_gen, epoch: int, config, data,
                        metrics, prior=None) -> Path:
    """Write `checkpoint_epochNNNN/checkpoint.pt` (see vaetune.checkpoint) and return its folder.

    Args:
        out: the run's folder.
        model: the VAE; optimizer: its optimiser; shuffle_gen: the batch-order generator.
        epoch: completed epochs.
        config: the resolved `Config`, stored so the checkpoint rebuilds its model alone.
        data: the `ImageData` trained on (shape, classes, label names, fingerprint are stored).
        metrics: the epoch's metrics; a resumed run carries its last eval/ values from them.
        prior: the latent prior fitted to this model (vaetune.models.LatentMixture), stored as
            plain tensors under "prior"; None: none stored.
    """
    from vaetune import __version__

    folder = checkpoint_folder(out, epoch)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "rng": rng_state(shuffle_gen),
        "config": config.model_dump(mode="json"),
        "data": {
            "image_shape": list(data.images.shape[1:]),
            "num_classes": data.num_classes if config.model.conditional else 0,
            "label_names": data.label_names,
            "fingerprint": data.fingerprint,
        },
        "metrics": {k: float(v) for k, v in metrics.items()},
        "version": __version__,
    }
    if prior is not None:
        state["prior"] = prior.to_state()
    atomic_save(state, folder / CHECKPOINT_FILE)
    return folder


# a checkpoint holds the weights and the optimiser's two moments (Adam's), float32, each tensor a
# zip entry of its own (~450 bytes of headers measured), RNG states, config and metrics (~12 KiB),
# and beside it that epoch's two grids (reconstructions and samples)
_WEIGHT_COPIES, _FLOAT_BYTES, _ENTRY_BYTES, _FIXED_BYTES, _GRIDS = 3, 4, 512, 16 << 10, 2


def checkpoint_bytes(config, num_classes: int = 0) -> int:
    """At most the bytes one checkpoint of `config` (a resolved Config) takes with its grids: the
    model built on torch's meta device (no memory), the grids as raw pixels (PNG is smaller).
    A sprites model of 2,378 weights: 64 KiB measured, 81 KiB estimated."""
    import torch

    from vaetune.models import build_model

    d = config.data
    with torch.device("meta"):
        model = build_model(config.model, (d.channels, d.image_size, d.image_size), num_classes)
    tensors = list(model.state_dict().values())
    weights = sum(t.numel() for t in tensors) * _FLOAT_BYTES * _WEIGHT_COPIES + len(tensors) * _ENTRY_BYTES * _WEIGHT_COPIES
    return weights + _FIXED_BYTES + _GRIDS * config.train.grid_size**2 * d.channels * d.image_size**2


def restore_training_state(path: str | Path, model, optimizer,
                           shuffle_gen) -> tuple[int, dict[str, float]]:
    """Load a checkpoint (file or folder) into the model, optimiser and RNG streams.

    Returns:
        (completed epochs, the metrics stored with them).
    """
    state = load_checkpoint(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"], shuffle_gen)
    return state["epoch"], state.get("metrics", {})


def prune_checkpoints(out: Path, keep: int | None) -> None:
    """Delete all but the newest `keep` checkpoint folders (None or 0 keeps all)."""
    if not keep:
        return
    folders = sorted(out.glob(_FOLDER_GLOB))
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
