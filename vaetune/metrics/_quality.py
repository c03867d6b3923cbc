"""Per-image reconstruction quality: PSNR and SSIM (Wang et al. 2004), on [0, 1] images.

SSIM uses the usual 11x11 Gaussian window (sigma 1.5), shrunk to the image for tiny images,
with C1 = (0.01)^2 and C2 = (0.03)^2, computed per channel over valid positions and averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_K1, _K2 = 0.01, 0.03


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) mean squared error per image, over all its values."""
    return F.mse_loss(x.float(), y.float(), reduction="none").flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) peak signal-to-noise ratio in dB of images in [0, 1]."""
    return psnr_from_mse(mse(x, y))


def psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB from per-image mean squared errors of [0, 1] images (clamped at 100 dB)."""
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(B,) mean SSIM of two image batches (B, C, H, W) in [0, 1].

    The Gaussian window is separable, so the local means and moments are two banded matrix
    products rather than depthwise k x k convolutions (4-7x faster on CPU, same values).
    """
    x, y = x.float(), y.float()
    h, w = x.shape[-2:]
    k = min(window, h, w)
    k -= (k + 1) % 2  # odd window
    coords = torch.arange(k, dtype=torch.float32, device=x.device) - (k - 1) / 2
    g = torch.exp(-(coords**2) / (2 * (sigma * k / window) ** 2))
    g = g / g.sum()

    def band(n: int) -> torch.Tensor:  # (n - k + 1, n): row i holds the window at columns i..i+k-1
        rows = torch.arange(n - k + 1, device=x.device)[:, None] + torch.arange(k, device=x.device)
        return torch.zeros(n - k + 1, n, device=x.device).scatter_(1, rows, g.expand(n - k + 1, k))

    gh, gw = band(h), band(w)
    mu_x, mu_y, xx, yy, xy = gh @ torch.stack([x, y, x * x, y * y, x * y]) @ gw.T  # 5 x (B, C, h', w')
    sxx, syy, sxy = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = _K1**2, _K2**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)
