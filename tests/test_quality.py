"""PSNR and SSIM against closed-form cases."""

from __future__ import annotations

import math

import torch

from vaetune.metrics import psnr, ssim


def test_ssim_of_identical_images_is_one_and_of_noise_is_near_zero():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-5)
    assert ssim(x, y).abs().max() < 0.1


def test_ssim_of_constant_images_matches_the_formula():
    a, b = 0.2, 0.6  # constant images: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    c1 = 0.01**2
    x, y = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    assert math.isclose(float(ssim(x, y)), (2 * a * b + c1) / (a * a + b * b + c1), rel_tol=1e-4)


def test_ssim_works_on_images_smaller_than_the_window():
    x = torch.rand(2, 1, 8, 8)
    assert ssim(x, x).shape == (2,) and torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)


def test_psnr_of_known_error():
    x = torch.zeros(1, 3, 4, 4)
    y = torch.full((1, 3, 4, 4), 0.1)  # mse 0.01 -> 20 dB
    assert math.isclose(float(psnr(x, y)), 20.0, rel_tol=1e-5)


def test_separable_ssim_equals_the_windowed_definition():
    import torch.nn.functional as F

    def windowed(x, y, k=11, sigma=1.5):  # Wang et al.: Gaussian-weighted local statistics, depthwise
        c = x.shape[1]
        co = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
        g = torch.exp(-(co**2) / (2 * sigma**2))
        g = g / g.sum()
        w = (g[:, None] * g[None, :]).expand(c, 1, k, k).contiguous()
        mx, my = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
        sxx = F.conv2d(x * x, w, groups=c) - mx**2
        syy = F.conv2d(y * y, w, groups=c) - my**2
        sxy = F.conv2d(x * y, w, groups=c) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        return (((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).flatten(1).mean(1)

    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 32, 24, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert torch.allclose(ssim(x, y), windowed(x, y), atol=1e-6)
