"""A trained model in the gallery: loaded once (the page caches it), on the device it decodes on,
with its fitted latent prior, its classes, and the images of its data (validation and training)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vaetune.errors import UserError


@dataclass
class Loaded:
    """A checkpoint's model in eval mode on `device`, its Config, checkpoint dict and prior."""

    path: str
    model: Any
    config: Any
    state: dict
    prior: Any  # vaetune.models.LatentMixture, or None

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def epoch(self) -> int | None:
        epoch = self.state.get("epoch")
        return None if epoch is None else int(epoch)

    def classes(self) -> list[str]:
        """The names of a conditional model's classes (their numbers where the checkpoint has none);
        [] for an unconditional model."""
        k = self.model.num_classes
        if not k:
            return []
        names = next(iter(self.state.get("data", {}).get("label_names", {}).values()), [])
        return [str(n) for n in names] if len(names) == k else [str(i) for i in range(k)]


def load(checkpoint: str, device: str | None = None) -> Loaded:
    """The model of a checkpoint, local or remote (fetched as `vaetune export` fetches it), on
    `device` (default: CUDA when visible, else the CPU)."""
    from vaetune.checkpoint import load_model_at, load_prior
    from vaetune.machine import resolve_device

    model, config, state = load_model_at(checkpoint)
    prior = load_prior(state, checkpoint, model.latent_dim)
    return Loaded(path=checkpoint, model=model.to(resolve_device(device, what="device")), config=config,
                  state=state, prior=prior)


BANK_BYTES = 1 << 30  # training images kept as float32 for the nearest-image search up to this size


@dataclass
class Images:
    """The images of a model's data: validation (what is reconstructed) and training (what a sample
    may copy), uint8 (N, C, H, W), with the validation images' labels for a conditional model."""

    val: Any
    val_labels: Any  # (N,) int64, or None
    train: Any
    _bank: Any = field(default=None, repr=False)  # (flattened float32 training images, their squared norms)
    held_out: float | None = None  # the validation images' median distance to the training set, once measured

    def pick(self, n: int, seed: int):
        """The indices of n validation images, a seeded random choice (the same for every trial)."""
        import torch

        order = torch.randperm(len(self.val), generator=torch.Generator().manual_seed(seed))
        return order[:min(n, len(self.val))]

    def bank(self):
        """The training images as float32 (N, C*H*W) in [0, 1] and their squared norms (N,): kept
        after the first call when they fit BANK_BYTES (a search of them is then one matrix-vector
        product), converted again at each call otherwise."""
        if self._bank is not None:
            return self._bank
        flat = self.train.flatten(1).float().div(255)
        bank = (flat, flat.square().sum(1))
        if flat.numel() * 4 <= BANK_BYTES:
            self._bank = bank
        return bank


def data_images(config) -> Images:
    """The validation and training images of a model's data config (read through the data cache);
    a UserError when its data is not on this machine or its validation split is empty."""
    from vaetune.viz import load_val

    data, x, y = load_val(config)
    train, _ = data.subset("train")
    if not len(train):
        raise UserError(f"{config.data.source}: the training split is empty")
    return Images(val=x, val_labels=y, train=train)


def data_key(config) -> str:
    """What identifies a model's data: the trials of one search share it, and so its images."""
    return config.data.model_dump_json()
