"""The model stage: VAE architectures, the objectives they are trained with and the terms those
are built from, the schedules of the KL weight and the learning rate, and the latent prior fitted
after training, with the `model` and `train` sections that configure them.

An architecture is one file of this package (conv.py, mlp.py, resnet.py, ...): its config (a
`ModelConfig` subclass with its own options and its image-size rule) and its model class (a `VAE`
subclass), paired by ``@register_architecture(Config)``. Every module whose name does not start
with ``_`` is imported here, so a new file is found without being listed; `model.arch` in a search
space then accepts its name. An objective is one function of _objectives.py, registered with
``@register_objective``. See docs/architecture.md, "Add an architecture" and "Add an objective".

Modules: `_base` (the VAE contract, the architecture registry), `_config` (the model and train
sections), `_losses` (reconstruction and KL terms, and `VAEOutput` they are computed from),
`_objective_registry` (the objective registry), `_objectives` (elbo, capacity), `_schedules` (β,
capacity, learning rate, the optimizer), `_prior` (the fitted latent prior).
Nothing here reads the spec; the spec reads these registries.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from vaetune.errors import UserError
from vaetune.models._base import MODELS, VAE, register_architecture
from vaetune.models._config import DEFAULT_ARCH, ModelConfig, PriorCovariance, TrainConfig
from vaetune.models._losses import (
    DivergedError,
    LossTerms,
    VAEOutput,
    check_finite,
    kl_per_dim,
    recon_loss,
)
from vaetune.models._objective_registry import OBJECTIVES, Objective, register_objective
from vaetune.models._objectives import capacity, elbo, objective_loss
from vaetune.models._prior import (
    COVARIANCES,
    PRIOR_COMPONENTS,
    PRIOR_COVARIANCE,
    PRIOR_MAX_POINTS,
    REG_COVAR,
    LatentMixture,
    encode_means,
    fit_model_prior,
    fit_prior,
)
from vaetune.models._schedules import beta_at, capacity_at, lr_factor, make_optimizer, set_lr

__all__ = [
    "COVARIANCES", "DEFAULT_ARCH", "MODELS", "OBJECTIVES", "PRIOR_COMPONENTS", "PRIOR_COVARIANCE",
    "PRIOR_MAX_POINTS", "REG_COVAR", "VAE", "DivergedError", "LatentMixture", "LossTerms", "ModelConfig",
    "Objective", "PriorCovariance", "TrainConfig", "VAEOutput", "beta_at", "build_model", "capacity",
    "capacity_at", "check_finite", "config_class", "config_for", "elbo", "encode_means",
    "fit_model_prior", "fit_prior", "kl_per_dim", "lr_factor", "make_optimizer", "objective_loss",
    "recon_loss", "register_architecture", "register_objective", "set_lr",
]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def config_class(arch: str) -> type[ModelConfig]:
    """The config class registered for architecture `arch`; KeyError naming the registered ones."""
    if arch not in MODELS:
        raise KeyError(f"no architecture {arch!r} is registered (registered: {', '.join(MODELS)})")
    return MODELS[arch].config_class


def config_for(arch: str = DEFAULT_ARCH, **options: Any) -> ModelConfig:
    """The validated config of architecture `arch` with `options`, e.g.
    ``config_for("resnet", width=8, downsample=16)``; pydantic's ValidationError if one is wrong."""
    return config_class(arch).model_validate({"arch": arch, **options})


def build_model(cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> VAE:
    """The model that ``cfg`` describes, for images of ``image_shape`` (C, H, W).

    Args:
        cfg: the ``model`` section of the configuration (its architecture's config; a plain
            ModelConfig is read as that architecture's config with its defaults).
        image_shape: (channels, height, width) of the training images.
        num_classes: classes of the data's primary label, 0 when the data is unlabelled.

    Raises:
        UserError: ``cfg.conditional`` is set but the data has no labels.
        ValueError: the images do not fit the architecture (its size rule says which do).
    """
    if cfg.conditional and num_classes <= 0:
        raise UserError("model.conditional needs labels; the data has none "
                        "(use a labelled source or set model.conditional: false)")
    if not isinstance(cfg, config_class(cfg.arch)):
        cfg = config_for(**cfg.model_dump(exclude_unset=True))
    return MODELS[cfg.arch](cfg, image_shape, num_classes)
