"""Real images' FID/KID statistics, computed once per dataset and reused by every trial.

The statistics of N reference images (mean, covariance and the features KID needs) depend on
the dataset (its fingerprint covers source and preprocessing), the split, which N images, the
compositing background and the feature extractor. Their hash names an ``.npz`` under
``<cache_dir>/fid/``; the first trial writes it atomically, every later trial and search reads
it without running Inception on the real images.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaetune.fileio import atomic_write
from vaetune.metrics._features import FeatureExtractor
from vaetune.metrics._stats import statistics

log = logging.getLogger(__name__)

# Bump when anything changes the features of the same images (network, resize, normalisation).
FEATURES_VERSION = "pytorch-fid-InceptionV3-pool3-2048/bilinear299/v1"


@dataclass
class ReferenceStats:
    """FID/KID statistics of N real images."""

    mu: np.ndarray  # (2048,) float64
    sigma: np.ndarray  # (2048, 2048) float64, np.cov as pytorch-fid
    features: np.ndarray  # (N, 2048) float64, for KID and the sample-space Frechet distance
    key: str
    cached: bool  # True when read from disk (no Inception forward on the real images)

    @property
    def n(self) -> int:
        return len(self.features)


def reference_key(fingerprint: str, split: str, indices: torch.Tensor | None, n: int,
                  background: tuple[int, int, int]) -> str:
    """Cache key of the statistics of the first ``n`` images of ``split`` of one dataset."""
    chosen = b"" if indices is None else indices[:n].to(torch.int64).contiguous().numpy().tobytes()
    parts = {"fingerprint": fingerprint, "split": split, "n": n, "background": list(background),
             "indices": hashlib.sha256(chosen).hexdigest(), "features": FEATURES_VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def reference_path(cache_dir: str | Path, key: str) -> Path:
    """Where the statistics of one key live: ``<cache_dir>/fid/<key>.npz``."""
    return Path(cache_dir) / "fid" / f"{key}.npz"


def _read(path: Path, key: str) -> ReferenceStats | None:
    try:
        with np.load(path) as f:
            return ReferenceStats(mu=f["mu"], sigma=f["sigma"], features=f["features"], key=key, cached=True)
    except FileNotFoundError:
        return None
    except Exception as exc:  # truncated by a full disk, older format: recompute and overwrite
        log.warning("FID reference statistics %s unreadable (%s); recomputing", path, exc)
        return None


def _write(path: Path, stats: ReferenceStats, meta: dict) -> None:
    def write(f) -> None:
        np.savez(f, mu=stats.mu, sigma=stats.sigma, features=stats.features, meta=json.dumps(meta))

    atomic_write(path, write)


def reference_stats(images: torch.Tensor, *, key: str, cache_dir: str | Path, extractor: FeatureExtractor,
                    meta: dict | None = None) -> ReferenceStats:
    """Statistics of ``images`` (N, C, H, W) uint8, from ``<cache_dir>/fid/<key>.npz`` when there.

    Args:
        images: the N reference images; read only on a cache miss.
        key: from :func:`reference_key`; the caller vouches that it identifies ``images``.
        cache_dir: usually ``data.cache_dir``.
        extractor: runs Inception on a miss.
        meta: stored beside the arrays for people inspecting the cache.
    """
    path = reference_path(cache_dir, key)
    stats = _read(path, key)
    if stats is not None and stats.n == len(images):
        log.debug("FID reference statistics: cache hit %s", path)
        return stats
    features = extractor.images(images)
    mu, sigma = statistics(features)
    stats = ReferenceStats(mu=mu, sigma=sigma, features=features, key=key, cached=False)
    _write(path, stats, {**(meta or {}), "n": len(features), "features": FEATURES_VERSION})
    log.info("FID reference statistics of %d images written to %s", len(features), path)
    return stats
