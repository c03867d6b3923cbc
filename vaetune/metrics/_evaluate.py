"""FID/KID of a VAE inside a trial: samples from the prior and reconstructions vs real images.

Per evaluation: the reference statistics come from the on-disk cache (computed by the first
trial that needs them); N samples are drawn in batches and N reference images are reconstructed
in batches, each batch quantised to uint8 (as saving a PNG would) and fed straight to Inception;
nothing generated is written to disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaetune.metrics._features import FeatureExtractor, batches, quantize
from vaetune.metrics._reference import ReferenceStats, reference_key, reference_stats
from vaetune.metrics._stats import (
    FDMethod,
    frechet_distance,
    frechet_distance_lowrank,
    kid,
    resolve_method,
    statistics,
)

log = logging.getLogger(__name__)


def _reference(data: Any, split: str, n_max: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The first min(n_max, size) images of ``split``, their primary labels and split indices."""
    images, labels = data.subset(split)
    if len(images) < 2:
        raise ValueError(f"FID reference split {split!r} has {len(images)} images; it needs at least 2 "
                         f"(give it a share in data.split, or set train.fid_reference to another split)")
    n = min(n_max, len(images))
    indices = data.splits.get(split) if hasattr(data, "splits") else None
    return images[:n], None if labels is None else labels[:n], indices


def _sample_labels(model: torch.nn.Module, labels: torch.Tensor | None, n: int, seed: int) -> torch.Tensor | None:
    """Labels for a conditional model's samples: the reference labels in a seeded random order."""
    if not getattr(model, "num_classes", 0):
        return None
    if labels is None:
        raise ValueError("the model is conditional but the reference images have no labels")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return labels[order][:n].to(torch.int64)


def _samples(model, n: int, y: torch.Tensor | None, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)  # CPU generator: the same samples on any device
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        yb = None if y is None else y[start : start + b]
        yield quantize(model.sample(b, y=yb, generator=gen))


def _reconstructions(model, images: torch.Tensor, labels: torch.Tensor | None, device: torch.device,
                     batch_size: int) -> Iterator[torch.Tensor]:
    for start, x in zip(range(0, len(images), batch_size), batches(images, batch_size), strict=True):
        x = x.to(device, non_blocking=True).float().div_(255)
        y = None if labels is None else labels[start : start + len(x)].to(device)
        yield quantize(model(x, y).recon)


def evaluate_generative(model: torch.nn.Module, data: Any, cfg: Any, device: str | torch.device, *,
                        cache_dir: str | Path, background: tuple[int, int, int] = (255, 255, 255),
                        batch_size: int | None = None, method: FDMethod = "auto") -> dict[str, float | int]:
    """FID of samples and of reconstructions, and KID of samples, against real images.

    Args:
        model: a VAE (``sample(n, y, generator)``, ``forward(x, y).recon``, ``num_classes``) on ``device``.
        data: a ``vaetune.data.ImageData``; the reference is the first ``cfg.fid_samples``
            images of split ``cfg.fid_reference``.
        cfg: the ``TrainConfig`` (fid_samples, fid_reference, seed).
        device: where the model and Inception run.
        cache_dir: folder of the reference statistics cache (``<cache_dir>/fid/<key>.npz``).
        background: RGB that RGBA images are composited on before Inception.
        batch_size: images per Inception batch; None: 200 on CUDA, 50 on CPU.
        method: Frechet distance computation, see :func:`vaetune.metrics.fid_from_features`.

    Returns:
        ``eval/fid_sample``, ``eval/fid_recon``, ``eval/kid_sample``, ``eval/kid_sample_std``
        and ``eval/fid_n`` (the N of real and of generated images).
    """
    t0 = time.perf_counter()
    extractor = FeatureExtractor(device, batch_size=batch_size, background=background)
    images, labels, indices = _reference(data, cfg.fid_reference, cfg.fid_samples)
    n = len(images)
    key = reference_key(data.fingerprint, cfg.fid_reference, indices, n, background)
    ref = reference_stats(images, key=key, cache_dir=cache_dir, extractor=extractor,
                          meta={"fingerprint": data.fingerprint, "split": cfg.fid_reference})
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            y = _sample_labels(model, labels, n, cfg.seed)
            f_sample = extractor.stream(_samples(model, n, y, extractor.batch_size, cfg.seed))
            recon_labels = labels if getattr(model, "num_classes", 0) else None
            f_recon = extractor.stream(_reconstructions(model, images, recon_labels, extractor.device,
                                                        extractor.batch_size))
    finally:
        model.train(was_training)
    out = _metrics(ref, f_sample, f_recon, method, cfg.seed)
    log.info("FID/KID on %d images in %.1fs (reference %s): %s", n, time.perf_counter() - t0,
             "cached" if ref.cached else "computed", out)
    return out


def _fid(features: np.ndarray, ref: ReferenceStats, method: FDMethod) -> float:
    if resolve_method(method, len(features), ref.n, features.shape[1]) == "lowrank":
        return frechet_distance_lowrank(features, ref.features)
    return frechet_distance(*statistics(features), ref.mu, ref.sigma)  # the cached statistics


def _metrics(ref: ReferenceStats, sample: np.ndarray, recon: np.ndarray, method: FDMethod,
             seed: int) -> dict[str, float | int]:
    kid_mean, kid_std = kid(sample, ref.features, seed=seed)
    return {
        "eval/fid_sample": _fid(sample, ref, method),
        "eval/fid_recon": _fid(recon, ref, method),
        "eval/kid_sample": kid_mean,
        "eval/kid_sample_std": kid_std,
        "eval/fid_n": ref.n,
    }
