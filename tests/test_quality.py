"""PSNR and SSIM against closed-form cases."""

from __future__ import annotations

import math

import torch

from vaetune.quality import psnr, ssim


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
