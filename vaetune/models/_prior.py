"""A latent prior fitted after training: a Gaussian mixture on the posterior means of the data.

A VAE's aggregate posterior rarely fills N(0, I): regions the encoder never uses decode to
blurs or nonsense, which is much of why samples look worse than reconstructions. Ghosh et al.
(2020, "From variational to deterministic autoencoders") fit a density to the encodings of the
training images after training ("ex-post density estimation") and sample z from it instead;
here a scikit-learn ``GaussianMixture`` on the posterior means.

:class:`LatentMixture` holds the fitted mixture as plain tensors, samples with a
``torch.Generator`` and travels inside a checkpoint as a dict of tensors, strings and ints
(``torch.load(weights_only=True)`` reads it back). :func:`fit_model_prior` fits one to a VAE,
encoding only the images the fit uses; training does so at each FID evaluation and checkpoint
(``train.prior``, vaetune.train.LatentPrior).

Defaults (``train.prior_components`` and ``train.prior_covariance``, owned by the train section;
benchmarks/bench_prior.py, one thread, a shared 2-core machine at load 9-25): a
diagonal mixture of 10 components on at most 5,000 means fitted in 0.02-0.6 s at load ~10
(up to 1.5 s at load ~25) for N = 1,000-50,000 and D = 8-256. On held-out synthetic codes (whose
dimensions are correlated by construction, which favours shared covariances) a tied mixture
fitted best but took 1.4-7 s at D >= 128; a full one on 2,000 means fitted worse than the
diagonal one (too many parameters for the points) and on 10,000 means took 6-40 s at D >= 32.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import get_args

import numpy as np
import torch

from vaetune.models._config import PriorCovariance, TrainConfig

log = logging.getLogger(__name__)

Covariance = PriorCovariance
COVARIANCES: tuple[str, ...] = get_args(PriorCovariance)
# the train section owns the defaults (train.prior_components, train.prior_covariance); why these: above
_DEFAULTS = TrainConfig.model_fields
PRIOR_COMPONENTS: int = _DEFAULTS["prior_components"].default  # Ghosh et al.'s 10
PRIOR_COVARIANCE: Covariance = _DEFAULTS["prior_covariance"].default  # diag: full costs O(D^2) a point
PRIOR_MAX_POINTS = 5_000  # 10,000 fitted ~2x slower for +0.04-0.4 nats/point held out
REG_COVAR = 1e-6  # added to every variance (scikit-learn's default): collapsed dimensions stay invertible
STATE_VERSION = 1


@dataclass(frozen=True, eq=False)
class LatentMixture:
    """A Gaussian mixture over z, as plain CPU float64 tensors (converted on construction).

    ``scale`` depends on ``covariance``: "full" (K, D, D) lower Cholesky factors of the
    components' covariances; "tied" (D, D) one lower Cholesky factor shared by all; "diag"
    (K, D) standard deviations; "spherical" (K,) one standard deviation per component.
    """

    weights: torch.Tensor  # (K,) sums to 1
    means: torch.Tensor  # (K, D)
    scale: torch.Tensor  # see the class docstring
    covariance: str

    def __post_init__(self) -> None:
        for name in ("weights", "means", "scale"):  # frozen: set through object
            object.__setattr__(self, name, torch.as_tensor(getattr(self, name)).detach().to("cpu", torch.float64))
        if self.covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {', '.join(COVARIANCES)}, got {self.covariance!r}")
        if self.means.ndim != 2 or self.weights.shape != (len(self.means),):
            raise ValueError(f"weights (K,) and means (K, D) disagree: {tuple(self.weights.shape)} and "
                             f"{tuple(self.means.shape)}")
        k, d = self.means.shape
        expected = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[self.covariance]
        if tuple(self.scale.shape) != expected:
            raise ValueError(f"a {self.covariance} mixture of {k} components in {d} dimensions needs scale of "
                             f"shape {expected}, got {tuple(self.scale.shape)}")
        if k < 1 or not (self.weights >= 0).all() or not self.weights.sum() > 0:
            raise ValueError(f"mixture weights must be non-negative with a positive sum, got {self.weights.tolist()}")

    @property
    def components(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latent codes (n, D) float32 on the CPU; a seeded CPU generator gives the same codes."""
        if n < 1:
            return torch.empty(0, self.dim)
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype)  # (n, D)
        z = self.means[comp]  # (n, D)
        if self.covariance == "full":
            for k in comp.unique().tolist():  # per component: a gathered (n, D, D) could be GBs
                rows = comp == k
                z[rows] += eps[rows] @ self.scale[k].T  # (n_k, D)
        elif self.covariance == "tied":
            z += eps @ self.scale.T  # (n, D)
        elif self.covariance == "diag":
            z += eps * self.scale[comp]  # (n, D)
        else:
            z += eps * self.scale[comp, None]  # (n, D)
        return z.float()

    def to_state(self) -> dict[str, torch.Tensor | str | int]:
        """The mixture as a dict that ``torch.save`` writes and ``torch.load(weights_only=True)`` reads."""
        return {"weights": self.weights, "means": self.means, "scale": self.scale,
                "covariance": self.covariance, "version": STATE_VERSION}

    @classmethod
    def from_state(cls, state: dict) -> LatentMixture:
        """The mixture of :meth:`to_state`'s dict (checked; tensors on the CPU as float64)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"latent prior state version {state.get('version')!r}; this vaetune reads "
                             f"version {STATE_VERSION}")
        missing = {"weights", "means", "scale", "covariance"} - set(state)
        if missing:
            raise ValueError(f"latent prior state lacks {', '.join(sorted(missing))}")
        return cls(weights=state["weights"], means=state["means"], scale=state["scale"],
                   covariance=str(state["covariance"]))


def encode_means(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None, *,
                 device: str | torch.device, batch_size: int = 256) -> torch.Tensor:
    """Posterior means (N, D) float32 on the CPU of uint8 images (N, C, H, W), in eval mode.

    Args:
        model: a VAE (``encode(x, y) -> (mu, logvar)``, ``num_classes``) on ``device``.
        images: uint8 (N, C, H, W); each batch becomes float in [0, 1] on the device.
        labels: int labels (N,), needed when the model is conditional, ignored otherwise.
        device: where the model runs.
        batch_size: images per forward pass.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} of shape {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    conditional = bool(getattr(model, "num_classes", 0))
    if conditional and (labels is None or len(labels) != len(images)):
        raise ValueError(f"the model is conditional: give labels (N,) for the {len(images)} images")
    was_training = model.training
    model.eval()  # BatchNorm with running statistics; the same means whatever the batch
    parts = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = images[start : start + batch_size].to(device, non_blocking=True).float().div_(255)  # (B, C, H, W)
                y = labels[start : start + batch_size].to(device) if conditional else None
                mu, _ = model.encode(x, y)  # (B, D)
                parts.append(mu.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, model.latent_dim)


def fit_prior(means: torch.Tensor | np.ndarray, *, components: int = PRIOR_COMPONENTS,
              covariance: Covariance = PRIOR_COVARIANCE, seed: int = 0,
              max_points: int | None = PRIOR_MAX_POINTS, reg_covar: float = REG_COVAR) -> LatentMixture:
    """A Gaussian mixture fitted to latent codes, deterministic for a seed.

    Fallback: when scikit-learn cannot fit (a covariance that stays singular even with
    ``reg_covar``, e.g. collinear dimensions of huge scale) or returns non-finite parameters, the
    prior is one diagonal Gaussian with the points' mean and per-dimension variance plus
    ``reg_covar``. That always exists, is what a trial's N(0, I) prior aims at in the first
    place, and keeps the trial running; a warning says so. Fewer points than ``components``
    and dimensions with zero variance need no fallback: the components are capped by the
    number of points and ``reg_covar`` keeps every variance positive.

    Args:
        means: posterior means (N, D), N >= 1, all finite (see :func:`encode_means`).
        components: mixture components K; at most N are used.
        covariance: "full", "diag", "spherical" or "tied" (scikit-learn's covariance types).
        seed: seeds the subsample and the mixture's initialisation.
        max_points: fit on a seeded random subset of this many points when N is larger; None: all.
        reg_covar: added to the diagonal of every covariance.
    """
    x = (means.detach().cpu().double().numpy() if isinstance(means, torch.Tensor)
         else np.asarray(means, dtype=np.float64))
    _check_fit_args(x, components, covariance, max_points, reg_covar)
    keep = fitted_subset(len(x), max_points, seed)
    if keep is not None:
        x = x[keep]  # (max_points, D)
    k = min(components, len(x))
    try:
        mixture = _fit(x, k, covariance, seed, reg_covar)
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.warning("latent prior: the %s mixture of %d components did not fit %d points (%s); "
                    "using one diagonal Gaussian", covariance, k, len(x), exc)
        return _moment_matched(x, reg_covar)
    return mixture


def fitted_subset(n: int, max_points: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of the seeded random subset of n codes :func:`fit_prior` fits (None: all)."""
    if max_points is None or n <= max_points:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def fit_model_prior(model: torch.nn.Module, images: torch.Tensor,
                    labels: torch.Tensor | None = None, *, device: str | torch.device,
                    components: int = PRIOR_COMPONENTS, covariance: Covariance = PRIOR_COVARIANCE,
                    seed: int = 0, max_points: int | None = PRIOR_MAX_POINTS,
                    batch_size: int = 256) -> LatentMixture:
    """The prior of a VAE: ``fit_prior(encode_means(model, images, labels), ...)``, encoding only
    the images that fit uses (the same seeded subset), so its cost is bounded by ``max_points``
    whatever the data set's size.

    Args:
        model: a VAE on ``device`` (see :func:`encode_means`).
        images: uint8 (N, C, H, W), e.g. the training split.
        labels: int labels (N,), needed when the model is conditional.
        device: where the model runs.
        components, covariance, seed, max_points: as :func:`fit_prior`'s.
        batch_size: images per forward pass.
    """
    keep = fitted_subset(len(images), max_points, seed)
    if keep is not None:
        index = torch.from_numpy(keep)
        images, labels = images[index], None if labels is None else labels[index]
    means = encode_means(model, images, labels, device=device, batch_size=batch_size)  # (n, D)
    return fit_prior(means, components=components, covariance=covariance, seed=seed,
                     max_points=None)


def _check_fit_args(x: np.ndarray, components: int, covariance: str, max_points: int | None,
                    reg_covar: float) -> None:
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"fit_prior needs latent codes (N, D) with N, D >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("fit_prior: the latent codes contain NaN or infinite values")
    if components < 1:
        raise ValueError(f"fit_prior: components must be at least 1, got {components}")
    if covariance not in COVARIANCES:
        raise ValueError(f"fit_prior: covariance must be one of {', '.join(COVARIANCES)}, got {covariance!r}")
    if max_points is not None and max_points < 1:
        raise ValueError(f"fit_prior: max_points must be at least 1 (or None for all), got {max_points}")
    if not reg_covar >= 0:
        raise ValueError(f"fit_prior: reg_covar must be >= 0, got {reg_covar}")


def _fit(x: np.ndarray, k: int, covariance: str, seed: int, reg_covar: float) -> LatentMixture:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    gm = GaussianMixture(k, covariance_type=covariance, reg_covar=reg_covar, random_state=seed)
    # BLAS and OpenMP threads within the trial's torch budget: on cores shared by several trials,
    # more threads than that made the same fit 10-20x slower (measured, benchmarks/bench_prior.py).
    with threadpool_limits(limits=torch.get_num_threads()), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)  # duplicates, max_iter: worth a log line, no more
        gm.fit(x)
    for w in caught:
        log.info("latent prior: %s", w.message)
    cov = gm.covariances_
    if covariance in ("full", "tied"):
        scale = np.linalg.cholesky(cov)  # (K, D, D) or (D, D), lower
    else:
        scale = np.sqrt(cov)  # (K, D) or (K,)
    params = (gm.weights_, gm.means_, scale)
    if not all(np.isfinite(p).all() for p in params):
        raise ValueError("non-finite mixture parameters")
    weights, mu, scale = (torch.from_numpy(np.ascontiguousarray(p, dtype=np.float64)) for p in params)
    return LatentMixture(weights=weights, means=mu, scale=scale, covariance=covariance)


def _moment_matched(x: np.ndarray, reg_covar: float) -> LatentMixture:
    """One diagonal Gaussian with the points' mean and variance (+ reg_covar): always defined."""
    mu = torch.from_numpy(x.mean(axis=0, keepdims=True))  # (1, D)
    std = torch.from_numpy(np.sqrt(x.var(axis=0, keepdims=True) + max(reg_covar, 1e-12)))  # (1, D)
    return LatentMixture(weights=torch.ones(1, dtype=torch.float64), means=mu, scale=std, covariance="diag")
