"""What `vaetune data inspect SOURCE` shows of a loaded data set: counts, split sizes, skipped
files with their reasons, label counts and the cache location (as lines), and a preview grid.

The data is decoded (or loaded from the cache) exactly as training would load it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from vaetune.data.cache import cache_path, skipped_path
from vaetune.data.imagedata import ImageData
from vaetune.data.load import skip_summary
from vaetune.spec import DataConfig

_PREVIEW = 64  # images in the preview grid
_LISTED = 20  # skipped files listed; all of them are in the .skipped.tsv file


def summary_lines(data: ImageData, cfg: DataConfig) -> list[str]:
    n, (c, h, w) = len(data), data.image_shape
    lines = [f"source:   {data.source}",
             f"images:   {n} usable, {len(data.skipped)} skipped; each {c}x{h}x{w} (resize: {cfg.resize})",
             "splits:   " + ", ".join(f"{k} {len(v)}" for k, v in data.splits.items())]
    if data.skipped:
        lines.append(f"skipped:  {skip_summary(data.skipped, top=10)}")
        lines += [f"  {name}\t{reason}" for name, reason in data.skipped[:_LISTED]]
        if len(data.skipped) > _LISTED:
            lines.append(f"  ... and {len(data.skipped) - _LISTED} more")
    for label, values in data.labels.items():
        counts = Counter(values.tolist())
        names = data.label_names[label]
        lines.append(f"label {label!r}: {len(names)} classes: "
                     + ", ".join(f"{names[i]} {counts.get(i, 0)}" for i in range(len(names))))
    if not data.labels:
        lines.append("labels:   none")
    lines.append(f"cache:    {cache_path(cfg.cache_dir, data.fingerprint)}")
    lines.append(f"skipped list: {skipped_path(cfg.cache_dir, data.fingerprint)}")
    return lines


def save_preview(data: ImageData, out: Path) -> None:
    """A grid of up to 64 evenly spaced images (the whole collection, not only its first folder)."""
    from torchvision.utils import make_grid

    from vaetune.outputs import png_info
    from vaetune.viz import to_pil

    if len(data) == 0:
        return
    index = torch.linspace(0, len(data) - 1, min(_PREVIEW, len(data))).round().long().unique()
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = make_grid(data.images[index].float() / 255, nrow=8, padding=2, pad_value=0.5)  # (C, H', W')
    to_pil(grid).save(out, format="PNG", pnginfo=png_info())
