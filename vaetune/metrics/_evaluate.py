"""FID/KID of a VAE inside a trial: samples from the prior and reconstructions vs real images.

Per evaluation: the reference statistics come from the on-disk cache (computed by the first
trial that needs them); N samples are drawn in batches and N reference images are reconstructed
in batches, each batch quantised to uint8 (as saving a PNG would) and fed straight to Inception;
nothing generated is written to disk. The samples' features also give precision and recall
against the reference features; with a fitted latent prior (vaetune.models), N more samples
decoded from it get the same measures under the ``_gmm`` names. An evaluation may decode only
some of these image sets (``sets``: at ASHA's rungs a trial measures only what ranks it); what
a set left out would have measured is then absent, never carried from another evaluation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaetune.metrics._features import FeatureExtractor, batches, quantize
from vaetune.metrics._precision_recall import PR_K, precision_recall
from vaetune.metrics._reference import ReferenceStats, reference_key, reference_stats
from vaetune.metrics._stats import (
    FDMethod,
    frechet_distance,
    frechet_distance_lowrank,
    kid,
    resolve_method,
    statistics,
)
from vaetune.metrics.registry import (
    FID_N,
    FID_RECON,
    FID_SAMPLE,
    IMAGE_SETS,
    KID_SAMPLE,
    KID_SAMPLE_STD,
    PR_KEYS,
    SAMPLE_KEYS,
    ImageSet,
    of_sampler,
)
from vaetune.samplers import GMM, NORMAL

if TYPE_CHECKING:
    from vaetune.models import LatentMixture

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


def _samples(model, n: int, y: torch.Tensor | None, batch_size: int, seed: int,
             prior: LatentMixture | None = None) -> Iterator[torch.Tensor]:
    """n samples in batches, z from N(0, I) (``model.sample``) or from ``prior``, quantised."""
    gen = torch.Generator().manual_seed(seed)  # CPU generator: the same samples on any device
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        yb = None if y is None else y[start : start + b]
        yield quantize(model.sample(b, y=yb, generator=gen, prior=prior))


def _reconstructions(model, images: torch.Tensor, labels: torch.Tensor | None, device: torch.device,
                     batch_size: int) -> Iterator[torch.Tensor]:
    for start, x in zip(range(0, len(images), batch_size), batches(images, batch_size), strict=True):
        x = x.to(device, non_blocking=True).float().div_(255)
        y = None if labels is None else labels[start : start + len(x)].to(device)
        yield quantize(model(x, y).recon)


def evaluate_generative(model: torch.nn.Module, data: Any, cfg: Any, device: str | torch.device, *,
                        cache_dir: str | Path, background: tuple[int, int, int] = (255, 255, 255),
                        batch_size: int | None = None, method: FDMethod = "auto", pr_k: int = PR_K,
                        prior: LatentMixture | None = None,
                        sets: Collection[ImageSet] = IMAGE_SETS) -> dict[str, float | int]:
    """FID of samples and of reconstructions, KID, precision and recall of samples, against real images.

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
        pr_k: neighbourhood size of precision and recall (:func:`vaetune.metrics.precision_recall`).
        prior: a fitted latent prior (:func:`vaetune.models.fit_prior`); when given, N more
            samples are decoded from z drawn from it (seeded, labelled as the N(0, I) samples are).
        sets: the image sets to decode and measure (``registry.IMAGE_SETS``): ``normal`` (from
            N(0, I)), ``recon`` (the reference images reconstructed), ``gmm`` (from ``prior``,
            if given); a set left out costs nothing and its measures are not in the result.

    Returns:
        ``eval/fid_n`` (the N of real and of generated images) and, by set: ``normal``:
        ``eval/fid_sample``, ``eval/kid_sample``, ``eval/kid_sample_std``, ``eval/precision``,
        ``eval/recall``; ``recon``: ``eval/fid_recon``; ``gmm`` (with ``prior``):
        ``eval/fid_sample_gmm``, ``eval/kid_sample_gmm``, ``eval/precision_gmm`` and
        ``eval/recall_gmm``. Precision and recall are NaN (with a warning) when N <= pr_k, too few
        images for k-NN manifolds.
    """
    if pr_k < 1:
        raise ValueError(f"pr_k must be at least 1, got {pr_k}")
    if prior is not None and prior.dim != model.latent_dim:
        raise ValueError(f"the latent prior has {prior.dim} dimensions, the model's latent {model.latent_dim}")
    t0 = time.perf_counter()
    extractor = FeatureExtractor(device, batch_size=batch_size, background=background)
    images, labels, indices = _reference(data, cfg.fid_reference, cfg.fid_samples)
    n = len(images)
    key = reference_key(data.fingerprint, cfg.fid_reference, indices, n, background)
    ref = reference_stats(images, key=key, cache_dir=cache_dir, extractor=extractor,
                          meta={"fingerprint": data.fingerprint, "split": cfg.fid_reference})
    unknown = set(sets) - set(IMAGE_SETS)
    if unknown:
        raise ValueError(f"sets: got {sorted(unknown)}; accepted: {', '.join(IMAGE_SETS)}")
    was_training = model.training
    model.eval()
    out: dict[str, float | int] = {FID_N: ref.n}
    try:
        with torch.inference_mode():
            y = _sample_labels(model, labels, n, cfg.seed)
            if NORMAL.name in sets:
                f_sample = extractor.stream(_samples(model, n, y, extractor.batch_size, cfg.seed))
                out.update(_sample_metrics(ref, f_sample, method, cfg.seed, pr_k))
            if GMM.name in sets and prior is not None:
                f_gmm = extractor.stream(_samples(model, n, y, extractor.batch_size, cfg.seed, prior))
                gmm = _sample_metrics(ref, f_gmm, method, cfg.seed, pr_k)
                out.update({of_sampler(k, GMM): gmm[k] for k in SAMPLE_KEYS})
            if "recon" in sets:
                recon_labels = labels if getattr(model, "num_classes", 0) else None
                f_recon = extractor.stream(_reconstructions(model, images, recon_labels, extractor.device,
                                                            extractor.batch_size))
                out[FID_RECON] = _fid(f_recon, ref, method)
    finally:
        model.train(was_training)
    log.info("FID/KID of %s on %d images in %.1fs (reference %s): %s", "+".join(sorted(sets)), n,
             time.perf_counter() - t0, "cached" if ref.cached else "computed", out)
    return out


def _fid(features: np.ndarray, ref: ReferenceStats, method: FDMethod) -> float:
    if resolve_method(method, len(features), ref.n, features.shape[1]) == "lowrank":
        return frechet_distance_lowrank(features, ref.features)
    return frechet_distance(*statistics(features), ref.mu, ref.sigma)  # the cached statistics


def _precision_recall(ref: ReferenceStats, sample: np.ndarray, k: int) -> tuple[float, float]:
    """Precision and recall of samples against the reference; NaN when N is too small for k."""
    if min(len(sample), ref.n) <= k:
        log.warning("precision/recall need more than k=%d images per set, have %d; reported as NaN",
                    k, min(len(sample), ref.n))
        return float("nan"), float("nan")
    return precision_recall(ref.features, sample, k=k)


def _sample_metrics(ref: ReferenceStats, sample: np.ndarray, method: FDMethod, seed: int,
                    pr_k: int) -> dict[str, float]:
    """The measures of a set of samples (registry.SAMPLE_KEYS), with KID's spread over subsets."""
    kid_mean, kid_std = kid(sample, ref.features, seed=seed)
    return {FID_SAMPLE: _fid(sample, ref, method), KID_SAMPLE: kid_mean,
            **dict(zip(PR_KEYS, _precision_recall(ref, sample, pr_k), strict=True)),
            KID_SAMPLE_STD: kid_std}

