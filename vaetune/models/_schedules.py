"""Schedules of the KL weight, the KL capacity and the learning rate, plus the optimizer.

Every schedule is a pure function of the ``train`` config and the fractional epoch
``epoch + step / steps_per_epoch`` (0-based: 0.0 is the start of training, ``cfg.epochs`` its
end), so a resumed run continues exactly where it stopped. The training loop sets the learning
rate itself every step: ``set_lr(opt, cfg.lr * lr_factor(cfg, progress))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from vaetune.models._config import TrainConfig

__all__ = ["beta_at", "capacity_at", "lr_factor", "make_optimizer", "set_lr"]


def _ramp(x: float, length: float) -> float:
    """0 -> 1 linearly over [0, length], then 1; a zero length is already at 1."""
    return 1.0 if length <= 0 else min(x / length, 1.0)


def _beta_cyclical(cfg: TrainConfig, epoch: float) -> float:
    # Fu et al. 2019: M cycles over training; each ramps 0 -> beta over its first R fraction.
    if epoch >= cfg.epochs:
        return cfg.beta  # past the end (e.g. a final validation): the plateau value
    t = epoch * cfg.cycles / cfg.epochs  # cycles completed, fractional
    tau = t - math.floor(t)  # position within the current cycle, [0, 1)
    return cfg.beta * _ramp(tau, cfg.cycle_ratio)


_BETA: dict[str, Callable[[TrainConfig, float], float]] = {
    "constant": lambda cfg, epoch: cfg.beta,
    "linear": lambda cfg, epoch: cfg.beta * _ramp(epoch, cfg.warmup_epochs),
    "cyclical": _beta_cyclical,
}


def _check_epoch(epoch: float) -> None:
    if epoch < 0:
        raise ValueError(f"epoch (fractional progress) cannot be negative but got {epoch}")


def beta_at(cfg: TrainConfig, epoch: float) -> float:
    """KL weight at fractional epoch ``epoch`` under ``cfg.beta_schedule``."""
    _check_epoch(epoch)
    return float(_BETA[cfg.beta_schedule](cfg, epoch))


def capacity_at(cfg: TrainConfig, epoch: float) -> float | None:
    """Target KL C in nats (Burgess et al. 2018): 0 -> capacity_max linearly over capacity_epochs,
    then constant. None unless ``cfg.objective == "capacity"`` (vaetune.models)."""
    _check_epoch(epoch)
    if cfg.objective != "capacity":
        return None
    return cfg.capacity_max * _ramp(epoch, cfg.capacity_epochs)


def lr_factor(cfg: TrainConfig, epoch: float) -> float:
    """Multiplier of ``cfg.lr`` at fractional epoch ``epoch``.

    Note the warm-up starts at 0: a loop that evaluates it at the start of each step gives the
    very first step lr 0; evaluating at the step's end (``epoch + (step + 1) / steps``) avoids it.
    """
    _check_epoch(epoch)
    # 1) linear warm-up for lr_warmup_epochs (both schedules)
    if epoch < cfg.lr_warmup_epochs:
        return epoch / cfg.lr_warmup_epochs
    if cfg.lr_schedule == "constant":
        return 1.0
    # 2) cosine: after the end of training, 0
    if epoch >= cfg.epochs:
        return 0.0
    # 3) in between, cosine decay from 1 to 0
    progress = (epoch - cfg.lr_warmup_epochs) / (cfg.epochs - cfg.lr_warmup_epochs)  # [0, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with ``cfg.lr`` and ``cfg.weight_decay``.

    As in nanoGPT, weight decay applies only to weight matrices and conv kernels (dim >= 2);
    biases and normalisation scales are not decayed. Group 0 is decayed, group 1 is not.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)
