"""VAE architectures for images: one file per architecture, each registered once.

A file in this package (conv.py, mlp.py, resnet.py, ...) holds an architecture whole: its config
(a `vaetune.spec.ModelConfig` subclass with its own options and its image-size rule) and its
model class (a `VAE` subclass), paired by ``@register_architecture(Config)``. Every module of the
package is imported here, so a new file is found without being listed; `model.arch` in a search
space then accepts its name. See docs/architecture.md, "Add an architecture".
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from vaetune.errors import UserError
from vaetune.models._base import MODELS, VAE, VAEOutput, register_architecture
from vaetune.spec import DEFAULT_ARCH, ModelConfig, architecture_config

__all__ = ["MODELS", "VAE", "VAEOutput", "build_model", "config_for", "register_architecture"]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def config_for(arch: str = DEFAULT_ARCH, **options: Any) -> ModelConfig:
    """The validated config of architecture `arch` with `options`, e.g.
    ``config_for("resnet", width=8, downsample=16)``; pydantic's ValidationError if one is wrong."""
    return architecture_config({"arch": arch}).model_validate({"arch": arch, **options})


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
    if not isinstance(cfg, architecture_config({"arch": cfg.arch})):
        cfg = config_for(**cfg.model_dump(exclude_unset=True))
    return MODELS[cfg.arch](cfg, image_shape, num_classes)
