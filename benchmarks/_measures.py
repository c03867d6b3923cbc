"""Measures of a trained model's samples, as a rung would take them and as the final judge does.

A rung measures N samples (from N(0, I), or from the latent mixture fitted to the model's
training codes) against the first N validation images: FID or KID. This module draws the largest
N once per sampler, and the smaller N are the first N of them (the same as drawing N from the
same seeded generator), so the candidate measures of one checkpoint cost one decode and one pass
through Inception per sampler; the seconds each candidate would cost a trial are its N times the
measured seconds an image, plus the mixture's fit for the mixture's samples.

The judge is the benchmarks' one evaluator (_evaluator.py): held-out sample FID of the test split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SEED = 0  # the seed a trial's evaluation draws its samples with (train.seed's default)
MEASURES = ("fid", "kid")
SAMPLERS = ("normal", "gmm")  # z ~ N(0, I); z from the fitted mixture


@dataclass
class Loaded:
    model: object
    config: object
    mixture: object  # LatentMixture or None
    fit_s: float  # seconds to fit the mixture again (a rung fits it)


def load(checkpoint: Path, data) -> Loaded:
    """A checkpoint's model and its mixture; the mixture's fit is timed again on `data`'s train split."""
    from vaetune.checkpoint import load_model, load_prior
    from vaetune.models import fit_model_prior

    model, config, state = load_model(checkpoint)
    mixture = load_prior(state, checkpoint, model.latent_dim)
    t0 = time.perf_counter()
    tc = config.train
    fit_model_prior(model, data.subset("train")[0], None, device="cpu", components=tc.prior_components,
                    covariance=tc.prior_covariance, seed=tc.seed)
    return Loaded(model, config, mixture, time.perf_counter() - t0)


def sample_features(extractor, loaded: Loaded, sampler: str, n: int) -> tuple[object, float]:
    """Inception features of n samples (seeded, quantised as a trial's are) and seconds an image."""
    import torch

    from vaetune.metrics import quantize

    prior = loaded.mixture if sampler == "gmm" else None
    generator = torch.Generator().manual_seed(SAMPLE_SEED)
    t0 = time.perf_counter()
    with torch.inference_mode():
        chunks = (quantize(loaded.model.sample(min(extractor.batch_size, n - i), None, generator=generator,
                                               prior=prior))
                  for i in range(0, n, extractor.batch_size))
        features = extractor.stream(chunks)
    return features, (time.perf_counter() - t0) / n


def rung_measures(extractor, loaded: Loaded, reference, sizes: tuple[int, ...]) -> list[dict]:
    """Every candidate measure of one checkpoint: (measure, sampler, n, value, seconds) records;
    `reference` holds the features of the first max(sizes) validation images."""
    from vaetune.metrics import fid_from_features, kid

    out = []
    for sampler in SAMPLERS:
        if sampler == "gmm" and loaded.mixture is None:
            continue
        features, per_image = sample_features(extractor, loaded, sampler, max(sizes))
        for n in sizes:
            fixed = loaded.fit_s if sampler == "gmm" else 0.0
            for measure in MEASURES:
                t0 = time.perf_counter()
                if measure == "fid":
                    value = fid_from_features(features[:n], reference[:n])
                else:
                    value = kid(features[:n], reference[:n], seed=SAMPLE_SEED)[0]
                stats_s = time.perf_counter() - t0
                out.append({"measure": measure, "sampler": sampler, "n": n, "value": value,
                            "seconds": n * per_image + fixed + stats_s})
    return out
