"""The contract every VAE architecture keeps, and the registry that pairs each with its config.

Every model maps images in [0, 1] of shape (B, C, H, W) to a diagonal Gaussian posterior over a
``latent_dim``-dimensional z and decodes z back to per-pixel logits. The base class :class:`VAE`
owns everything the designs share (the posterior head, reparameterisation, clamping, label
conditioning, sampling, the image-size check); a design only supplies ``encoder`` (joined input
-> flat features) and ``decoder`` (joined z -> logits).

Conditioning (``model.conditional`` with a labelled data set, a CVAE): the one-hot label is joined
to the encoder input (as constant extra channels by default; an architecture may override
``_join_input``, as mlp does) and to z for the decoder. ``num_classes`` of a model is the number
of classes it conditions on, 0 for an unconditional model, which ignores any ``y`` it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from vaetune.models._config import ModelConfig
from vaetune.models._losses import VAEOutput

if TYPE_CHECKING:
    from vaetune.models._prior import LatentMixture

__all__ = ["MODELS", "VAE", "register_architecture"]


class VAE(nn.Module):
    """Base of every architecture. Subclasses set ``self.encoder`` and ``self.decoder`` and call
    ``self._init_head(features)`` with the encoder's flat output size.

    ``encoder``: joined input (see :meth:`_join_input`) -> (B, features)
    ``decoder``: (B, latent_dim + num_classes) -> logits (B, C, H, W)
    """

    config_class: ClassVar[type[ModelConfig]] = ModelConfig  # set by register_architecture

    def __init__(self, cfg: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)  # (C, H, W)
        _, H, W = self.image_shape
        for side in dict.fromkeys((H, W)):
            try:
                cfg.check_image_size(side)  # the architecture's size rule, as the spec applies it
            except ValueError as exc:
                raise ValueError(f"{H}x{W} images: {exc}") from None
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
    def sample(self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None,
               prior: LatentMixture | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1] decoded from z ~ N(0, I), or from `prior` (a fitted
        vaetune.models.LatentMixture) when given.

        A conditional model decodes the labels y (n,); with y=None it draws labels uniformly from
        its classes with the same generator, so a seeded generator gives the same images and
        labels. Call in eval mode: BatchNorm in train mode would use the batch's statistics.
        """
        device = next(self.parameters()).device
        draw_on = generator.device if generator is not None else device
        if prior is None:
            z = torch.randn(n, self.latent_dim, generator=generator, device=draw_on).to(device)  # (n, D)
        else:
            z = prior.sample(n, generator=generator).to(device)  # (n, D)
        if self.num_classes and y is None:
            y = torch.randint(0, self.num_classes, (n,), generator=generator, device=draw_on).to(device)
        return self.decode(z, y if y is None else y.to(device))  # (n, C, H, W)


# -- the registry -----------------------------------------------------------------------------

MODELS: dict[str, type[VAE]] = {}  # model.arch -> its class; the class's config_class validates the section

V = TypeVar("V", bound=type[VAE])


def register_architecture(config: type[ModelConfig]) -> Callable[[V], V]:
    """Class decorator: register a VAE under its config's ``arch`` name, paired with that config.

    ``@register_architecture(ConvConfig)`` above ``class ConvVAE(VAE)`` makes ``model.arch: conv``
    build a ConvVAE, with the ``model`` section validated by ConvConfig (its options, its
    ``check_image_size`` rule).

    Args:
        config: a subclass of `vaetune.spec.ModelConfig` declaring
            ``arch: Literal["name"] = "name"`` and the architecture's own options.
    """
    name = config.model_fields["arch"].default
    if config is ModelConfig or not (issubclass(config, ModelConfig) and isinstance(name, str)):
        raise TypeError(f"{config!r}: an architecture's config subclasses ModelConfig and names "
                        'its arch, e.g. arch: Literal["conv"] = "conv"')

    def register(cls: V) -> V:
        if MODELS.get(name, cls) is not cls:
            raise ValueError(f"model.arch {name!r} is registered twice: "
                             f"{MODELS[name].__module__} and {cls.__module__}")
        cls.config_class = config
        MODELS[name] = cls
        return cls

    return register
