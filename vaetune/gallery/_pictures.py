"""The gallery's pictures as tensors, outside Streamlit: samples from fixed z, reconstructions, the
latent explorer, interpolations and a sample's nearest training images. Each is what the matching
command draws: at temperature 1 the samples of a seed are `vaetune sample --seed` (the same draw
of z, decoded in one batch), an interpolation's ends are its images' reconstructions, a traversal's
centre is the image's own code decoded.

The same z for every compared trial: the codes come from the seed alone, so trials of one latent
size decode the very same z ~ N(0, I); a fitted prior draws its own codes from the same seed.
"""

from __future__ import annotations

import io
import math

import torch

from vaetune.checkpoint import class_labels, decode_for_model
from vaetune.errors import UserError
from vaetune.gallery._models import Images, Loaded
from vaetune.samplers import get as get_sampler
from vaetune.viz import (
    INTERPOLATORS,
    grid_png,
    interpolation_strips,
    kl_order,
    traversal,
)

MAX_SAMPLES = 64  # images a sample grid shows
EXPLORER_DIMS = 6  # sliders of the latent explorer: the most active dimensions by KL
KL_IMAGES = 512  # validation images the KL order is measured on
NEAR_SLACK = 16  # candidates beyond k whose exact distances are compared (float32 rounding of the fast ones)
DISPLAY_WIDTH = 320  # a grid is shown at least this wide (scaled up by a whole factor, nearest neighbour)


