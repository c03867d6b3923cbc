"""VAE architectures for images: a small base contract and a registry of three designs.

Every model maps images in [0, 1] of shape (B, C, H, W) to a diagonal Gaussian posterior over a
``latent_dim``-dimensional z and decodes z back to per-pixel logits. The base class :class:`VAE`
owns everything the designs share (the posterior head, reparameterisation, clamping, label
conditioning, sampling); a design only supplies ``encoder`` (joined input -> flat features) and
``decoder`` (joined z -> logits).

Conditioning (``model.conditional`` with a labelled data set, a CVAE): the one-hot label is joined
to the encoder input (as constant extra channels for conv/resnet, concatenated to the flattened
image for mlp) and to z for the decoder. ``num_classes`` of a model is the number of classes it
conditions on, 0 for an unconditional model, which ignores any ``y`` it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaetune.errors import UserError
from vaetune.spec import ModelConfig, conv_depth

__all__ = ["MODELS", "VAE", "ConvVAE", "MlpVAE", "ResNetVAE", "VAEOutput", "build_model"]


@dataclass
class VAEOutput:
    recon: torch.Tensor  # (B, C, H, W) in [0, 1], sigmoid(logits)
    logits: torch.Tensor  # (B, C, H, W), for a BCE-with-logits reconstruction loss
    mu: torch.Tensor  # (B, D) posterior mean
    logvar: torch.Tensor  # (B, D) posterior log-variance, clamped
    z: torch.Tensor  # (B, D) reparameterised sample in train mode, mu in eval mode


class VAE(nn.Module):
    """Base of every architecture. Subclasses set ``self.encoder`` and ``self.decoder`` and call
    ``self._init_head(features)`` with the encoder's flat output size.

    ``encoder``: joined input (see :meth:`_join_input`) -> (B, features)
    ``decoder``: (B, latent_dim + num_classes) -> logits (B, C, H, W)
    """

    def __init__(self, cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)  # (C, H, W)
        self.latent_dim = cfg.latent_dim
        self.num_classes = num_classes if cfg.conditional else 0  # classes conditioned on; 0: none
        self.logvar_clamp = cfg.logvar_clamp

    def _init_head(self, features: int) -> None:
        self.to_stats = nn.Linear(features, 2 * self.latent_dim)  # -> (mu, logvar)

    # -- conditioning -------------------------------------------------------------------------

    def _one_hot(self, y: torch.Tensor | None, batch: int) -> torch.Tensor:
        if y is None:
            raise ValueError(f"this model is conditional on {self.num_classes} classes; pass y (int64 labels, shape (B,))")
        if y.shape != (batch,):
            raise ValueError(f"y must have shape ({batch},), got {tuple(y.shape)}")
        return F.one_hot(y.long(), self.num_classes).float()  # (B, K)

    def _join_input(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Labels as constant channels: (B, C, H, W) -> (B, C + K, H, W). mlp overrides this."""
        if not self.num_classes:
            return x
        onehot = self._one_hot(y, x.shape[0]).to(x.dtype)  # (B, K)
        planes = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])  # (B, K, H, W)
        return torch.cat([x, planes], dim=1)  # (B, C + K, H, W)

    def _join_latent(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if not self.num_classes:
            return z
        return torch.cat([z, self._one_hot(y, z.shape[0]).to(z.dtype)], dim=1)  # (B, D + K)

    # -- the contract -------------------------------------------------------------------------

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters of images x (B, C, H, W) in [0, 1]: mu, logvar, each (B, D)."""
        h = self.encoder(self._join_input(x, y))  # (B, F)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)  # (B, D), (B, D)
        return mu, logvar.clamp(-self.logvar_clamp, self.logvar_clamp)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self._join_latent(z, y))  # (B, C, H, W)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z, y))  # (B, C, H, W) in [0, 1]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        mu, logvar = self.encode(x, y)  # (B, D) each
        if self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation trick
        else:
            z = mu  # deterministic reconstructions for validation and grids
        logits = self.decode_logits(z, y)  # (B, C, H, W)
        return VAEOutput(recon=torch.sigmoid(logits), logits=logits, mu=mu, logvar=logvar, z=z)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1] decoded from z ~ N(0, I).

        A conditional model decodes the labels y (n,); with y=None it draws labels uniformly from
        its classes with the same generator, so a seeded generator gives the same images and
        labels. Call in eval mode: BatchNorm in train mode would use the batch's statistics.
        """
        device = next(self.parameters()).device
        draw_on = generator.device if generator is not None else device
        z = torch.randn(n, self.latent_dim, generator=generator, device=draw_on).to(device)  # (n, D)
        if self.num_classes and y is None:
            y = torch.randint(0, self.num_classes, (n,), generator=generator, device=draw_on).to(device)
        return self.decode(z, y if y is None else y.to(device))  # (n, C, H, W)


def _check_divisible(arch: str, h: int, w: int, factor: int) -> None:
    if h % factor or w % factor:
        raise ValueError(f"{arch}: image size {h}x{w} must be a multiple of {factor}")


class ConvVAE(VAE):
    """Strided convolutions down, transposed convolutions up, BatchNorm + ReLU between.

    ``depth`` stages (model.depth, or conv_depth(H): halve until about 4 px remain) with channels
    width, 2*width, 4*width, ... (32-64-128-256 for width 32, depth 4). Kernel 4, stride 2,
    padding 1 halves or doubles a side exactly, so any size divisible by 2**depth works
    (40 -> 20 -> 10 -> 5 with depth 3).
    """

    def __init__(self, cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
        super().__init__(cfg, image_shape, num_classes)
        C, H, W = self.image_shape
        depth = cfg.depth if cfg.depth is not None else conv_depth(H)
        _check_divisible("conv", H, W, 2**depth)
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


class MlpVAE(VAE):
    """Fully connected: the flattened image through ``depth`` hidden layers (model.depth, default
    4) of ``width`` units; the decoder mirrors it with one hidden layer fewer (at least 1), e.g.
    40x40x3 -> 4 x 1024 -> latent 16 -> 3 x 1024 -> 40x40x3.
    """

    def __init__(self, cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
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


class ResNetVAE(VAE):
    """Residual blocks with GroupNorm + SiLU, for 64-128 px images (cards, paintings).

    log2(model.downsample) stages (3 for x8, 4 for x16); each is a residual block then a stride-2
    conv. Channel multipliers of width are 1, 2, 4 (, 4): capped at 4x so the flattened features
    feeding the posterior head stay moderate at 128 px. The decoder mirrors it with nearest
    up-sampling + 3x3 conv.
    """

    def __init__(self, cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
        super().__init__(cfg, image_shape, num_classes)
        C, H, W = self.image_shape
        _check_divisible("resnet", H, W, cfg.downsample)
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


MODELS: dict[str, type[VAE]] = {
    "conv": ConvVAE,
    "mlp": MlpVAE,
    "resnet": ResNetVAE,
}


def build_model(cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> VAE:
    """The model that ``cfg`` describes, for images of ``image_shape`` (C, H, W).

    Args:
        cfg: the ``model`` section of the configuration.
        image_shape: (channels, height, width) of the training images.
        num_classes: classes of the data's primary label, 0 when the data is unlabelled.

    Raises:
        UserError: ``cfg.conditional`` is set but the data has no labels.
    """
    if cfg.conditional and num_classes <= 0:
        raise UserError("model.conditional needs labels; the data has none "
                        "(use a labelled source or set model.conditional: false)")
    if cfg.arch not in MODELS:
        raise ValueError(f"model.arch: got {cfg.arch!r}; accepted: {', '.join(MODELS)}")
    return MODELS[cfg.arch](cfg, image_shape, num_classes)
