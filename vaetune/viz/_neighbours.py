"""Samples beside their nearest training images, by pixels and by Inception features, to expose memorisation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaetune.errors import UserError
from vaetune.viz._grids import FIG_DPI, check_picture_size, figure_png


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
    from vaetune.metrics import FeatureExtractor, quantize, reference_key, reference_stats

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
