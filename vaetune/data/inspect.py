"""``vaetune data inspect SOURCE``: count, validate and preview a data source.

SOURCE is anything ``data.source`` accepts, or a search-space YAML whose ``data`` section is
used as is (its image size and channels, not the command's options). The command decodes (or
loads from the cache) exactly what training would, then prints the counts, the split sizes,
the skipped files with their reasons, the label counts and the cache location, and writes a
preview grid PNG.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import torch

from vaetune.data.cache import cache_path, skipped_path
from vaetune.data.imagedata import ImageData
from vaetune.data.load import load_data, skip_summary
from vaetune.spec import DataConfig, load_space

_PREVIEW = 64  # images in the preview grid
_LISTED = 20  # skipped files printed; all of them are in the .skipped.tsv file


def cmd_inspect(args: argparse.Namespace) -> int:
    cfg = _data_config(args)
    data = load_data(cfg)
    out = Path(args.out) if args.out else Path(cfg.cache_dir).expanduser() / "preview.png"
    _print_summary(data, cfg)
    _save_preview(data, out)
    print(f"preview:  {out}")
    return 0


def _data_config(args: argparse.Namespace) -> DataConfig:
    if Path(args.source).suffix.lower() in (".yaml", ".yml"):
        return load_space(args.source).default_config().data
    return DataConfig(source=args.source, image_size=args.image_size, channels=args.channels)


def _print_summary(data: ImageData, cfg: DataConfig) -> None:
    n, (c, h, w) = len(data), data.image_shape
    print(f"source:   {data.source}")
    print(f"images:   {n} usable, {len(data.skipped)} skipped; each {c}x{h}x{w} (resize: {cfg.resize})")
    print("splits:   " + ", ".join(f"{k} {len(v)}" for k, v in data.splits.items()))
    if data.skipped:
        print(f"skipped:  {skip_summary(data.skipped, top=10)}")
        for name, reason in data.skipped[:_LISTED]:
            print(f"  {name}\t{reason}")
        if len(data.skipped) > _LISTED:
            print(f"  ... and {len(data.skipped) - _LISTED} more")
    for label, values in data.labels.items():
        counts = Counter(values.tolist())
        names = data.label_names[label]
        print(f"label {label!r}: {len(names)} classes: "
              + ", ".join(f"{names[i]} {counts.get(i, 0)}" for i in range(len(names))))
    if not data.labels:
        print("labels:   none")
    print(f"cache:    {cache_path(cfg.cache_dir, data.fingerprint)}")
    print(f"skipped list: {skipped_path(cfg.cache_dir, data.fingerprint)}")


def _save_preview(data: ImageData, out: Path) -> None:
    from torchvision.utils import save_image

    if len(data) == 0:
        return
    # Evenly spaced images show the whole collection, not only its first folder.
    index = torch.linspace(0, len(data) - 1, min(_PREVIEW, len(data))).round().long().unique()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(data.images[index].float() / 255, out, nrow=8, padding=2, pad_value=0.5)