def codes(loaded: Loaded, n: int, seed: int, sampler: str, temperature: float) -> torch.Tensor:
    """(n, D) codes on the CPU from the seed: z ~ N(0, I) or from the fitted latent mixture
    (vaetune.samplers' normal and gmm), as `vaetune sample` draws them; `temperature` scales z (about the prior's mean
    for the fitted prior), 1 leaving it as drawn."""
    if not 1 <= n <= MAX_SAMPLES:
        raise UserError(f"images: got {n}; give 1 to {MAX_SAMPLES}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise UserError(f"temperature: got {temperature}; give a number above 0")
    g = torch.Generator().manual_seed(seed)
    if get_sampler(sampler).fitted:
        if loaded.prior is None:
            raise UserError(f"{loaded.path}: holds no fitted latent mixture; sample from N(0, I)")
        z = loaded.prior.sample(n, generator=g)
        if temperature != 1:
            centre = (loaded.prior.weights[:, None] * loaded.prior.means).sum(0).float()  # (D,)
            z = centre + temperature * (z - centre)
        return z
    z = torch.randn(n, loaded.model.latent_dim, generator=g)
    return z if temperature == 1 else temperature * z


@torch.no_grad()
def decode(loaded: Loaded, z: torch.Tensor, label: int | None = None) -> torch.Tensor:
    """Codes (n, D) decoded on the model's device, (n, C, H, W) in [0, 1] on the CPU; a conditional
    model decodes class `label` (default 0)."""
    y = class_labels(loaded.model, len(z), label)
    return loaded.model.decode(z.to(loaded.device), None if y is None else y.to(loaded.device)).cpu()


def samples(loaded: Loaded, n: int, seed: int, sampler: str, temperature: float,
            label: int | None = None) -> torch.Tensor:
    """(n, C, H, W): the seed's samples, `vaetune sample --seed --sampler --label` at temperature 1."""
    return decode(loaded, codes(loaded, n, seed, sampler, temperature), label)


def labels_for(loaded: Loaded, images: Images | None, index: torch.Tensor | None, n: int, label: int | None):
    """The labels a conditional model encodes and decodes with: validation images' own (`index`
    into them), else class `label`; None for an unconditional model."""
    if not loaded.model.num_classes:
        return None
    if images is not None and index is not None and images.val_labels is not None:
        return images.val_labels[index]
    return class_labels(loaded.model, n, label)


@torch.no_grad()
def reconstruct(loaded: Loaded, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Images (n, C, H, W) in [0, 1] (uint8 is scaled) through the model: their reconstructions."""
    x = x.float().div(255) if x.dtype == torch.uint8 else x
    dev = loaded.device
    return loaded.model(x.to(dev), None if y is None else y.to(dev)).recon.cpu()


def read_upload(loaded: Loaded, data: bytes, name: str) -> torch.Tensor:
    """An uploaded file as the model's data reads images (size, channels, background, resizing):
    (1, C, H, W) in [0, 1]; a UserError naming it when it is not an image or does not fit."""
    x = decode_for_model(data, name, loaded.config)
    if tuple(x.shape[1:]) != tuple(loaded.model.image_shape):
        raise UserError(f"{name}: read with the model's data settings it is {tuple(x.shape[1:])}, but the model "
                        f"takes {tuple(loaded.model.image_shape)}")
    return x


@torch.no_grad()
def code_of(loaded: Loaded, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """The code (mu, (D,)) of one image (1, C, H, W) in [0, 1]: its reconstruction decodes it."""
    dev = loaded.device
    return loaded.model.encode(x.to(dev), None if y is None else y.to(dev))[0][0].cpu()


def active_dims(loaded: Loaded, images: Images) -> tuple[list[int], torch.Tensor]:
    """The latent dimensions by mean KL over validation images, largest first, and their KL (D,)."""
    x = images.val[:KL_IMAGES]
    y = images.val_labels[:KL_IMAGES] if loaded.model.num_classes and images.val_labels is not None else None
    order, kl = kl_order(loaded.model, x.to(loaded.device), None if y is None else y.to(loaded.device))
    return order.tolist(), kl.cpu()


def explore(loaded: Loaded, base: torch.Tensor, values: dict[int, float], y: torch.Tensor | None) -> torch.Tensor:
    """(1, C, H, W): the code `base` with the dimensions in `values` set to them, decoded."""
    z = base.clone()
    for d, v in values.items():
        z[d] = v
    return decode_with(loaded, z[None], y)


@torch.no_grad()
def decode_with(loaded: Loaded, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Codes decoded with given labels (a conditional model's; None otherwise), on the CPU."""
    dev = loaded.device
    return loaded.model.decode(z.to(dev), None if y is None else y[:1].expand(len(z)).to(dev)).cpu()


def strip(loaded: Loaded, base: torch.Tensor, dim: int, steps: int, span: float,
          y: torch.Tensor | None) -> torch.Tensor:
    """(steps, C, H, W): dimension `dim` swept over base[dim] ± span (`vaetune traverse`'s row);
    with odd steps its centre is `base` decoded."""
    dev = loaded.device
    return traversal(loaded.model, base.to(dev), [dim], steps, span, None if y is None else y.to(dev)).cpu()


@torch.no_grad()
def interpolate(loaded: Loaded, x: torch.Tensor, steps: int, y: torch.Tensor | None) -> torch.Tensor:
    """Two images x (2, C, H, W) in [0, 1]: rows `A | steps | B`, lerp then slerp
    (`vaetune interpolate --mode both`); each row's decoded ends are the reconstructions of A and B."""
    if steps < 2:
        raise UserError(f"steps: got {steps}; give at least 2")
    dev = loaded.device
    x = x.to(dev)
    yd = None if y is None else y.to(dev)
    mu = loaded.model.encode(x, None if yd is None else yd[:1].expand(2))[0]
    return interpolation_strips(loaded.model, x, list(mu), steps, list(INTERPOLATORS), yd).cpu()


def nearest_training(images: Images, sample: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A sample's (1, C, H, W) k nearest training images by RMS pixel distance, nearest first:
    (k,) distances and (k, C, H, W) images in [0, 1]."""
    d, i = _nearest(images, sample, k)
    return d[0], images.train[i[0]].float().div(255)


def validation_distance(images: Images, n: int = 64) -> float:
    """The median RMS pixel distance of held-out validation images to their nearest training image:
    what a sample that copies nothing is near (measured once per data)."""
    if images.held_out is None:
        d, _ = _nearest(images, images.val[:n].float().div(255), 1)
        images.held_out = float(d[:, 0].median())
    return images.held_out


def _nearest(images: Images, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, indices) (n, k) of the k training images nearest each query (n, C, H, W) in
    [0, 1], by RMS pixel distance. Candidates come from |q - b|^2 = |q|^2 - 2 q.b + |b|^2 (one
    product with the kept float bank, rounded in float32); their exact distances rank them."""
    bank, norms = images.bank()  # (N, D), (N,)
    q = queries.float().flatten(1)  # (n, D)
    approx = q.square().sum(1, keepdim=True) - 2 * q @ bank.T + norms  # (n, N)
    _, cand = approx.topk(min(k + NEAR_SLACK, len(bank)), dim=1, largest=False)  # (n, k + slack)
    exact = (bank[cand] - q[:, None]).square().sum(2)  # (n, k + slack)
    d2, j = exact.topk(min(k, len(bank)), dim=1, largest=False)
    return d2.sqrt() / math.sqrt(q.shape[1]), cand.gather(1, j)


def grid(images: torch.Tensor, ncols: int | None = None) -> bytes:
    """A grid PNG (`vaetune sample`'s layout: ceil(sqrt(n)) columns unless given)."""
    return grid_png(images, ncols or max(1, math.ceil(math.sqrt(len(images)))))


def zoomed(png: bytes, width: int = DISPLAY_WIDTH) -> bytes:
    """A PNG scaled up by the whole factor that makes it at least `width` wide, pixels kept sharp."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        factor = max(1, math.ceil(width / im.width))
        if factor == 1:
            return png
        buf = io.BytesIO()
        im.resize((im.width * factor, im.height * factor), Image.NEAREST).save(buf, format="PNG")
        return buf.getvalue()
