"""conv: strided convolutions down, transposed convolutions up (the default architecture)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from vaetune.models._base import VAE, register_architecture
from vaetune.models._config import ModelConfig


def conv_depth(image_size: int) -> int:
    """Down-sampling stages when model.depth is unset: halve until about 4 px remain (64: 4)."""
    depth = 0
    while image_size % 2 == 0 and image_size // 2 >= 4:
        image_size //= 2
        depth += 1
    return max(depth, 1)


class ConvConfig(ModelConfig):
    arch: Literal["conv"] = "conv"
    width: int = Field(32, ge=1)  # channels of the first stage, doubling each stage
    depth: int | None = Field(None, ge=1)  # down-sampling stages; None: conv_depth(image size)

    def stages(self, image_size: int) -> int:
        return self.depth if self.depth is not None else conv_depth(image_size)

    def check_image_size(self, size: int) -> None:
        depth = self.stages(size)
        if size % (2**depth) or size // (2**depth) < 1:
            raise ValueError(f"conv with depth {depth} needs a multiple of {2**depth}")


@register_architecture(ConvConfig)
class ConvVAE(VAE):
    """Strided convolutions down, transposed convolutions up, BatchNorm + ReLU between.

    ``depth`` stages (model.depth, or conv_depth(H): halve until about 4 px remain) with channels
    width, 2*width, 4*width, ... (32-64-128-256 for width 32, depth 4). Kernel 4, stride 2,
    padding 1 halves or doubles a side exactly, so any size divisible by 2**depth works
    (40 -> 20 -> 10 -> 5 with depth 3).
    """

    def __init__(self, cfg: ConvConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
        super().__init__(cfg, image_shape, num_classes)
        C, H, W = self.image_shape
        depth = cfg.stages(H)
        chans = [cfg.width * 2**i for i in range(depth)]  # e.g. [32, 64, 128, 256]
        h, w = H // 2**depth, W // 2**depth  # final feature map side(s)
        flat = chans[-1] * h * w

        enc, c_in = [], C + self.num_classes
        for c in chans:  # each: (B, c_in, s, s) -> (B, c, s/2, s/2)
            enc += [nn.Conv2d(c_in, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.encoder = nn.Sequential(*enc, nn.Flatten())  # -> (B, chans[-1] * h * w)
        self._init_head(flat)

        dec = [nn.Linear(self.latent_dim + self.num_classes, flat), nn.ReLU(),
               nn.Unflatten(1, (chans[-1], h, w))]  # (B, chans[-1], h, w)
        for c_hi, c_lo in zip(chans[:0:-1], chans[-2::-1], strict=True):  # each: (B, c_hi, s, s) -> (B, c_lo, 2s, 2s)
            dec += [nn.ConvTranspose2d(c_hi, c_lo, 4, 2, 1, bias=False), nn.BatchNorm2d(c_lo), nn.ReLU()]
        dec.append(nn.ConvTranspose2d(chans[0], C, 4, 2, 1))  # (B, C, H, W) logits
        self.decoder = nn.Sequential(*dec)
