"""resnet: residual blocks with GroupNorm + SiLU, for 64-128 px images (cards, paintings)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from vaetune.models._base import VAE, register_architecture
from vaetune.models._config import ModelConfig


class ResNetConfig(ModelConfig):
    arch: Literal["resnet"] = "resnet"
    width: int = Field(32, ge=1)  # channels of the first stage
    downsample: Literal[8, 16] = 8  # total down-sampling factor: 3 or 4 stride-2 stages

    def check_image_size(self, size: int) -> None:
        if size % self.downsample:
            raise ValueError(f"resnet with downsample {self.downsample} "
                             f"needs a multiple of {self.downsample}")


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, c), c)  # 32 groups where the width allows


class ResBlock(nn.Module):
    """Pre-activation residual block: (GroupNorm, SiLU, 3x3 conv) twice plus a skip."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            _norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
            _norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)  # (B, c_out, H, W)


@register_architecture(ResNetConfig)
class ResNetVAE(VAE):
    """Residual blocks with GroupNorm + SiLU, for 64-128 px images (cards, paintings).

    log2(model.downsample) stages (3 for x8, 4 for x16); each is a residual block then a stride-2
    conv. Channel multipliers of width are 1, 2, 4 (, 4): capped at 4x so the flattened features
    feeding the posterior head stay moderate at 128 px. The decoder mirrors it with nearest
    up-sampling + 3x3 conv.
    """

    def __init__(self, cfg: ResNetConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
        super().__init__(cfg, image_shape, num_classes)
        C, H, W = self.image_shape
        stages = int(math.log2(cfg.downsample))
        chans = [cfg.width * min(2**i, 4) for i in range(stages + 1)]  # e.g. [w, 2w, 4w, 4w]
        h, w = H // cfg.downsample, W // cfg.downsample
        flat = chans[-1] * h * w

        enc = [nn.Conv2d(C + self.num_classes, chans[0], 3, padding=1)]  # (B, w, H, W)
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):  # each: (B, c_in, s, s) -> (B, c_out, s/2, s/2)
            enc += [ResBlock(c_in, c_out), nn.Conv2d(c_out, c_out, 3, stride=2, padding=1)]
        enc += [ResBlock(chans[-1], chans[-1]), _norm(chans[-1]), nn.SiLU(), nn.Flatten()]
        self.encoder = nn.Sequential(*enc)  # -> (B, chans[-1] * h * w)
        self._init_head(flat)

        dec = [nn.Linear(self.latent_dim + self.num_classes, flat),
               nn.Unflatten(1, (chans[-1], h, w)),  # (B, chans[-1], h, w)
               ResBlock(chans[-1], chans[-1])]
        for c_in, c_out in zip(chans[:0:-1], chans[-2::-1], strict=True):  # each: (B, c_in, s, s) -> (B, c_out, 2s, 2s)
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_in, 3, padding=1),
                    ResBlock(c_in, c_out)]
        dec += [_norm(chans[0]), nn.SiLU(), nn.Conv2d(chans[0], C, 3, padding=1)]  # (B, C, H, W) logits
        self.decoder = nn.Sequential(*dec)
