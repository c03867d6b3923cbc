"""Latent-space pictures of a trained VAE, from an exported checkpoint or a trial's checkpoint.

The pictures of the commands below (vaetune.commands.pictures saves and describes them; each is a PNG, the walk a GIF; image grids are pixel-exact, `PAD` pixels of white
between images, so a grid of R rows and C columns of HxW images is
`(R * (H + PAD) + PAD) x (C * (W + PAD) + PAD)` pixels, see :func:`grid_pixels`):

- `interpolate CKPT A B`: one row per mode, `A | steps decoded codes | B`; `--grid A B C D`: a
  steps x steps bilinear grid between four corners (A top left, B top right, C bottom left,
  D bottom right). `--mode both` (the default) draws lerp and slerp together: two rows, or two
  grids side by side with one blank column between them (lerp left, slerp right).
- `traverse CKPT`: one row per latent dimension, most informative first (mean KL per dimension
  over the validation encodings), each dimension swept over [-range, range] around the
  encoding of the first validation image.
- `manifold CKPT --data SPACE`: validation encodings (mu) in 2-D — the latent itself when it has
  one or two dimensions, else its first two principal components — coloured by a label; for a
  1-D or 2-D latent also `<out stem>_grid.png`, images decoded over the latent plane at the
  normal quantiles 5%..95% (Kingma & Welling 2014, fig. 4).
- `walk CKPT --out walk.gif`: a closed slerp path through `--anchors` random codes; frames are
  scaled up by the integer `gif_scale(H, W)` (nearest neighbour) so they are at least 128 px.
- `progress TRIAL_DIR`: the first `--n` validation images (column 0) and their reconstructions
  at each checkpoint still in the folder (one column per epoch, in epoch order).
- `neighbours CKPT --data SPACE`: `--n` samples beside their nearest training images, one row
  per sample: sample | nearest by pixel L2 | nearest by Inception pool3 distance (searched in
  the first `--pool` training images; their features are cached like FID's); plus
  `<out stem>_hist.png`, the nearest-neighbour distances of the samples against those of
  validation images (held out, so never memorised): samples much closer to the training set
  than validation images are is memorisation.

Conditional models: images read from files and codes drawn at random are decoded with the class
`--label` (default 0), as `vaetune sample` does; where validation images are used (traverse,
manifold, progress) their own labels go to the encoder and decoder; the samples of `neighbours`
get validation labels in a seeded random order, as FID does; a manifold's latent-plane grid uses
`--cond-label` (default 0).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from vaetune.errors import UserError

log = logging.getLogger(__name__)

PAD = 1  # white pixels between the images of a grid
FIG_DPI = 100


# ---------------------------------------------------------------------------------------------
# image grids


def grid_pixels(rows: int, cols: int, h: int, w: int, pad: int = PAD) -> tuple[int, int]:
    """(height, width) in pixels of a grid of rows x cols images of h x w."""
    return rows * (h + pad) + pad, cols * (w + pad) + pad


def make_grid(images: torch.Tensor, ncols: int) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> one (C', H', W') image, row-major, white between images."""
    from torchvision.utils import make_grid as tv_grid

    return tv_grid(images.detach().float().clamp(0, 1).cpu(), nrow=ncols, padding=PAD, pad_value=1.0)


def to_pil(image: torch.Tensor):
    """(C, H, W) in [0, 1] -> PIL image (L, RGB or RGBA)."""
    from PIL import Image

    arr = image.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    return Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (also used by the report)."""
    from vaetune.outputs import SOFTWARE

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI, metadata={"Software": SOFTWARE})
    return buf.getvalue()


def grid_png(images: torch.Tensor, ncols: int) -> bytes:
    """A grid of images (N, C, H, W) in [0, 1] as PNG bytes, marked as vaetune's (vaetune.outputs)."""
    from vaetune.outputs import png_info

    buf = io.BytesIO()
    to_pil(make_grid(images, ncols)).save(buf, format="PNG", pnginfo=png_info())
    return buf.getvalue()


