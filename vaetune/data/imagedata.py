"""The decoded data set handed to training: images, labels, generating factors and splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageData:
    """A decoded image collection with its deterministic train/val/test split.

    ``images`` stays uint8 on the CPU (4x smaller than float); the training loop converts
    batches to float in [0, 1] on its device.
    """

    images: torch.Tensor  # uint8 (N, C, H, W), CPU, contiguous
    labels: dict[str, torch.Tensor]  # label name -> int64 (N,); folders: "class"
    label_names: dict[str, list[str]]  # label name -> class names (index -> name)
    splits: dict[str, torch.Tensor]  # "train" / "val" / "test" -> sorted int64 indices
    skipped: list[tuple[str, str]]  # (file, reason) of invalid images
    source: str
    fingerprint: str  # cache key: source fingerprint + preprocessing settings
    factors: dict[str, torch.Tensor] = field(default_factory=dict)  # sprites: float32 (N,)

    @property
    def primary_label(self) -> str | None:
        """The label a conditional model uses: the first key of ``labels``."""
        return next(iter(self.labels), None)

    @property
    def num_classes(self) -> int:
        """Number of classes of :attr:`primary_label`, 0 when unlabelled."""
        name = self.primary_label
        return len(self.label_names[name]) if name is not None else 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.images.shape[1:])

    def subset(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 images of one split and their primary labels (None when unlabelled)."""
        if split not in self.splits:
            raise KeyError(f"unknown split {split!r}; one of {', '.join(self.splits)}")
        index = self.splits[split]
        name = self.primary_label
        return self.images[index], (self.labels[name][index] if name is not None else None)

    def __len__(self) -> int:
        return len(self.images)
