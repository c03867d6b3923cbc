"""``builtin:sprites``: a generated data set of coloured shapes with known generating factors.

Each image is one shape (square, circle, triangle, heart or star) in one colour, with a darker
outline, at some scale, rotation and position, on a plain ``background``. The six factors are
drawn independently and uniformly, so a VAE's latents can be compared with them (as with
dSprites). The same ``(count, image_size, seed)`` gives the same images bit for bit, whatever
the batch size: all random numbers are drawn up front from one seeded generator.

Shapes are rasterised from signed distance functions (SDFs) on a pixel-centre grid, a batch of
images at a time, with one pixel of antialiasing; nothing loops over images in Python, so 20 000
images take about 1 s at 32 px and 2.5 s at 64 px on one CPU core.

Factors (``SpriteSet.factors``, float32) and their binned labels (``SpriteSet.labels``, int64):

============  ======================================  ==========================================
name          factor                                  label
============  ======================================  ==========================================
shape         index into ``SHAPES``                   the same index
colour        hue in [0, 1)                           nearest of 6 hues (``COLOURS``)
scale         shape diameter / image side, 0.4..0.8   4 equal bins
rotation      degrees, [0, 360)                       8 bins of 45 degrees
x, y          position in [0, 1], see below           8 equal bins of [0, 1]; y grows downwards
============  ======================================  ==========================================

x and y say where the shape sits in the room it has: 0 touches the left (top) edge with its
bounding circle, 1 the right (bottom) edge; the centre, as a fraction of the image side, is
``scale / 2 + x * (1 - scale)`` (:func:`centre`). So all six factors are independent and uniform.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch

SHAPES = ("square", "circle", "triangle", "heart", "star")
COLOURS = ("red", "yellow", "green", "cyan", "blue", "magenta")  # hue bins centred on k/6
SCALE_RANGE = (0.4, 0.8)
BINS = {"scale": 4, "rotation": 8, "x": 8, "y": 8}
_SATURATION, _VALUE = 0.75, 0.95  # bright, not garish colours
_OUTLINE_DARKEN = 0.55  # outline colour = fill * this, so light shapes stay visible on white
_PIXELS_PER_CHUNK = 1 << 21  # about 8 MB per float32 temporary; fewer, larger ops run faster
_SDF = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass
class SpriteSet:
    images: torch.Tensor  # uint8 (N, C, S, S)
    factors: dict[str, torch.Tensor]  # name -> float32 (N,)
    labels: dict[str, torch.Tensor]  # name -> int64 (N,)
    label_names: dict[str, list[str]]


def generate_sprites(
    count: int,
    image_size: int = 32,
    *,
    seed: int = 0,
    channels: int = 3,
    background: tuple[int, int, int] = (255, 255, 255),
) -> SpriteSet:
    """Generate ``count`` sprite images of ``image_size`` pixels, deterministically from ``seed``.

    Args:
        count: number of images.
        image_size: square side in pixels.
        seed: the same seed gives the same images and factors.
        channels: 3 (RGB on ``background``), 1 (grey) or 4 (RGBA, the shape's coverage as alpha).
        background: RGB colour behind the shapes.
    """
    if count < 0 or image_size < 1:
        raise ValueError(f"count must be >= 0 and image_size >= 1, got {count} and {image_size}")
    factors = _sample_factors(count, seed)
    chunk = max(1, _PIXELS_PER_CHUNK // (image_size * image_size))
    images = torch.empty((count, channels, image_size, image_size), dtype=torch.uint8)
    with _one_thread():
        # One shape at a time, so each batch runs one SDF on whole tensors (no masked gathers).
        for k, sdf in enumerate(_SDFS.values()):
            index = (factors["shape"] == k).nonzero().squeeze(1)
            for part in index.split(chunk):
                images[part] = _render({n: v[part] for n, v in factors.items()}, sdf, image_size, channels, background)
    labels, names = _bin_factors(factors)
    return SpriteSet(images, factors, labels, names)


@contextmanager
def _one_thread():
    """Run on one intra-op thread: these memory-bound ops gain little from a second thread, and
    when other processes (parallel trials) busy the cores, OpenMP's spinning threads made
    generation up to 10x slower in measurements."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sample_factors(count: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = torch.randint(len(SHAPES), (count,), generator=gen)
    hue = torch.rand(count, generator=gen)
    lo, hi = SCALE_RANGE
    scale = lo + (hi - lo) * torch.rand(count, generator=gen)
    rotation = 360.0 * torch.rand(count, generator=gen)
    # Position relative to the room the shape has, so that it is independent of scale.
    x, y = torch.rand(2, count, generator=gen).unbind(0)
    return {"shape": shape.float(), "colour": hue, "scale": scale, "rotation": rotation, "x": x, "y": y}


def centre(scale: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Centre of a shape as a fraction of the image side, from its scale and x or y factor."""
    return scale / 2 + position * (1 - scale)  # the whole bounding circle stays inside


def _bin_factors(f: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    lo, hi = SCALE_RANGE
    labels = {
        "shape": f["shape"].long(),
        "colour": torch.floor(f["colour"] * len(COLOURS) + 0.5).long() % len(COLOURS),
        "scale": _bin(f["scale"], lo, hi, BINS["scale"]),
        "rotation": _bin(f["rotation"], 0.0, 360.0, BINS["rotation"]),
        "x": _bin(f["x"], 0.0, 1.0, BINS["x"]),
        "y": _bin(f["y"], 0.0, 1.0, BINS["y"]),
    }
    names = {
        "shape": list(SHAPES),
        "colour": list(COLOURS),
        "scale": _bin_names(lo, hi, BINS["scale"], "{:.2f}"),
        "rotation": _bin_names(0, 360, BINS["rotation"], "{:.0f}"),
        "x": _bin_names(0, 1, BINS["x"], "{:.2f}"),
        "y": _bin_names(0, 1, BINS["y"], "{:.2f}"),
    }
    return labels, names


def _bin(v: torch.Tensor, lo: float, hi: float, n: int) -> torch.Tensor:
    return torch.floor((v - lo) / (hi - lo) * n).long().clamp(0, n - 1)


def _bin_names(lo: float, hi: float, n: int, fmt: str) -> list[str]:
    step = (hi - lo) / n
    return [f"{fmt.format(lo + i * step)}-{fmt.format(lo + (i + 1) * step)}" for i in range(n)]


# --------------------------------------------------------------------------------------------
# Rendering


def _render(f: dict[str, torch.Tensor], sdf: _SDF, size: int, channels: int,
            background: tuple[int, int, int]) -> torch.Tensor:
    alpha, inner = _coverage(f, sdf, size)  # (B, 1, S, S) each; inner <= alpha
    fill = _hsv_to_rgb(f["colour"]).view(-1, 3, 1, 1) * 255  # (B, 3, 1, 1)
    edge = fill * _OUTLINE_DARKEN
    bg = torch.tensor(background, dtype=torch.float32).view(1, 3, 1, 1)
    if channels == 4:
        # Straight (not premultiplied) colour; fully transparent pixels carry the background colour.
        rgb = torch.addcmul(edge, inner / alpha.clamp_min(1e-6), fill - edge)
        out = torch.cat([torch.where(alpha >= 0.5 / 255, rgb, bg), alpha * 255], dim=1)  # visible alpha only
    else:
        if channels == 1:
            fill, edge, bg = (_luma(v) for v in (fill, edge, bg))
        # = fill * inner + edge * (alpha - inner) + bg * (1 - alpha), in two fused ops
        out = torch.addcmul(bg, alpha, edge - bg).addcmul_(inner, fill - edge)
    return out.add_(0.5).clamp_(0, 255).to(torch.uint8)  # +0.5 then truncation rounds


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _coverage(f: dict[str, torch.Tensor], sdf: _SDF, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Antialiased coverage of each shape, and of the shape minus its outline, in [0, 1]."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    gy, gx = coords.view(1, 1, size, 1), coords.view(1, 1, 1, size)
    radius = f["scale"].view(-1, 1, 1, 1)  # bounding radius in [-1, 1] units = diameter / side
    dx = gx - (centre(f["scale"], f["x"]).view(-1, 1, 1, 1) * 2 - 1)  # (B, 1, 1, S)
    dy = gy - (centre(f["scale"], f["y"]).view(-1, 1, 1, 1) * 2 - 1)  # (B, 1, S, 1)
    theta = torch.deg2rad(f["rotation"]).view(-1, 1, 1, 1)
    cos, sin = torch.cos(theta) / radius, torch.sin(theta) / radius
    # Rotate the grid by -theta and scale it to shape units (y up for the SDFs): one full-size
    # op per coordinate, the rest is on rows and columns.
    px = cos * dx + sin * dy  # (B, 1, S, S)
    py = sin * dx - cos * dy
    dist = sdf(px, py).mul_(radius * (size / 2))  # shape units -> pixels
    outline = max(1.0, size / 32)
    alpha = dist.neg().add_(0.5).clamp_(0, 1)
    inner = dist.neg_().add_(0.5 - outline).clamp_(0, 1)
    return alpha, inner


def _hsv_to_rgb(hue: torch.Tensor) -> torch.Tensor:
    n = torch.tensor([5.0, 3.0, 1.0])
    k = (n + hue[:, None] * 6) % 6  # (B, 3)
    return _VALUE - _VALUE * _SATURATION * torch.minimum(k, 4 - k).clamp(0, 1)


# Signed distance functions in shape units: every shape fits in the unit circle, y points up.
# After https://iquilezles.org/articles/distfunctions2d/ (MIT).


def _sd_circle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + y * y) - 0.8


def _sd_square(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    qx, qy = x.abs() - 0.68, y.abs() - 0.68
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _sd_triangle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r, k = math.sqrt(3) / 2, math.sqrt(3)  # circumradius 1, centred on its centroid
    x = x.abs() - r
    y = y + r / k
    flip = x + k * y > 0
    x, y = torch.where(flip, (x - k * y) / 2, x), torch.where(flip, (-k * x - y) / 2, y)
    x = x - x.clamp(-2 * r, 0)
    return -torch.sqrt(x * x + y * y) * torch.sign(y)


def _sd_heart(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    k = 0.71  # heart units per shape unit: its bounding radius (0.674) becomes ~0.95
    x, y = (x * k).abs(), y * k + 0.55  # the tip sits at (0, -0.55 / k)
    lobe = torch.sqrt((x - 0.25) ** 2 + (y - 0.75) ** 2) - math.sqrt(2) / 4
    m = (x + y).clamp(min=0) * 0.5
    point = torch.sqrt(torch.minimum(x * x + (y - 1) ** 2, (x - m) ** 2 + (y - m) ** 2))
    return torch.where(x + y > 1, lobe, point * torch.sign(x - y)) / k


def _sd_star(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r, rf = 0.95, 0.45  # outer radius, inner/outer ratio of a five-pointed star
    k1x, k1y = 0.809016994375, -0.587785252292
    x = x.abs()
    for kx, ky in ((k1x, k1y), (-k1x, k1y)):
        d = (kx * x + ky * y).clamp(min=0) * 2
        x, y = x - d * kx, y - d * ky
    x = x.abs()
    y = y - r
    bax, bay = rf * -k1y, rf * k1x - 1
    h = ((x * bax + y * bay) / (bax * bax + bay * bay)).clamp(0, r)
    return torch.sqrt((x - bax * h) ** 2 + (y - bay * h) ** 2) * torch.sign(y * bax - x * bay)


_SDFS: dict[str, _SDF] = {
    "square": _sd_square,
    "circle": _sd_circle,
    "triangle": _sd_triangle,
    "heart": _sd_heart,
    "star": _sd_star,
}
assert tuple(_SDFS) == SHAPES
