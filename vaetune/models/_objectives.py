"""Training objectives, chosen by `train.objective`: one function each, registered once (in
vaetune.models._objective_registry).

An objective maps a batch's model output, the images, the ``train`` config and the fractional
epoch (``epoch + step / steps``, for its schedules) to `LossTerms`: the scalar to minimise plus
the unweighted reconstruction and the true KL, which every objective reports alike. It is
registered with the ``train.*`` options it reads beyond the reconstruction's (recon_loss,
recon_reduction, recon_weight); the report reads them (e.g. whether β is in the loss). See
docs/architecture.md, "Add an objective".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from vaetune.models._losses import LossTerms, VAEOutput, kl_per_dim, recon_loss
from vaetune.models._objective_registry import OBJECTIVES, register_objective
from vaetune.models._schedules import beta_at, capacity_at

if TYPE_CHECKING:
    from vaetune.models._config import TrainConfig

__all__ = ["capacity", "elbo", "objective_loss"]


def objective_loss(out: VAEOutput, x: torch.Tensor, cfg: TrainConfig, epoch: float) -> LossTerms:
    """The loss of ``cfg.objective`` for one batch at fractional epoch ``epoch``."""
    return OBJECTIVES[cfg.objective].loss(out, x, cfg, epoch)


def _recon(out: VAEOutput, x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    return recon_loss(out, x, cfg.recon_loss, cfg.recon_reduction).mean()  # scalar, per image


@register_objective("elbo", keys=("beta", "beta_schedule", "warmup_epochs", "cycles", "cycle_ratio",
                                  "free_bits"))
def elbo(out: VAEOutput, x: torch.Tensor, cfg: TrainConfig, epoch: float) -> LossTerms:
    """``recon_weight * recon + beta * KL'``, β from its schedule (beta_at).

    KL' applies free bits (Kingma et al. 2016): each latent dimension's KL, averaged over the
    batch, is clamped below at ``cfg.free_bits`` nats, so dimensions under the budget get no KL
    gradient. With β = 1, recon_weight = 1 and BCE summed over pixels, this is the negative ELBO.
    """
    recon = _recon(out, x, cfg)
    kl_d = kl_per_dim(out.mu, out.logvar)  # (B, D)
    kl = kl_d.sum(dim=1).mean()  # scalar, true KL per image
    penalised = kl_d.mean(dim=0).clamp(min=cfg.free_bits).sum() if cfg.free_bits > 0 else kl
    loss = cfg.recon_weight * recon + beta_at(cfg, epoch) * penalised
    return LossTerms(loss=loss, recon=recon, kl=kl)


@register_objective("capacity", keys=("capacity_max", "capacity_epochs", "capacity_gamma"))
def capacity(out: VAEOutput, x: torch.Tensor, cfg: TrainConfig, epoch: float) -> LossTerms:
    """Burgess et al. 2018: ``recon_weight * recon + capacity_gamma * |KL - C|``, the target C
    rising from 0 to capacity_max nats over capacity_epochs (capacity_at).
    β and free bits are not used."""
    recon = _recon(out, x, cfg)
    kl = kl_per_dim(out.mu, out.logvar).sum(dim=1).mean()  # scalar, true KL per image
    target = capacity_at(cfg, epoch)
    loss = cfg.recon_weight * recon + cfg.capacity_gamma * (kl - target).abs()
    return LossTerms(loss=loss, recon=recon, kl=kl)
