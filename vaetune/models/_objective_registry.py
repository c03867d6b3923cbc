"""The objective registry: `train.objective`'s names, each with its loss and the options it reads.

Below both of its users: the train section (vaetune.models._config) checks `train.objective`
against it, and the objectives (vaetune.models._objectives) register into it, taking that section
as their config. So a loss's config is typed here as `Any`: it is the `TrainConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from vaetune.models._losses import LossTerms, VAEOutput

__all__ = ["OBJECTIVES", "LossFn", "Objective", "register_objective"]

# (out, x, train config, fractional epoch) -> LossTerms, batch means
LossFn = Callable[[VAEOutput, torch.Tensor, Any, float], LossTerms]


@dataclass(frozen=True)
class Objective:
    loss: LossFn  # (out, x, train config, fractional epoch) -> LossTerms, batch means
    keys: tuple[str, ...]  # train.* options it reads besides the reconstruction's

    @property
    def uses_beta(self) -> bool:
        """Whether the KL weight β (train.beta and its schedule) is in this loss."""
        return "beta" in self.keys


OBJECTIVES: dict[str, Objective] = {}  # train.objective -> its loss and options


def register_objective(name: str, keys: tuple[str, ...] = ()) -> Callable[[LossFn], LossFn]:
    """Function decorator: ``train.objective: name`` trains with the decorated loss.

    Args:
        name: the value of train.objective that selects it.
        keys: the train.* options the loss reads besides recon_loss, recon_reduction, recon_weight.
    """
    def register(fn: LossFn) -> LossFn:
        if name in OBJECTIVES and OBJECTIVES[name].loss is not fn:
            raise ValueError(f"train.objective {name!r} is registered twice")
        OBJECTIVES[name] = Objective(fn, tuple(keys))
        return fn

    return register
