"""Codes and the pictures made by moving through them: interpolation, traversal, a walk."""

from __future__ import annotations

import math

import torch

from vaetune.checkpoint import class_labels, read_for_model
from vaetune.errors import UserError
from vaetune.viz._grids import blank, check_picture_size, gif_scale


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of codes (D,) (White 2016); lerp when they are (anti)parallel."""
    na, nb = a / a.norm().clamp_min(1e-12), b / b.norm().clamp_min(1e-12)
    omega = torch.arccos((na * nb).sum().clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if so.abs() < 1e-6:
        return lerp(a, b, t)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * a + t * b


INTERPOLATORS = {"lerp": lerp, "slerp": slerp}


def _modes(mode: str) -> list[str]:
    return ["lerp", "slerp"] if mode == "both" else [mode]


def load_val(config, data_space: str | None = None):
    """(ImageData, val images uint8, val primary labels or None) of --data SPACE.yaml or the checkpoint's config."""
    from vaetune.data import load_data

    if data_space:
        from vaetune.spec import load_space

        data_cfg = load_space(data_space).default_config().data
    else:
        data_cfg = config.data
    data = load_data(data_cfg)
    x, y = data.subset("val")
    if len(x) == 0:
        raise UserError(f"{data_space or 'the checkpoint config'}: the validation split is empty; "
                        "give data.split.val a share")
    return data, x, y


def check_shape(model, images: torch.Tensor, where: str) -> None:
    if tuple(images.shape[1:]) != tuple(model.image_shape):
        raise UserError(f"{where}: images are {tuple(images.shape[1:])} but the model takes "
                        f"{tuple(model.image_shape)}; pass the search space the model was trained on")


@torch.no_grad()
def encode_all(model, x: torch.Tensor, y: torch.Tensor | None, batch: int = 512):
    """mu, logvar (N, D) of uint8 images, in batches."""
    mus, logvars = [], []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].float().div(255)
        yb = None if y is None or not model.num_classes else y[i:i + batch]
        mu, logvar = model.encode(xb, yb)
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)



def interpolation_row(model, za: torch.Tensor, zb: torch.Tensor, steps: int, mode: str,
                      y: torch.Tensor | None) -> torch.Tensor:
    """(steps, C, H, W): codes from za to zb (both ends included), decoded."""
    f = INTERPOLATORS[mode]
    z = torch.stack([f(za, zb, t) for t in torch.linspace(0, 1, steps).tolist()])
    return model.decode(z, None if y is None else y[:1].expand(steps))


def interpolation_grid(model, corners: list[torch.Tensor], steps: int, mode: str,
                       y: torch.Tensor | None) -> torch.Tensor:
    """(steps*steps, C, H, W), row-major: bilinear (or bi-spherical) between 4 corner codes."""
    f = INTERPOLATORS[mode]
    a, b, c, d = corners
    ts = torch.linspace(0, 1, steps).tolist()
    z = torch.stack([f(f(a, b, s), f(c, d, s), t) for t in ts for s in ts])
    return model.decode(z, None if y is None else y[:1].expand(len(z)))


def interpolation_strips(model, x: torch.Tensor, codes: list[torch.Tensor], steps: int, modes: list[str],
                         y: torch.Tensor | None) -> torch.Tensor:
    """(len(modes) * (steps + 2), C, H, W): one row per mode, `A | steps decoded codes | B`, of two
    images x (2, C, H, W) in [0, 1] and their codes; the decoded ends are their reconstructions."""
    return torch.cat([torch.cat([x[:1], interpolation_row(model, codes[0], codes[1], steps, m, y), x[1:]])
                      for m in modes])


