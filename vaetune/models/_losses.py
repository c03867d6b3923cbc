"""The terms every VAE objective is built from: reconstruction error and KL, per image, computed
from the record every model's forward returns (`VAEOutput`).

The objectives themselves (ELBO, capacity, ...) are in _objectives.py.

Units: KL is in nats per image (summed over latent dimensions). The reconstruction term is per
image too: with reduction "sum" it is summed over the C*H*W pixel values (for BCE this is the
negative Bernoulli log-likelihood in nats, so recon + KL is the negative ELBO); with "mean" it is
averaged over them, which makes it independent of the image size but puts it on a different
scale than the KL (a smaller effective beta is then needed). "calibrated" is the σ-VAE's Gaussian
(Rybkin et al. 2021, "Simple and Effective VAE Training with Calibrated Decoders"): one decoder
variance shared by every pixel of the batch, set to its optimum, the batch's mean squared error,
so that the term is a Gaussian negative log-likelihood in nats and β = 1 is the ELBO on any
collection and image size (a summed squared error is the same Gaussian with σ² fixed at ½, which
is why its good β moves with the images). Everything is computed in float32, also under bf16
autocast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from vaetune.errors import Failure

__all__ = ["RECON_LOSSES", "ReconLoss", "DivergedError", "LossTerms", "VAEOutput", "check_finite", "kl_per_dim", "recon_loss"]


@dataclass
class VAEOutput:
    """What every model's forward returns (vaetune.models._base.VAE), and the terms are computed from."""

    recon: torch.Tensor  # (B, C, H, W) in [0, 1], sigmoid(logits)
    logits: torch.Tensor  # (B, C, H, W), for a BCE-with-logits reconstruction loss
    mu: torch.Tensor  # (B, D) posterior mean
    logvar: torch.Tensor  # (B, D) posterior log-variance, clamped
    z: torch.Tensor  # (B, D) reparameterised sample in train mode, mu in eval mode


@dataclass
class LossTerms:
    loss: torch.Tensor  # scalar to back-propagate
    recon: torch.Tensor  # scalar, batch mean of the per-image reconstruction term (unweighted)
    kl: torch.Tensor  # scalar, batch mean of the true KL in nats (no free bits, no capacity)


# Pixel-wise reconstruction errors (B, C, H, W): MSE compares probabilities, BCE uses the logits
# for numerical stability.
_PIXEL_LOSSES = {
    "mse": lambda out, x: (out.recon.float() - x) ** 2,
    "bce": lambda out, x: F.binary_cross_entropy_with_logits(out.logits.float(), x, reduction="none"),
}
_REDUCTIONS = {"sum": torch.sum, "mean": torch.mean}
# the calibrated Gaussian's σ² never goes below this (log σ >= -6, the σ-VAE's own floor): a batch
# reconstructed almost exactly would otherwise weigh its last errors without bound
MIN_VARIANCE = math.exp(-12.0)


def _calibrated(out: VAEOutput, x: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood of each pixel value (B, C, H, W), in nats, with one variance
    for the batch at its optimum: σ² = the batch's mean squared error (held constant in the
    gradient, which at the optimum has no component through σ anyway)."""
    sq = (out.recon.float() - x) ** 2  # (B, C, H, W)
    var = sq.detach().mean().clamp(min=MIN_VARIANCE)
    return sq / (2 * var) + 0.5 * torch.log(2 * math.pi * var)


# train.recon_loss: the pixel losses above, and the calibrated Gaussian
ReconLoss = Literal["mse", "bce", "calibrated"]
RECON_LOSSES: tuple[str, ...] = get_args(ReconLoss)


def recon_loss(out: VAEOutput, x: torch.Tensor, kind: str = "mse", reduction: str = "sum") -> torch.Tensor:
    """Reconstruction error per image, (B,).

    Args:
        out: the model's output for x.
        x: target images (B, C, H, W) in [0, 1].
        kind: "mse" (squared error of out.recon), "bce" (binary cross-entropy of out.logits) or
            "calibrated" (the Gaussian negative log-likelihood of out.recon with the batch's
            optimal shared variance: each image's value depends on the whole batch).
        reduction: "sum" or "mean" over the C*H*W values of each image.
    """
    if kind not in RECON_LOSSES:
        raise ValueError(f"recon_loss kind: got {kind!r}; accepted: {', '.join(RECON_LOSSES)}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"recon_loss reduction: got {reduction!r}; accepted: {', '.join(_REDUCTIONS)}")
    err = _calibrated(out, x.float()) if kind == "calibrated" else _PIXEL_LOSSES[kind](out, x.float())  # (B, C, H, W)
    return _REDUCTIONS[reduction](err.flatten(1), dim=1)  # (B,)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent dimension, in nats: (B, D)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, D)


class DivergedError(Failure, RuntimeError):
    """The loss became NaN or infinite; the message says where and what to change."""

    def __init__(self, epoch: int, step: int, value: float = math.nan, **context: float):
        self.epoch, self.step, self.value, self.context = epoch, step, value, context
        where = f"loss became {value} at epoch {epoch}, step {step}"
        details = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in context.items())
        super().__init__(f"{where}{f' ({details})' if details else ''}: "
                         "lower train.lr or enable train.grad_clip")

    def __reduce__(self):
        # Ray copies and pickles a trial's exception to report it; rebuild from our fields
        return _rebuild_diverged, (self.epoch, self.step, self.value, self.context)


def _rebuild_diverged(epoch: int, step: int, value: float, context: dict) -> DivergedError:
    return DivergedError(epoch, step, value, **context)


def check_finite(loss: torch.Tensor | float, epoch: int, step: int, **context: float) -> None:
    """Raise :class:`DivergedError` if ``loss`` is NaN or infinite.

    ``context`` (e.g. lr=..., beta=...) is shown in the message. On CUDA this synchronises, so
    the training loop may call it every few steps rather than every step.
    """
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if not math.isfinite(value):
        raise DivergedError(epoch, step, value, **context)
