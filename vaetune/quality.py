"""Per-image reconstruction quality: PSNR and SSIM (Wang et al. 2004), on [0, 1] images.

SSIM uses the usual 11x11 Gaussian window (sigma 1.5), shrunk to the image for tiny images,
with C1 = (0.01)^2 and C2 = (0.03)^2, computed per channel over valid positions and averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_K1, _K2 = 0.01, 0.03


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) peak signal-to-noise ratio in dB of images in [0, 1]."""
    mse = F.mse_loss(x.float(), y.float(), reduction="none").flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _window(size: int, sigma: float, channels: int, device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()  # (C, 1, k, k)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(B,) mean SSIM of two image batches (B, C, H, W) in [0, 1]."""
    x, y = x.float(), y.float()
    c = x.shape[1]
    k = min(window, x.shape[-1], x.shape[-2])
    k -= (k + 1) % 2  # odd window
    w = _window(k, sigma * k / window, c, x.device)
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    c1, c2 = _K1**2, _K2**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)
