"""mlp: fully connected layers on the flattened image (the Pokémon project's original design)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from vaetune.models._base import VAE, register_architecture
from vaetune.models._config import ModelConfig


class MlpConfig(ModelConfig):
    arch: Literal["mlp"] = "mlp"
    width: int = Field(32, ge=1)  # hidden units of every layer
    depth: int | None = Field(None, ge=1)  # encoder hidden layers; None: 4 (decoder: one fewer)


@register_architecture(MlpConfig)
class MlpVAE(VAE):
    """Fully connected: the flattened image through ``depth`` hidden layers (model.depth, default
    4) of ``width`` units; the decoder mirrors it with one hidden layer fewer (at least 1), e.g.
    40x40x3 -> 4 x 1024 -> latent 16 -> 3 x 1024 -> 40x40x3. Any image size fits.
    """

    def __init__(self, cfg: MlpConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
        super().__init__(cfg, image_shape, num_classes)
        C, H, W = self.image_shape
        n_enc = cfg.depth if cfg.depth is not None else 4
        n_dec = max(n_enc - 1, 1)

        self.encoder = _mlp(C * H * W + self.num_classes, cfg.width, n_enc)  # -> (B, width)
        self._init_head(cfg.width)
        self.decoder = nn.Sequential(
            _mlp(self.latent_dim + self.num_classes, cfg.width, n_dec),  # (B, width)
            nn.Linear(cfg.width, C * H * W),
            nn.Unflatten(1, (C, H, W)),  # (B, C, H, W) logits
        )

    def _join_input(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = x.flatten(1)  # (B, C*H*W)
        if not self.num_classes:
            return x
        return torch.cat([x, self._one_hot(y, x.shape[0]).to(x.dtype)], dim=1)  # (B, C*H*W + K)


def _mlp(n_in: int, width: int, layers: int) -> nn.Sequential:
    mods = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*mods)
