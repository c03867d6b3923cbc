"""What `vaetune init` learns of a source of images (headers, a decoded sample) and of the machine."""

from __future__ import annotations

import logging
import math
import os
import random
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vaetune.errors import UserError
from vaetune.machine import cpu_count

log = logging.getLogger(__name__)

# What init learns of the images is measured with these (the rules that turn facts into choices
# are in _rules.py, which reads the facts)
ALPHA_SAMPLE = 200  # images decoded (seeded) to see whether transparency is really used
ALPHA_SAMPLE_SIZE = 64  # the sample is decoded at this side: JPEG draft decoding, cheap statistics
ALPHA_USED_SHARE = (
    0.2  # alpha counts as used when this share of sampled images has transparent pixels
)
# Alpha is kept (channels 4) only when compositing would erase the silhouette: this share of the
# opaque pixels of transparent images is within LIGHT_DISTANCE of the background colour.
LIGHT_SHARE_FOR_ALPHA = 0.15
LIGHT_DISTANCE = 24  # per RGB component, 0..255
SQUARE_TOLERANCE = 1.1  # an aspect ratio within [1/1.1, 1.1] counts as square
_GREY_MODES = ("1", "L", "LA", "La", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")


# --------------------------------------------------------------------------------------------
# Facts


@dataclass(frozen=True)
class Spread:
    """A distribution summarised for a comment: median and the 10th/90th percentiles."""

    median: float
    p10: float
    p90: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        import numpy as np

        v = np.asarray(values, dtype=float)
        p10, med, p90 = np.percentile(v, [10, 50, 90])
        return cls(float(med), float(p10), float(p90), float(v.min()), float(v.max()))


@dataclass(frozen=True)
class AlphaFacts:
    """What the header modes and a decoded sample say about transparency."""

    with_channel: int  # usable images whose header has an alpha channel or palette transparency
    sampled: int  # images decoded for the pixel statistics
    transparent: int  # sampled images with at least one pixel of alpha < 255
    transparent_share: float  # mean share of pixels with alpha < 128 in those images
    light_share: float  # share of their opaque pixels within LIGHT_DISTANCE of the background

    @property
    def used(self) -> bool:
        return self.sampled > 0 and self.transparent >= ALPHA_USED_SHARE * self.sampled

    @property
    def meaningful(self) -> bool:
        return self.used and self.light_share >= LIGHT_SHARE_FOR_ALPHA


@dataclass(frozen=True)
class SourceFacts:
    """Everything init knows about a source; every choice of :func:`suggest` cites these."""

    source: str  # as the user gave it: written into data.source
    usable: int
    skipped: list[tuple[str, str]]  # (name, reason): header check, and full decodes of the sample
    width: Spread
    height: Spread
    aspect: Spread  # width / height
    short: Spread  # each image's shorter side
    long: Spread  # each image's longer side
    square_share: float  # share of images within SQUARE_TOLERANCE of square
    modes: dict[str, int]  # Pillow header mode -> images
    labels: dict[str, int] = field(default_factory=dict)  # sub-folder -> images; empty: no labels
    alpha: AlphaFacts = field(default_factory=lambda: AlphaFacts(0, 0, 0, 0.0, 0.0))

    @property
    def grey(self) -> bool:
        return all(mode in _GREY_MODES for mode in self.modes)

    def side(self, resize: str) -> float:
        """The median side a resize mode scales to S: the longer for pad, the shorter for crop."""
        if resize == "pad":
            return self.long.median
        if resize == "crop":
            return self.short.median
        return math.sqrt(self.width.median * self.height.median)


@dataclass(frozen=True)
class Machine:
    """Cores and GPUs a search on this machine can use."""

    cpus: int
    gpus: int
    gpu_memory_gib: float | None = None  # the smallest GPU's; None: unknown (no GPU seen)
    gpu_name: str | None = None
    gpus_given: bool = False  # gpus came from --gpu, not from torch

    @property
    def kind(self) -> str:
        return "gpu" if self.gpus else "cpu"


def detect_machine(gpus: int | None = None) -> Machine:
    """Usable CPU cores (this process's affinity) and the GPUs torch sees; `gpus` overrides.

    Raises:
        UserError: a negative `gpus`.
    """
    if gpus is not None and gpus < 0:
        raise UserError(f"--gpu: got {gpus}; give the number of GPUs a search may use (0 or more)")
    cpus = cpu_count()
    import torch

    seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    props = [torch.cuda.get_device_properties(i) for i in range(seen)]
    memory = min(p.total_memory for p in props) / 2**30 if props else None
    return Machine(
        cpus=max(cpus, 1),
        gpus=seen if gpus is None else gpus,
        gpu_memory_gib=memory,
        gpu_name=props[0].name if props else None,
        gpus_given=gpus is not None,
    )


def inspect_source(
    path: str | os.PathLike, *, sample: int = ALPHA_SAMPLE, seed: int = 0
) -> SourceFacts:
    """Read the headers of every image of a folder or .zip, and decode a sample for transparency.

    Args:
        path: a folder of images (searched recursively, sub-folders are labels) or a .zip.
        sample: images decoded to measure transparency and catch files whose pixels are corrupt.
        seed: which images are sampled.

    Raises:
        UserError: the path does not exist, cannot be read, is neither a folder nor a .zip,
            holds no readable image (the message lists the file extensions it found), or fewer
            than data.min_images usable ones.
    """
    from vaetune.data.sources import FolderSource, ZipSource, source_scheme
    from vaetune.spec import DataConfig

    spec = str(path)
    scheme, _ = source_scheme(spec)  # a missing path or an odd file: the data module's own message
    if scheme not in ("folder", "zip"):
        raise UserError(f"{spec}: init reads a folder of images or a .zip, not a {scheme} source")
    if scheme == "folder":
        _check_readable(Path(spec).expanduser())
    cfg = DataConfig(source=spec, labels="auto")
    source = FolderSource(spec, cfg) if scheme == "folder" else ZipSource(spec, cfg)
    items = source.items()
    if not items:
        raise UserError(
            f"{spec}: no image files ({', '.join(_image_suffixes())}); "
            f"found {_extensions_found(spec, scheme)}"
        )
    headers, skipped = [], []
    for item in items:
        probe = _probe(item, cfg.min_side)
        if isinstance(probe, str):
            skipped.append((item.name, probe))
        else:
            headers.append((item, *probe))
    alpha, broken = _alpha_facts(headers, sample, seed, cfg.min_side)
    broken_names = {name for name, _ in broken}
    skipped += broken
    headers = [h for h in headers if h[0].name not in broken_names]
    if not headers:
        reasons = Counter(reason.split(":")[0] for _, reason in skipped)
        raise UserError(
            f"{spec}: no readable image among {len(items)} image files "
            f"({', '.join(f'{n} {r}' for r, n in reasons.most_common(3))})"
        )
    if len(headers) < cfg.min_images:  # the space init writes would stop at its own data check
        raise UserError(
            f"{spec}: {len(headers)} usable image{'s' if len(headers) != 1 else ''} ({len(skipped)} skipped); a "
            f"search needs at least {cfg.min_images} (data.min_images) to split into training and "
            "validation images; add images"
        )
    widths = [h[1] for h in headers]
    heights = [h[2] for h in headers]
    aspects = [w / h for w, h in zip(widths, heights, strict=True)]
    square = sum(1 / SQUARE_TOLERANCE <= a <= SQUARE_TOLERANCE for a in aspects) / len(aspects)
    labels = Counter(h[0].label for h in headers if h[0].label is not None)
    return SourceFacts(
        source=spec,
        usable=len(headers),
        skipped=skipped,
        width=Spread.of(widths),
        height=Spread.of(heights),
        aspect=Spread.of(aspects),
        short=Spread.of(list(map(min, widths, heights))),
        long=Spread.of(list(map(max, widths, heights))),
        square_share=square,
        modes=dict(Counter(h[3] for h in headers)),
        labels=dict(sorted(labels.items())),
        alpha=alpha,
    )


def _image_suffixes() -> tuple[str, ...]:
    from vaetune.data.decode import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def _check_readable(root: Path) -> None:
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise UserError(f"{root}: the folder cannot be read ({exc.strerror or exc})") from None


def _extensions_found(spec: str, scheme: str) -> str:
    """'12 .txt, 3 .csv' for the no-image message; hidden files are ignored as the source does."""
    if scheme == "zip":
        with zipfile.ZipFile(Path(spec).expanduser()) as z:
            names = [i.filename for i in z.infolist() if not i.is_dir()]
    else:
        names = []
        for _, dirs, files in os.walk(Path(spec).expanduser()):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            names += files
    names = [n for n in names if not any(p.startswith(".") for p in PurePosixPath(n).parts)]
    counts = Counter(PurePosixPath(n).suffix.lower() or "(no extension)" for n in names)
    if not counts:
        return "no files at all"
    return ", ".join(f"{n} {ext}" for ext, n in counts.most_common(8))


def _probe(item: Any, min_side: int) -> tuple[int, int, str, bool] | str:
    """(width, height, mode, has alpha) from the header alone, or why the file is skipped.

    The reasons are the decoder's (``vaetune.data.decode``), so init and a search list a bad
    file alike; pixels are not decoded here.
    """
    from vaetune.data.decode import ALPHA_MODES, InvalidImage, check_pixels, image_header

    try:
        with image_header(item.read()) as img:  # item.read: InvalidImage for a file too large to read
            if img.format != "JPEG":  # a JPEG is decoded at a reduced scale, within the limit (decode.py)
                check_pixels(img)
            (width, height), mode = img.size, img.mode
            alpha = mode in ALPHA_MODES or "transparency" in img.info
    except InvalidImage as exc:
        return exc.reason
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if min(width, height) < min_side:
        return f"too small: {width}x{height} < min_side {min_side}"
    return width, height, mode, alpha


def _alpha_facts(
    headers: list[tuple], sample: int, seed: int, min_side: int
) -> tuple[AlphaFacts, list]:
    """Decode a seeded sample: transparency statistics, and the sampled files that do not decode."""
    import numpy as np

    from vaetune.data.decode import DecodeSettings, InvalidImage, decode_image

    settings = DecodeSettings(
        image_size=ALPHA_SAMPLE_SIZE, channels=4, resize="fit", min_side=min_side
    )
    chosen = random.Random(seed).sample(headers, min(sample, len(headers)))
    transparent, shares, light, opaque, broken = 0, [], 0, 0, []
    for item, _w, _h, _mode, has_alpha in chosen:
        try:
            rgba = decode_image(item.read(), settings)  # (4, S, S) uint8
        except (InvalidImage, OSError) as exc:
            broken.append((item.name, getattr(exc, "reason", None) or f"unreadable: {exc}"))
            continue
        if not has_alpha or rgba[3].min() == 255:
            continue
        transparent += 1
        solid = rgba[3] >= 128  # (S, S)
        shares.append(1.0 - float(solid.mean()))
        near_white = (rgba[:3] >= 255 - LIGHT_DISTANCE).all(axis=0)  # (S, S)
        light += int((near_white & solid).sum())
        opaque += int(solid.sum())
    facts = AlphaFacts(
        with_channel=sum(h[4] for h in headers),
        sampled=len(chosen) - len(broken),
        transparent=transparent,
        transparent_share=float(np.mean(shares)) if shares else 0.0,
        light_share=light / opaque if opaque else 0.0,
    )
    return facts, broken


