"""FID and KID from Inception features.

FID is pytorch-fid's ``calculate_frechet_distance`` on pytorch-fid's statistics (mean and
``np.cov(rowvar=False)``). Its ``scipy.linalg.sqrtm`` of a 2048x2048 matrix takes ~14 s on a
2-core CPU, whatever N is, so :func:`fid_from_features` offers ``method="lowrank"`` for N <= 2048
(the trial setting): with Sigma_i = A_i^T A_i (A_i the centred features / sqrt(N_i - 1)), the
non-zero eigenvalues of Sigma_1 Sigma_2 are the squared singular values of A_1 A_2^T, so
Tr sqrt(Sigma_1 Sigma_2) is the nuclear norm of that N_1 x N_2 matrix: the same quantity,
computed in milliseconds. Tests hold it to pytorch-fid's value.

KID is the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged
over random subsets (Binkowski et al. 2018; as torch-fidelity computes it).
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

FDMethod = Literal["auto", "pytorch-fid", "lowrank"]
KID_SUBSETS = 100  # torch-fidelity's default
KID_SUBSET_SIZE = 1000  # torch-fidelity's default; smaller sets use all their images


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features (N, d), exactly as pytorch-fid computes them."""
    if len(features) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(features)}")
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """pytorch-fid's ``calculate_frechet_distance``; its printed warnings go to the debug log."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # it print()s when the product is singular (N < d)
        value = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
    if out.getvalue().strip():
        log.debug("pytorch-fid: %s", out.getvalue().strip())
    return float(value)


def frechet_distance_lowrank(f1: np.ndarray, f2: np.ndarray) -> float:
    """The Frechet distance of two feature sets, computed in sample space (exact; fast when N <= d)."""
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1 = (f1 - mu1) / np.sqrt(len(f1) - 1)  # Sigma_1 = a1^T a1
    a2 = (f2 - mu2) / np.sqrt(len(f2) - 1)
    tr_covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()  # Tr sqrt(Sigma_1 Sigma_2)
    diff = mu1 - mu2
    return float(diff @ diff + np.sum(a1 * a1) + np.sum(a2 * a2) - 2 * tr_covmean)


def fid_from_features(f1: np.ndarray, f2: np.ndarray, *, method: FDMethod = "auto") -> float:
    """FID between two feature sets (N_i, d).

    Args:
        method: "pytorch-fid" (its sqrtm on d x d), "lowrank" (same value in sample space), or
            "auto": lowrank when both sets have at most d images, else pytorch-fid.
    """
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(f1)} and {len(f2)}")
    if resolve_method(method, len(f1), len(f2), f1.shape[1]) == "lowrank":
        return frechet_distance_lowrank(f1, f2)
    return frechet_distance(*statistics(f1), *statistics(f2))


def resolve_method(method: FDMethod, n1: int, n2: int, dim: int) -> str:
    """"auto" -> "lowrank" when both sets have at most ``dim`` images (sqrtm is slowest there), else "pytorch-fid"."""
    if method not in ("auto", "pytorch-fid", "lowrank"):
        raise ValueError(f"method must be auto, pytorch-fid or lowrank, got {method!r}")
    if method == "auto":
        return "lowrank" if max(n1, n2) <= dim else "pytorch-fid"
    return method


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples (m, d) with the cubic polynomial kernel."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / m**2)


def kid(f1: np.ndarray, f2: np.ndarray, *, n_subsets: int = KID_SUBSETS, subset_size: int | None = None,
        seed: int = 0) -> tuple[float, float]:
    """Unbiased KID (mean, standard deviation over subsets) between feature sets (N_i, d).

    Args:
        n_subsets: random subsets drawn without replacement from each set.
        subset_size: images per subset; None: half the smaller set, at most 1000 (the usual
            size). Subsets smaller than the sets differ from one another, so the standard
            deviation is an honest spread even for small datasets; subsets that are whole sets
            on both sides all give the same value, computed once, std 0.
        seed: seeds the subset draws, so a metric is reproducible.
    """
    n = min(len(f1), len(f2))
    m = min(KID_SUBSET_SIZE, max(2, n // 2)) if subset_size is None else subset_size
    if not 2 <= m <= n:
        raise ValueError(f"KID subset_size must be in 2..{n} (the smaller set), got {m}")
    if n_subsets < 1:
        raise ValueError(f"KID n_subsets must be at least 1, got {n_subsets}")
    if m == len(f1) == len(f2):
        return _mmd2_unbiased(f1, f2), 0.0  # every subset is the whole set
    rng = np.random.default_rng(seed)
    values = [_mmd2_unbiased(f1[rng.choice(len(f1), m, replace=False)],
                             f2[rng.choice(len(f2), m, replace=False)]) for _ in range(n_subsets)]
    return float(np.mean(values)), float(np.std(values))
