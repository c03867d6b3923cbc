"""FID/KID arithmetic without Inception: closed forms, scipy, pytorch-fid, atomic cache writes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from vaetune.fileio import atomic_write
from vaetune.metrics import (
    fid_from_features,
    frechet_distance,
    frechet_distance_lowrank,
    kid,
    statistics,
)
from vaetune.metrics._features import to_float_rgb


def test_frechet_distance_of_diagonal_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = rng.uniform(0.1, 3, size=16), rng.uniform(0.1, 3, size=16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_matches_direct_sqrtm_for_full_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 12)), rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12)) + 0.5
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-8)
    assert fid_from_features(a, b, method="pytorch-fid") == pytest.approx(direct, rel=1e-8)


@pytest.mark.parametrize("n1,n2,dim", [(20, 30, 64), (40, 40, 64), (100, 80, 16)])
def test_lowrank_frechet_distance_equals_pytorch_fid(n1, n2, dim):
    rng = np.random.default_rng(n1 + dim)
    f1 = np.abs(rng.normal(size=(n1, dim)))  # ReLU-like features, rank-deficient when n < dim
    f2 = np.abs(rng.normal(0.3, 1.2, size=(n2, dim)))
    reference = frechet_distance(*statistics(f1), *statistics(f2))
    assert frechet_distance_lowrank(f1, f2) == pytest.approx(reference, rel=1e-6)
    assert fid_from_features(f1, f2, method="auto") == pytest.approx(reference, rel=1e-6)


def test_fid_of_a_set_with_itself_is_zero():
    f = np.abs(np.random.default_rng(2).normal(size=(30, 64)))
    assert abs(fid_from_features(f, f, method="lowrank")) < 1e-8
    assert abs(fid_from_features(f, f, method="pytorch-fid")) < 1e-6


def test_fid_rejects_sets_of_one_image_and_unknown_methods():
    f = np.ones((5, 8))
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_features(f[:1], f)
    with pytest.raises(ValueError, match="method"):
        fid_from_features(f, f, method="fast")


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(3)
    a1, a2 = np.abs(rng.normal(size=(300, 64))), np.abs(rng.normal(size=(300, 64)))
    b = np.abs(rng.normal(0.5, 1.0, size=(300, 64)))
    same, same_std = kid(a1, a2, subset_size=100, n_subsets=50)
    diff, diff_std = kid(a1, b, subset_size=100, n_subsets=50)
    assert abs(same) < 3 * same_std + 1e-3
    assert diff > 3 * diff_std and diff > 10 * abs(same)
    assert same_std > 0 and diff_std > 0


def test_kid_default_subsets_are_half_the_smaller_set_and_reproducible():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(50, 16))
    mean, std = kid(a, b)  # subset_size = 25: subsets differ, so the spread is real
    assert std > 0.0
    assert kid(a, b, subset_size=25) == (mean, std)
    whole, whole_std = kid(a, b, subset_size=50, n_subsets=3)  # whole sets: one value
    assert whole_std == 0.0 and kid(a, b, subset_size=50, n_subsets=1)[0] == whole
    assert kid(a, b[:40], seed=7) == kid(a, b[:40], seed=7)
    with pytest.raises(ValueError, match="subset_size"):
        kid(a, b, subset_size=51)


def test_channels_are_made_rgb_before_inception():
    grey = torch.full((2, 1, 4, 4), 128, dtype=torch.uint8)
    assert torch.allclose(to_float_rgb(grey), torch.full((2, 3, 4, 4), 128 / 255))
    rgba = torch.zeros((1, 4, 2, 2), dtype=torch.uint8)
    rgba[:, 0] = 255  # red, alpha 0 on the left column, 255 on the right
    rgba[:, 3, :, 1] = 255
    out = to_float_rgb(rgba, background=(0, 0, 255))
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))  # background shows through
    assert torch.allclose(out[0, :, 0, 1], torch.tensor([1.0, 0.0, 0.0]))  # opaque red
    with pytest.raises(ValueError, match="channels"):
        to_float_rgb(torch.zeros((1, 2, 2, 2), dtype=torch.uint8))


def test_atomic_write_leaves_the_old_file_on_failure_and_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "stats.npz"
    atomic_write(target, lambda f: f.write(b"first"))

    def fail(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["stats.npz"]
