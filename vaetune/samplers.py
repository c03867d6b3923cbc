"""The latent samplers: how z is drawn when a trained VAE makes new images, each with one name.

- ``normal``: z ~ N(0, I), the VAE's own prior.
- ``gmm``: z from the Gaussian mixture fitted to the training images' codes after training
  (``train.prior: gmm``, the default; Ghosh et al. 2020), which a checkpoint carries.

A sample measure of the metric registry (eval/fid_sample, eval/fid_sample_gmm, ...) names the
sampler of its samples, and a search ranks its trials by one of them: that sampler is then the
default of `vaetune sample`, `vaetune export`'s samples, the gallery and the report, so that what
ranked a model is what its user is handed. ``prior``, the name N(0, I) had on the command line
before, is still accepted for ``normal``.

This module imports nothing heavy: the command line checks its options against it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampler:
    name: str
    words: str  # in sentences and captions
    suffix: str  # of the names of its sample measures in the metric registry (eval/fid_sample<suffix>)
    fitted: bool  # draws from a mixture fitted after training, which a checkpoint must hold


NORMAL = Sampler("normal", "N(0, I)", "", fitted=False)
GMM = Sampler("gmm", "the fitted latent mixture", "_gmm", fitted=True)
SAMPLERS: dict[str, Sampler] = {s.name: s for s in (NORMAL, GMM)}
ALIASES = {"prior": NORMAL.name}  # an older name -> the sampler's name


def get(name: str) -> Sampler:
    """The sampler called `name` (an older alias too); ValueError naming the accepted ones otherwise."""
    sampler = SAMPLERS.get(ALIASES.get(name, name))
    if sampler is None:
        raise ValueError(f"got {name!r}; accepted: {', '.join(SAMPLERS)}")
    return sampler


def available(fitted: bool) -> tuple[Sampler, ...]:
    """The samplers a model can use: those that need a fitted mixture only when it has one."""
    return tuple(s for s in SAMPLERS.values() if fitted or not s.fitted)
