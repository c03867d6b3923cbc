"""What `vaetune data inspect SOURCE` shows of a loaded data set: counts, split sizes, skipped
files with their reasons, label counts and the cache location (as lines); its preview grid is
drawn by vaetune.viz.save_preview.

The data is decoded (or loaded from the cache) exactly as training would load it.
"""

from __future__ import annotations

from collections import Counter

from vaetune.data.cache import cache_path, skipped_path
from vaetune.data.imagedata import ImageData
from vaetune.data.load import skip_summary
from vaetune.spec import DataConfig

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