@torch.no_grad()
def interpolation_picture(model, config, paths: list[str], *, grid: bool, mode: str, steps: int,
                          label: int | None) -> tuple[torch.Tensor, int, list[str]]:
    """Images and columns of `vaetune interpolate`: rows A | steps | B, or steps x steps grids
    between four corners; one row or grid per mode (lerp and slerp side by side for "both")."""
    want = 4 if grid else 2
    if len(paths) != want:
        raise UserError(f"interpolate needs {'four images after --grid' if grid else 'two images IMG_A IMG_B'}"
                        f"; got {len(paths)}")
    if steps < 2:
        raise UserError(f"--steps: got {steps}; give at least 2")
    modes = _modes(mode)
    check_picture_size(model, len(modes) * (steps**2 if grid else steps + 2), "--steps", f"{steps} steps")
    y = class_labels(model, 1, label)
    x = torch.cat([read_for_model(p, config) for p in paths])  # (k, C, H, W)
    codes = list(model.encode(x, None if y is None else y.expand(len(x)))[0])  # mu of each
    if all(torch.equal(codes[0], c) for c in codes[1:]):  # every step would be the same picture
        raise UserError(f"{' and '.join(paths)}: the images have the same code; give images that differ")
    if not grid:
        return interpolation_strips(model, x, codes, steps, modes, y), steps + 2, modes
    grids = [interpolation_grid(model, codes, steps, m, y) for m in modes]
    rows = []
    for r in range(steps):  # lerp row r | blank | slerp row r
        parts = []
        for i, g in enumerate(grids):
            if i:
                parts.append(blank(g))
            parts.append(g[r * steps:(r + 1) * steps])
        rows.append(torch.cat(parts))
    return torch.cat(rows), steps * len(modes) + len(modes) - 1, modes



@torch.no_grad()
def kl_order(model, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent dimensions by mean KL over the images, largest first: (order, kl per dim)."""
    from vaetune.models import kl_per_dim

    mu, logvar = encode_all(model, x, y)
    kl = kl_per_dim(mu, logvar).mean(0)  # (D,)
    return torch.argsort(kl, descending=True, stable=True), kl


@torch.no_grad()
def traversal(model, base: torch.Tensor, dims: list[int], steps: int, span: float,
              y: torch.Tensor | None) -> torch.Tensor:
    """(len(dims) * steps, C, H, W): row i sweeps dimension dims[i] over base[d] + [-span, span],
    so the row's centre (odd steps) is the decoded base itself."""
    offsets = torch.linspace(-span, span, steps)
    z = base.repeat(len(dims) * steps, 1)
    for i, d in enumerate(dims):
        z[i * steps:(i + 1) * steps, d] = base[d] + offsets
    return model.decode(z, None if y is None else y[:1].expand(len(z)))


@torch.no_grad()
def traversal_picture(model, x: torch.Tensor, y: torch.Tensor | None, *, steps: int, span: float,
                      label: int | None) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """`vaetune traverse`: (images, dimension order by KL, KL per dimension) around the first image of x."""
    if steps < 2:
        raise UserError(f"--steps: got {steps}; give at least 2")
    if not (math.isfinite(span) and span > 0):  # 0 draws every column the same, nan and inf no image at all
        raise UserError(f"--range: got {span}; give a number above 0, how far each row reaches either side of the image's code")
    check_picture_size(model, model.latent_dim * steps, "--steps", f"{model.latent_dim} rows of {steps} steps")
    y = y if model.num_classes else None
    order, kl = kl_order(model, x, y)
    yb = None
    if model.num_classes:
        yb = class_labels(model, 1, label) if label is not None else y[:1]
    base = model.encode(x[:1].float().div(255), yb)[0][0]
    return traversal(model, base, order.tolist(), steps, span, yb), order.tolist(), kl



@torch.no_grad()
def walk_frames(model, frames: int, anchors: int, seed: int, y: torch.Tensor | None) -> torch.Tensor:
    """(frames, C, H, W): a closed slerp path through `anchors` codes drawn from N(0, I)."""
    if frames < 2:
        raise UserError(f"--frames: got {frames}; give at least 2")
    if anchors < 2:
        raise UserError(f"--anchors: got {anchors}; give at least 2")
    check_picture_size(model, frames * gif_scale(*model.image_shape[1:]) ** 2, "--frames", f"{frames} frames")
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(anchors, model.latent_dim, generator=g)
    codes = []
    for f in range(frames):
        pos = f * anchors / frames  # position along the loop, in segments
        i = int(pos)
        codes.append(slerp(points[i], points[(i + 1) % anchors], pos - i))
    z = torch.stack(codes)
    return model.decode(z, None if y is None else y[:1].expand(frames))
