"""Deterministic splits, ImageData.subset, and batch augmentation (shape, range, device,
identity when disabled, flips equal to torch.flip, per-sample randomness, alpha untouched)."""

from __future__ import annotations

import pytest
import torch

from vaetune.data import Augment, ImageData, split_indices
from vaetune.data.splits import split_counts
from vaetune.spec import AugmentConfig, SplitConfig

# the cuda cases are collected everywhere and skipped without a GPU (the gpu marker: tests/conftest.py)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def test_split_is_deterministic_disjoint_and_complete():
    cfg = SplitConfig(train=0.7, val=0.2, test=0.1)
    a, b = split_indices(103, cfg, seed=4), split_indices(103, cfg, seed=4)
    assert all(torch.equal(a[k], b[k]) for k in ("train", "val", "test"))
    everything = torch.cat([a["train"], a["val"], a["test"]])
    assert sorted(everything.tolist()) == list(range(103))  # disjoint and complete
    assert [len(a[k]) for k in ("train", "val", "test")] == [72, 21, 10]
    assert a["val"].dtype == torch.int64 and torch.equal(a["val"], a["val"].sort().values)
    other = split_indices(103, cfg, seed=5)
    assert not torch.equal(other["val"], a["val"])


@pytest.mark.parametrize("n, expected", [
    (0, [0, 0, 0]), (1, [1, 0, 0]), (2, [1, 1, 0]), (3, [1, 1, 1]), (5, [3, 1, 1]), (20, [16, 2, 2]),
])
def test_small_n_keeps_every_split_non_empty_when_possible(n, expected):
    counts = split_counts(n, SplitConfig())  # 0.8 / 0.1 / 0.1
    assert [counts[k] for k in ("train", "val", "test")] == expected


def test_zero_fraction_split_is_empty():
    counts = split_counts(50, SplitConfig(train=0.9, val=0.1, test=0.0))
    assert counts == {"train": 45, "val": 5, "test": 0}


def test_subset_returns_primary_labels():
    images = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 1, 2, 2).contiguous()
    data = ImageData(images=images, labels={"class": torch.tensor([0, 1, 0, 1, 0, 1])},
                     label_names={"class": ["a", "b"]},
                     splits={"train": torch.tensor([0, 2, 3]), "val": torch.tensor([5]), "test": torch.tensor([1, 4])},
                     skipped=[], source="x", fingerprint="f")
    x, y = data.subset("val")
    assert x[:, 0, 0, 0].tolist() == [5] and y.tolist() == [1]
    assert data.num_classes == 2 and data.image_shape == (1, 2, 2)
    unlabelled = ImageData(images=images, labels={}, label_names={}, splits=data.splits, skipped=[],
                           source="x", fingerprint="f")
    assert unlabelled.subset("train")[1] is None and unlabelled.num_classes == 0


def batch(n=16, c=3, size=12, device="cpu") -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(0)).to(device)


def test_disabled_is_identity_without_work():
    x = batch()
    assert Augment(AugmentConfig())(x) is x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_full_augmentation_keeps_shape_range_device(device, channels):
    aug = Augment(AugmentConfig(hflip=0.5, vflip=0.5, rotate=15, brightness=0.4, contrast=0.4, saturation=0.4))
    x = batch(c=channels, device=device)
    y = aug(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1 and not torch.equal(x, y)


@pytest.mark.parametrize("device", DEVICES)
def test_flips_with_probability_one_equal_torch_flip(device):
    x = batch(device=device)
    assert torch.equal(Augment(AugmentConfig(hflip=1.0))(x), torch.flip(x, dims=[-1]))
    assert torch.equal(Augment(AugmentConfig(vflip=1.0))(x), torch.flip(x, dims=[-2]))


def test_flip_is_drawn_per_sample():
    x = batch(n=64)
    y = Augment(AugmentConfig(hflip=0.5))(x, generator=torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(y[i], x[i].flip(-1)) for i in range(64)])
    kept = torch.tensor([torch.equal(y[i], x[i]) for i in range(64)])
    assert (flipped | kept).all() and 15 < flipped.sum() < 49


def test_rotation_of_constant_image_is_constant_and_varies_per_sample():
    flat = torch.full((8, 3, 16, 16), 0.3)
    assert torch.allclose(Augment(AugmentConfig(rotate=30))(flat), flat, atol=1e-6)  # border padding: no black corners
    bar = torch.zeros(8, 1, 16, 16)
    bar[:, :, 7:9, :] = 1.0  # a horizontal bar: rotation tilts it by a per-sample angle
    out = Augment(AugmentConfig(rotate=30))(bar, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(out[0], out[1]) and torch.allclose(out.sum((1, 2, 3)), bar.sum((1, 2, 3)), rtol=0.25)


def test_jitter_changes_colour_not_alpha_and_is_reproducible():
    x = batch(c=4)
    aug = Augment(AugmentConfig(brightness=0.5, contrast=0.5, saturation=0.5))
    y = aug(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(y[:, 3], x[:, 3])
    assert not torch.allclose(y[:, :3], x[:, :3])
    assert torch.equal(y, aug(x, generator=torch.Generator().manual_seed(3)))
    ratio = y[:, :3].mean((1, 2, 3)) / x[:, :3].mean((1, 2, 3))
    assert ratio.std() > 0.05  # brightness factors differ between images


def test_saturation_zero_factor_range_reaches_grey():
    x = batch(n=256)
    y = Augment(AugmentConfig(saturation=1.0))(x, generator=torch.Generator().manual_seed(0))
    spread = (y.max(1).values - y.min(1).values).mean((1, 2))  # colourfulness per image
    assert spread.min() < 0.1 * spread.max()  # factor near 0 makes an image nearly grey
