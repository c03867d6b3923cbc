"""Images -> 2048-d pool3 features of the FID Inception, in batches, on any device.

Input is what vaetune holds: uint8 tensors (N, C, H, W) with C = 1, 3 or 4, or float batches in
[0, 1] straight from a model. A batch travels to the device as uint8 (4x less to copy), becomes
float in [0, 1] there, gets 3 channels (grey repeated; RGBA composited on a background colour)
and enters pytorch-fid's network, which resizes bilinearly to 299 and maps to [-1, 1] itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from vaetune.machine import resolve_device
from vaetune.metrics._inception import get_inception

log = logging.getLogger(__name__)

FEATURE_DIM = 2048
BATCH_CUDA = 200  # fits easily in a few GB with 299x299 inputs
BATCH_CPU = 32  # the largest of the CPU network's stage micro-batches (CPU_STAGE_BATCHES)


def auto_batch_size(device: str | torch.device) -> int:
    """Default Inception batch: large on CUDA, moderate on CPU."""
    return BATCH_CUDA if torch.device(device).type == "cuda" else BATCH_CPU


def to_float_rgb(batch: torch.Tensor, background: tuple[int, int, int] = (255, 255, 255)) -> torch.Tensor:
    """uint8 or [0, 1] float (B, C, H, W), C in 1/3/4 -> float32 (B, 3, H, W) in [0, 1] on the batch's device."""
    if batch.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(batch.shape)}")
    x = batch.float().div_(255) if batch.dtype == torch.uint8 else batch.float().clamp(0, 1)
    c = x.shape[1]
    if c == 3:
        return x
    if c == 1:
        return x.expand(-1, 3, -1, -1)
    if c == 4:
        bg = torch.tensor(background, dtype=x.dtype, device=x.device).div_(255).view(1, 3, 1, 1)
        alpha = x[:, 3:4]
        return x[:, :3] * alpha + bg * (1 - alpha)  # "over" compositing on an opaque background
    raise ValueError(f"images must have 1, 3 or 4 channels, got {c}")


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> uint8, as saving a generated image to PNG would; keeps model and file FIDs comparable."""
    return x.detach().clamp(0, 1).mul(255).round_().to(torch.uint8)


def batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of a (N, C, H, W) tensor."""
    for i in range(0, len(images), batch_size):
        yield images[i : i + batch_size]


class FeatureExtractor:
    """The FID Inception on one device, fed batch by batch; counts the images it has seen."""

    def __init__(self, device: str | torch.device | None = "auto", *, batch_size: int | None = None,
                 background: tuple[int, int, int] = (255, 255, 255), channels_last: bool = True,
                 network: torch.nn.Module | None = None):
        """``network``: pytorch-fid's forward contract on ``device``; default the per-process :func:`get_inception`."""
        self.device = torch.device(resolve_device(device, what="device"))
        self.batch_size = batch_size or auto_batch_size(self.device)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.background = background
        # channels_last: 1.6x faster on CPU (oneDNN), and the layout cuDNN prefers
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = (network if network is not None else get_inception(self.device)).to(memory_format=self.memory_format)
        self.images_seen = 0

    @torch.inference_mode()
    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """Features (B, 2048) float32 of one batch, on the device."""
        x = to_float_rgb(images.to(self.device, non_blocking=True), self.background)
        x = x.contiguous(memory_format=self.memory_format)
        self.images_seen += len(x)
        return self.net(x)[0].flatten(1)  # (B, 2048, 1, 1) -> (B, 2048)

    def stream(self, chunks: Iterable[torch.Tensor]) -> np.ndarray:
        """Features (N, 2048) float64 of batches as they come (e.g. from a generator), as pytorch-fid stores them."""
        parts = [self.batch(chunk).cpu() for chunk in chunks]
        if not parts:
            return np.empty((0, FEATURE_DIM))
        return torch.cat(parts).double().numpy()

    def images(self, images: torch.Tensor) -> np.ndarray:
        """Features (N, 2048) float64 of a whole (N, C, H, W) tensor, in batches of ``batch_size``."""
        return self.stream(batches(images, self.batch_size))


def image_features(images: torch.Tensor, device: str | torch.device | None = "auto", *,
                   batch_size: int | None = None, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Pool3 features (N, 2048) float64 of uint8 (or [0, 1] float) images (N, C, H, W)."""
    return FeatureExtractor(device, batch_size=batch_size, background=background).images(images)