def save_grid(images: torch.Tensor, ncols: int, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(grid_png(images, ncols))
    return out


def check_picture_size(model, images: int, arg: str, what: str) -> None:
    """Refuse a picture of `images` images of the model's shape that cannot fit in memory (as
    float32, twice: the decoded images and their grid), before anything is decoded."""
    from vaetune.machine import check_fits

    c, h, w = model.image_shape
    check_fits(2 * 4 * images * c * h * w, f"{arg}: {what} of {c}x{h}x{w}", f"give a smaller {arg}")


def blank(like: torch.Tensor, n: int = 1) -> torch.Tensor:
    """n white images shaped like one image of `like` (a separator in a grid)."""
    return torch.ones(n, *like.shape[-3:])


def gif_scale(h: int, w: int, target: int = 128) -> int:
    return max(1, target // max(h, w))


# ---------------------------------------------------------------------------------------------
# latent-space helpers


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


def class_labels(model, n: int, label: int | None) -> torch.Tensor | None:
    """Labels for a conditional model's decoder (`label`, default 0); None for an unconditional one."""
    if not model.num_classes:
        if label is not None:
            raise UserError("--label: this model is not conditional")
        return None
    label = 0 if label is None else label
    if not 0 <= label < model.num_classes:
        raise UserError(f"--label: got {label}; this model has classes 0..{model.num_classes - 1}")
    return torch.full((n,), label, dtype=torch.long)


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


# ---------------------------------------------------------------------------------------------
# interpolate


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


@torch.no_grad()
def interpolation_picture(model, config, paths: list[str], *, grid: bool, mode: str, steps: int,
                          label: int | None) -> tuple[torch.Tensor, int, list[str]]:
    """Images and columns of `vaetune interpolate`: rows A | steps | B, or steps x steps grids
    between four corners; one row or grid per mode (lerp and slerp side by side for "both")."""
    from vaetune.export import read_for_model

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
    if not grid:
        rows = [torch.cat([x[:1], interpolation_row(model, codes[0], codes[1], steps, m, y), x[1:]]) for m in modes]
        return torch.cat(rows), steps + 2, modes
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


# ---------------------------------------------------------------------------------------------
# traverse


@torch.no_grad()
def kl_order(model, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent dimensions by mean KL over the images, largest first: (order, kl per dim)."""
    from vaetune.losses import kl_per_dim

    mu, logvar = encode_all(model, x, y)
    kl = kl_per_dim(mu, logvar).mean(0)  # (D,)
    return torch.argsort(kl, descending=True, stable=True), kl


@torch.no_grad()
def traversal(model, base: torch.Tensor, dims: list[int], steps: int, span: float,
              y: torch.Tensor | None) -> torch.Tensor:
    """(len(dims) * steps, C, H, W): row i sweeps dimension dims[i] over [-span, span] from base."""
    values = torch.linspace(-span, span, steps)
    z = base.repeat(len(dims) * steps, 1)
    for i, d in enumerate(dims):
        z[i * steps:(i + 1) * steps, d] = values
    return model.decode(z, None if y is None else y[:1].expand(len(z)))


@torch.no_grad()
def traversal_picture(model, x: torch.Tensor, y: torch.Tensor | None, *, steps: int, span: float,
                      label: int | None) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """`vaetune traverse`: (images, dimension order by KL, KL per dimension) around the first image of x."""
    if steps < 2:
        raise UserError(f"--steps: got {steps}; give at least 2")
    check_picture_size(model, model.latent_dim * steps, "--steps", f"{model.latent_dim} rows of {steps} steps")
    y = y if model.num_classes else None
    order, kl = kl_order(model, x, y)
    yb = None
    if model.num_classes:
        yb = class_labels(model, 1, label) if label is not None else y[:1]
    base = model.encode(x[:1].float().div(255), yb)[0][0]
    return traversal(model, base, order.tolist(), steps, span, yb), order.tolist(), kl


# ---------------------------------------------------------------------------------------------
# manifold


def project_2d(mu: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    """(N, 2) coordinates and axis names: the latent itself for D <= 2, else its top 2 principal components."""
    d = mu.shape[1]
    if d == 1:
        jitter = torch.rand(len(mu), generator=torch.Generator().manual_seed(0)) - 0.5
        return torch.stack([mu[:, 0], jitter], 1), ["z[0]", "jitter (no meaning)"]
    if d == 2:
        return mu, ["z[0]", "z[1]"]
    centred = mu - mu.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    share = (s**2 / (s**2).sum()).tolist()
    return centred @ v[:2].T, [f"PC1 ({100 * share[0]:.0f}% of variance)", f"PC2 ({100 * share[1]:.0f}%)"]


def latent_plane(model, steps: int, y: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """Images decoded over a 1-D line or 2-D plane at normal quantiles 5%..95%; (images, columns)."""
    from scipy.stats import norm

    q = torch.tensor(norm.ppf(torch.linspace(0.05, 0.95, steps).numpy()), dtype=torch.float32)
    if model.latent_dim == 1:
        z = q[:, None]
    else:  # rows from high z[1] (top) to low, columns from low z[0] to high
        z = torch.stack([torch.stack([a, b]) for b in q.flip(0) for a in q])
    with torch.no_grad():
        return model.decode(z, None if y is None else y[:1].expand(len(z))), steps


def manifold_figure(coords: torch.Tensor, axes: list[str], labels: torch.Tensor | None, names: list[str],
                    label_name: str | None, title: str) -> bytes:
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6), dpi=FIG_DPI, layout="constrained")
    ax = fig.subplots()
    xy = coords.numpy()
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.7, color="steelblue")
    elif len(names) <= 10:
        # classes named after colours (the sprites' "colour") are drawn in their own colour
        named = all(matplotlib.colors.is_color_like(n) for n in names)
        cmap = matplotlib.colormaps["tab10"]
        for k, name in enumerate(names):
            sel = (labels == k).numpy()
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=12, alpha=0.8, color=name if named else cmap(k), label=name,
                           edgecolors="0.3" if named else "none", linewidths=0.4)
        ax.legend(title=label_name, fontsize=8, markerscale=2, loc="best")
    else:
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.75, c=labels.numpy(), cmap="viridis")
        fig.colorbar(sc, ax=ax, label=label_name)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return figure_png(fig)


@torch.no_grad()
def manifold_picture(model, data, x: torch.Tensor, y: torch.Tensor | None, *, label: str | None) -> bytes:
    """`vaetune manifold`: the validation encodings in 2-D, coloured by `label` (default: the first)."""
    mu, _ = encode_all(model, x, y if model.num_classes else None)
    coords, axes = project_2d(mu)
    label_name = label or data.primary_label
    labels, names = None, []
    if label_name is not None:
        if label_name not in data.labels:
            raise UserError(f"--label: got {label_name!r}; this data has labels: {', '.join(data.labels) or 'none'}")
        labels = data.labels[label_name][data.splits["val"]]
        names = data.label_names.get(label_name, [])
    title = f"{len(x)} validation encodings, {model.latent_dim}-D latent" + (" (PCA)" if model.latent_dim > 2 else "")
    return manifold_figure(coords, axes, labels, names, label_name, title)


# ---------------------------------------------------------------------------------------------
# walk


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


def save_gif(frames: torch.Tensor, out: Path, scale: int, ms_per_frame: int = 80) -> Path:
    from PIL import Image

    from vaetune.outputs import gif_comment

    pics = []
    for f in frames:
        if f.shape[0] == 4:  # composite on white: GIF has no partial transparency
            f = f[:3] * f[3:] + (1 - f[3:])
        im = to_pil(f.clamp(0, 1))
        pics.append(im.resize((im.width * scale, im.height * scale), Image.NEAREST).convert("RGB"))
    out.parent.mkdir(parents=True, exist_ok=True)
    pics[0].save(out, save_all=True, append_images=pics[1:], duration=ms_per_frame, loop=0, optimize=False,
                 comment=gif_comment())
    return out


# ---------------------------------------------------------------------------------------------
# progress


def trial_checkpoints(trial_dir: str | Path) -> list[tuple[int, Path]]:
    """(epoch, checkpoint file) of every checkpoint in a Ray trial folder (checkpoint_00000N/) or a
    `vaetune train --out` folder (checkpoint_epochNNNN/), in epoch order."""
    from vaetune.checkpoint import CHECKPOINT_FILE, load_checkpoint

    folder = Path(trial_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; pass a trial folder holding checkpoint_*/ folders")
    found = []
    for path in sorted(folder.glob(f"checkpoint_*/{CHECKPOINT_FILE}")):
        found.append((int(load_checkpoint(path)["epoch"]), path))
    if not found:
        raise UserError(f"{folder}: no checkpoint_*/{CHECKPOINT_FILE} inside; pass a Ray trial folder "
                        "(results/<name>/<trial>/) or the --out folder of vaetune train")
    return sorted(found)


@torch.no_grad()
def progress_picture(trial_dir: str | Path, n: int) -> tuple[torch.Tensor, int, list[int]]:
    """`vaetune progress`: n validation images, then their reconstructions at each checkpoint;
    (images row-major, columns, epochs)."""
    from vaetune.checkpoint import load_model

    if n < 1:
        raise UserError(f"--n: got {n}; give at least 1")
    checkpoints = trial_checkpoints(trial_dir)
    model, config, _ = load_model(checkpoints[0][1])
    _, x, y = load_val(config)
    x = x[:n]
    y = y[:n] if y is not None and model.num_classes else None
    columns = [x.float().div(255)]
    for _, path in checkpoints:
        model, _, _ = load_model(path)
        columns.append(model(x.float().div(255), y).recon)
    return torch.stack(columns, 1).flatten(0, 1), len(columns), [e for e, _ in checkpoints]


# ---------------------------------------------------------------------------------------------
# neighbours


def nearest_pixel(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, (distance, index) of its nearest bank image by RMS pixel difference in [0, 1]."""
    q = queries.float().flatten(1)
    best_d = torch.full((len(q),), float("inf"))
    best_i = torch.zeros(len(q), dtype=torch.long)
    for start in range(0, len(bank), chunk):
        b = bank[start:start + chunk].float().div(255).flatten(1)
        d, i = torch.cdist(q, b).min(1)
        better = d < best_d
        best_d[better], best_i[better] = d[better], i[better] + start
    return best_d / math.sqrt(q.shape[1]), best_i


def nearest_features(queries, bank) -> tuple[torch.Tensor, torch.Tensor]:
    d, i = torch.cdist(torch.as_tensor(queries), torch.as_tensor(bank)).min(1)
    return d.float(), i


def neighbours_hist(pixel: dict[str, torch.Tensor], feats: dict[str, torch.Tensor] | None) -> bytes:
    from matplotlib.figure import Figure

    panels = [("RMS pixel distance to the nearest training image", pixel)]
    if feats:
        panels.append(("Inception (pool3) distance to the nearest training image", feats))
    fig = Figure(figsize=(5 * len(panels), 4), dpi=FIG_DPI, layout="constrained")
    for ax, (title, dists) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        vals = torch.cat(list(dists.values()))
        bins = torch.linspace(float(vals.min()) * 0.95, float(vals.max()) * 1.05, 16).numpy()
        for (name, d), colour in zip(dists.items(), ["crimson", "steelblue"], strict=False):
            ax.hist(d.numpy(), bins=bins, alpha=0.55, color=colour,
                    label=f"{name} (median {float(d.median()):.3g})")
        ax.set_xlabel(title, fontsize=9)
        ax.set_ylabel("images")
        ax.legend(fontsize=8)
    return figure_png(fig)


@dataclass
class Neighbours:
    images: torch.Tensor  # row per sample: sample | nearest by pixels | nearest by Inception
    columns: int
    histogram: bytes  # PNG: nearest-neighbour distances of samples and of validation images
    pixel_samples: float  # median RMS pixel distance of samples to their nearest training image
    pixel_validation: float  # ... of held-out validation images
    pool: int | None  # training images searched by Inception distance (None: pixels only)

    @property
    def ratio(self) -> float:
        return self.pixel_samples / max(self.pixel_validation, 1e-12)


@torch.no_grad()
def neighbours(model, config, data, val_x: torch.Tensor, val_y: torch.Tensor | None, *, n: int, pool: int | None,
               inception: bool, seed: int) -> Neighbours:
    """`vaetune neighbours`: n samples beside their nearest training images, by pixels and Inception features."""
    from vaetune.metrics import FeatureExtractor
    from vaetune.metrics._features import quantize
    from vaetune.metrics._reference import reference_key, reference_stats

    if n < 1:
        raise UserError(f"--n: got {n}; give at least 1")
    if pool is not None and pool < 1:
        raise UserError(f"--pool: got {pool}; give at least 1 (or leave it out: all training images on a GPU, "
                        "256 on a CPU)")
    check_picture_size(model, 3 * n, "--n", f"{n} rows of 3 images")
    train_x, _ = data.subset("train")
    y = None
    if model.num_classes:  # validation labels in a seeded random order, as FID's samples get
        order = torch.randperm(len(val_y), generator=torch.Generator().manual_seed(seed))
        y = val_y[order][:n].repeat(math.ceil(n / len(val_y)))[:n]
    samples = quantize(model.sample(n, y, generator=torch.Generator().manual_seed(seed)))
    ref = val_x[:min(len(val_x), max(4 * n, 64))]  # held-out images: the distances of no memorisation
    px_s, px_i = nearest_pixel(samples.float().div(255), train_x)
    px_v, _ = nearest_pixel(ref.float().div(255), train_x)
    columns = [samples.float().div(255), train_x[px_i].float().div(255)]
    feats = None
    if inception:
        extractor = FeatureExtractor("auto")
        pool = min(pool or (len(train_x) if extractor.device.type == "cuda" else 256), len(train_x))
        index = data.splits["train"][:pool]
        key = reference_key(data.fingerprint, "train", index, pool, tuple(config.data.background))
        bank = reference_stats(train_x[:pool], key=key, cache_dir=config.data.cache_dir, extractor=extractor,
                               meta={"fingerprint": data.fingerprint, "split": "train", "use": "neighbours"})
        f_s, f_i = nearest_features(extractor.images(samples), bank.features)
        f_v, _ = nearest_features(extractor.images(ref[:n]), bank.features)
        columns.append(train_x[f_i].float().div(255))
        feats = {"samples": f_s, "validation images": f_v}
    return Neighbours(images=torch.stack(columns, 1).flatten(0, 1), columns=len(columns),
                      histogram=neighbours_hist({"samples": px_s, "validation images": px_v}, feats),
                      pixel_samples=float(px_s.median()), pixel_validation=float(px_v.median()),
                      pool=pool if inception else None)
