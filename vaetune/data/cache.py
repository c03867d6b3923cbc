"""The on-disk cache of decoded data sets: one file per (source fingerprint, preprocessing).

``<cache_dir>/<fingerprint>.pt`` holds the uint8 (N, C, H, W) images with their labels, factors
and skipped files (``torch.save``; loaded with ``weights_only=True``, so a cache file cannot run
code). ``<cache_dir>/<fingerprint>.skipped.tsv`` lists the skipped files and why, for people.

The key covers what changes the decoded pixels or labels (source contents, image size, channels,
background, resize mode, label settings, min_side) and nothing else: the split and the
augmentation are applied after loading, so searching over them reuses one cache file. Writes go
to a temporary file that is then renamed (``os.replace``), so trial processes racing to fill the
cache never read a half-written file; the last writer wins with identical contents.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vaetune.fileio import atomic_write

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when decoding changes what a cache file holds


@dataclass
class Decoded:
    """What a source decodes to; cached as is."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: dict[str, torch.Tensor] = field(default_factory=dict)
    label_names: dict[str, list[str]] = field(default_factory=dict)
    factors: dict[str, torch.Tensor] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def cache_key(source_fingerprint: str, settings: dict[str, Any]) -> str:
    """Hex digest of the source fingerprint and the preprocessing settings."""
    text = json.dumps({"format": CACHE_FORMAT, "source": source_fingerprint, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir).expanduser() / f"{key}.pt"


def skipped_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir).expanduser() / f"{key}.skipped.tsv"


def load_cached(path: Path) -> Decoded | None:
    """The cached data set at ``path``, or None when absent or unreadable (then re-decoded)."""
    if not path.is_file():
        return None
    try:
        raw = torch.load(path, weights_only=True)
        if raw.get("format") != CACHE_FORMAT:
            raise ValueError(f"cache format {raw.get('format')}, expected {CACHE_FORMAT}")
        return Decoded(raw["images"], raw["labels"], raw["label_names"], raw["factors"],
                       [tuple(s) for s in raw["skipped"]])
    except Exception as exc:  # a stale or foreign file must not stop training: decode again
        log.warning("ignoring unreadable cache file %s (%s)", path, exc)
        return None


def save_cached(path: Path, data: Decoded, source: str) -> None:
    """Write the cache file and the skipped list beside it, each atomically."""
    payload = {
        "format": CACHE_FORMAT,
        "source": source,
        "images": data.images.contiguous(),
        "labels": data.labels,
        "label_names": data.label_names,
        "factors": data.factors,
        "skipped": [list(s) for s in data.skipped],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(payload, f))
    lines = ["file\treason"] + [f"{_tsv(name)}\t{_tsv(reason)}" for name, reason in data.skipped]
    tsv = path.with_name(path.name.removesuffix(".pt") + ".skipped.tsv")
    atomic_write(tsv, lambda f: f.write(("\n".join(lines) + "\n").encode()))


def _tsv(text: str) -> str:
    return text.replace("\t", " ").replace("\n", " ")
