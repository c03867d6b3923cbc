"""Where training runs and where its images live.

`resolve_device` turns `train.device` into a torch device name. `place_batches` puts the training
split on that device as uint8 when it fits (no host copy per step), otherwise in pinned host
memory with one asynchronous copy per batch; `Batches.epoch` yields shuffled float batches.
`peak_memory` is what one trial needs of a shared GPU (several trials may share one).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vaetune.metrics.registry import GPU_PEAK_MEM, GPU_PEAK_RESERVED

log = logging.getLogger(__name__)

# of the GPU's free memory the training images may take (trials share a GPU)
DEVICE_DATA_FRACTION = 0.25


@dataclass
class Batches:
    """Shuffled mini-batches of a uint8 tensor: on the training device when it fits there (no
    copy per step), else in pinned host memory, each batch copied asynchronously."""

    images: Any  # uint8 (N, C, H, W), on the training device or in pinned host memory
    labels: Any  # int64 (N,) or None, beside the images
    batch_size: int
    copy_to: str | None = None  # images in host memory: the device each batch is copied to

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def epoch(self, generator) -> Iterable[tuple[Any, Any]]:
        import torch

        order = torch.randperm(len(self.images), generator=generator).to(self.images.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx]  # (B, C, H, W) uint8
            y = self.labels[idx] if self.labels is not None else None
            if self.copy_to is not None:
                x = x.pin_memory().to(self.copy_to, non_blocking=True)
                y = None if y is None else y.to(self.copy_to, non_blocking=True)
            yield x.float().div_(255), y  # (B, C, H, W) float in [0, 1]


def fits_on_device(nbytes: int, free_bytes: int, fraction: float = DEVICE_DATA_FRACTION) -> bool:
    """Whether training images of `nbytes` may live on a GPU with `free_bytes` free."""
    return nbytes <= fraction * free_bytes


def place_batches(images, labels, batch_size: int, device: str) -> Batches:
    """The training images as uint8 on the device when they fit (no host copy per step),
    otherwise pinned in host memory with one asynchronous copy per batch."""
    import torch

    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        if not fits_on_device(images.nbytes, free):
            log.info("training images (%.0f MiB) kept in pinned host memory: over %.0f%% of the "
                     "GPU's free %.0f MiB", images.nbytes / 2**20, 100 * DEVICE_DATA_FRACTION,
                     free / 2**20)
            pinned = None if labels is None else labels.pin_memory()
            return Batches(images.pin_memory(), pinned, batch_size, copy_to=device)
    return Batches(images.to(device), None if labels is None else labels.to(device), batch_size)


def peak_memory(device: str) -> dict[str, float]:
    """`sys/gpu_peak_mem_mb`, `sys/gpu_peak_reserved_mb` since the process started; {} off CUDA."""
    if device != "cuda":
        return {}
    import torch

    return {GPU_PEAK_MEM: torch.cuda.max_memory_allocated() / 2**20,
            GPU_PEAK_RESERVED: torch.cuda.max_memory_reserved() / 2**20}
