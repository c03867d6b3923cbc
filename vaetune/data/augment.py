"""Batch augmentation on the training device: flips, small rotations and colour jitter.

:class:`Augment` works on float batches (B, C, H, W) in [0, 1] wherever they live (the GPU during
training), draws its random parameters per image, and never loops over images in Python.
The order is: colour jitter (brightness, contrast, saturation, in that fixed order, with
torchvision's factor ranges), then horizontal and vertical flips, then rotation.

* Jitter acts on the colour channels only: the first three of RGB(A), the single one of grey
  (saturation does nothing there); alpha is left as it is.
* Rotation by a uniform angle in [-rotate, rotate] degrees uses ``affine_grid`` + bilinear
  ``grid_sample``; the corners it uncovers repeat the border pixels (right for the plain
  backgrounds of most collections, sprites included).
* With every strength at 0 the batch is returned unchanged (the same tensor, no work).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaetune.spec import AugmentConfig

_LUMA = (0.299, 0.587, 0.114)  # as torchvision's rgb_to_grayscale


class Augment:
    """Random augmentation of float image batches in [0, 1], configured by AugmentConfig."""

    def __init__(self, cfg: AugmentConfig):
        self.cfg = cfg
        self.enabled = any(getattr(cfg, name) > 0 for name in type(cfg).model_fields)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``x`` (B, C, H, W); ``generator`` (on x's device) makes it reproducible."""
        if not self.enabled:
            return x
        if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
            raise ValueError(f"Augment expects (B, C, H, W) with C in 1, 3, 4, got {tuple(x.shape)}")
        c = self.cfg
        if c.brightness or c.contrast or c.saturation:
            x = self._jitter(x, generator)
        if c.hflip:
            x = torch.where(self._chance(x, c.hflip, generator), x.flip(-1), x)
        if c.vflip:
            x = torch.where(self._chance(x, c.vflip, generator), x.flip(-2), x)
        if c.rotate:
            x = _rotate(x, self._uniform(x, -c.rotate, c.rotate, generator))
        return x

    def _jitter(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        c = self.cfg
        colour, alpha = (x[:, :3], x[:, 3:]) if x.shape[1] == 4 else (x, x[:, :0])
        if c.brightness:
            colour = (colour * self._factor(x, c.brightness, gen)).clamp(0, 1)
        if c.contrast:
            mean = _grey(colour).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
            colour = _blend(colour, mean, self._factor(x, c.contrast, gen))
        if c.saturation and colour.shape[1] == 3:
            colour = _blend(colour, _grey(colour), self._factor(x, c.saturation, gen))
        return torch.cat([colour, alpha], dim=1) if alpha.shape[1] else colour

    def _factor(self, x: torch.Tensor, strength: float, gen: torch.Generator | None) -> torch.Tensor:
        # torchvision's ColorJitter range: uniform in [max(0, 1 - s), 1 + s]
        return self._uniform(x, max(0.0, 1 - strength), 1 + strength, gen).view(-1, 1, 1, 1)

    @staticmethod
    def _uniform(x: torch.Tensor, low: float, high: float, gen: torch.Generator | None) -> torch.Tensor:
        return low + (high - low) * torch.rand(x.shape[0], device=x.device, dtype=x.dtype, generator=gen)

    @staticmethod
    def _chance(x: torch.Tensor, p: float, gen: torch.Generator | None) -> torch.Tensor:
        return (torch.rand(x.shape[0], device=x.device, generator=gen) < p).view(-1, 1, 1, 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * x + (1 - factor) * other).clamp(0, 1)


def _rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    theta = degrees * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    matrix = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(matrix, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp(0, 1)
