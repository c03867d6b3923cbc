"""A first search space for any folder (or .zip) of images, sized to the images and the machine.

Three steps, each usable on its own (``vaetune init`` runs them in order):

1. :func:`inspect_source` lists the source with the data module's own listing (so it sees the
   files and labels a search will see) and reads every image's **header** only (size, mode;
   Pillow's ``Image.open`` without ``load()``): counts, skipped files, sizes, aspect ratios,
   channels, labels. Whether transparency is actually *used* needs pixels, so a seeded sample of
   at most :data:`ALPHA_SAMPLE` images is decoded with the data module's decoder; 50 000 images
   cost 50 000 header reads and 200 decodes.
2. :func:`detect_machine` counts usable CPU cores and the GPUs torch sees (and their memory).
3. :func:`suggest` turns those facts into a search space (a plain mapping that
   :func:`vaetune.spec.space_from_dict` accepts) with a comment per choice saying which fact it
   follows from; :func:`render` writes it as commented YAML.

The rules are deliberately simple and stated where they are applied; every constant below says
where it comes from. Nothing here prints.
"""

from __future__ import annotations

import io
import logging
import math
import os
import random
import re
import textwrap
import warnings
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from vaetune.errors import UserError
from vaetune.models.conv import conv_depth

log = logging.getLogger(__name__)

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
SQUARE_SHARE_FOR_FIT = 0.9  # "fit" when this share of images is square: little to squeeze
UNIFORM_ASPECT_SPREAD = 1.25  # "pad" when p90/p10 of the aspect ratios is below this: one shape
# Sides init picks from: each divides the conv VAE's down-sampling (16 -> 4 px, 32/48 -> 4/6 px)
# and, from 64 up, the residual VAE's factor 8 (16 from 128), so spec's size rules always hold.
SIZES = (16, 32, 48, 64, 96, 128, 192, 256)
RESNET_FROM = 64  # the shipped spaces: conv for small images, residual VAE from 64 px (ygo)
GPU_MAX_SIZE = 128  # a first search; the shipped spaces stop at 128 (impressionism)
# CPU: about 0.9 Mpx/s of conv-VAE training per one-thread trial (benchmarks/README.md, 6: 1795
# images/s at 32 px for two trials), so 4.5 Mpx per epoch is about 5 s per epoch.
CPU_EPOCH_PIXELS = 4.5e6
TARGET_STEPS = {"cpu": 1000, "gpu": 5000}  # optimiser steps of a trial that ASHA lets finish
MAX_EPOCHS = {"cpu": 30, "gpu": 200}
MAX_BATCH = {
    "cpu": 64,
    "gpu": 128,
}  # CPU: more, smaller steps learn faster per second (sprites: 32)
MAX_TRIALS = {"cpu": 16, "gpu": 64}
# Images per FID/KID evaluation. CPU: as the sprites space ships; measured on a shared 2-core
# machine, one evaluation of 128 samples + 128 reconstructions inside a search took 190 s against
# ~10 s for an epoch of 3000 images at 32 px. GPU: 2048, where FID stops being biased.
MAX_FID_SAMPLES = {"cpu": 64, "gpu": 2048}
FID_UNBIASED_FROM = 2048  # FID below ~2048 images is biased: rank by KID (unbiased) instead
TRIALS_PER_GPU_SMALL = 4  # <= 64 px conv/resnet trials barely load a GPU (pokemon, villagers: 0.25)
TRIALS_PER_GPU_LARGE = 2  # larger images (ygo: 0.5)
SMALL_GPU_GIB = 16  # below this, half as many trials share a GPU
MAX_THREADS = (
    4  # a small VAE does not scale past a few torch threads; more trials use the cores better
)
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
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
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
        UserError: the path does not exist, cannot be read, is neither a folder nor a .zip, or
            holds no readable image (the message lists the file extensions it found).
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
    from PIL import Image, UnidentifiedImageError

    from vaetune.data.decode import _ALPHA_MODES

    try:
        data = item.read()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if len(data) == 0:
        return "empty file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                (width, height), mode = img.size, img.mode
                alpha = mode in _ALPHA_MODES or "transparency" in img.info
    except UnidentifiedImageError:
        return "not an image"
    except Image.DecompressionBombError as exc:
        return f"too large: {exc}"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"corrupt: {exc}"
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


# --------------------------------------------------------------------------------------------
# Choices


@dataclass
class Suggestion:
    """A search space as a mapping (sections -> keys) and a comment per dotted key."""

    space: dict[str, Any]
    comments: dict[str, str]
    facts: SourceFacts
    machine: Machine


def suggest(facts: SourceFacts, machine: Machine, *, name: str | None = None) -> Suggestion:
    """The search space init writes for these facts on this machine.

    Args:
        facts: from :func:`inspect_source`.
        machine: from :func:`detect_machine`.
        name: the search's name; None: the source's file or folder name.

    Returns:
        Suggestion whose ``space`` loads with :func:`vaetune.spec.space_from_dict`.
    """
    from vaetune.data.splits import split_counts
    from vaetune.spec import SplitConfig

    c: dict[str, str] = {}
    split, c["data.split"] = _split(facts.usable)
    counts = split_counts(facts.usable, SplitConfig(**split))
    data = _data_choices(facts, machine, split, counts["train"], c)
    model = _model_choices(facts, machine.kind, data["image_size"], c)
    train = _train_choices(facts.usable, machine.kind, counts, c)
    search, resources, train["num_threads"] = _search_choices(
        facts.usable, machine, data, model, train, c
    )
    space = {
        "name": name or _search_name(facts.source),
        "data": data,
        "model": model,
        "train": train,
        "search": search,
        "resources": resources,
    }
    return Suggestion(space=space, comments=c, facts=facts, machine=machine)


def _data_choices(
    facts: SourceFacts, machine: Machine, split: dict, n_train: int, c: dict[str, str]
) -> dict[str, Any]:
    resize, c["data.resize"] = _resize(facts)
    size, c["data.image_size"] = _image_size(facts, resize, n_train, machine)
    channels, c["data.channels"] = _channels(facts)
    data: dict[str, Any] = {
        "source": facts.source,
        "image_size": size,
        "channels": channels,
        "resize": resize,
    }
    if channels != 4 and facts.alpha.with_channel:
        data["background"] = [255, 255, 255]
        c["data.background"] = "transparent pixels are composited on white"
    labelled = len(facts.labels) >= 2
    data["labels"] = "folders" if labelled else "none"
    c["data.labels"] = (
        f"{len(facts.labels)} sub-folders: used by the manifold plots and a conditional model"
        if labelled
        else "no sub-folders to use as classes"
    )
    data["split"] = split
    return data


def _model_choices(facts: SourceFacts, kind: str, size: int, c: dict[str, str]) -> dict[str, Any]:
    model: dict[str, Any] = {}
    if size >= RESNET_FROM:
        model.update(arch="resnet", downsample=16 if size >= 128 else 8)
        c["model.arch"] = (
            f"{size} px: the residual VAE, as the shipped spaces use from {RESNET_FROM} px"
        )
        c["model.downsample"] = (
            f"{size} -> {size // model['downsample']} px of features before the latent"
        )
    else:
        model["arch"] = "conv"
        c["model.arch"] = (
            f"{size} px: the plain conv VAE ({size} -> {size >> conv_depth(size)} px in "
            f"{conv_depth(size)} stages), as the shipped spaces use below {RESNET_FROM} px"
        )
    model["width"] = {"choice": [16, 32] if kind == "cpu" and size < RESNET_FROM else [32, 64]}
    c["model.width"] = "channels of the first stage" + ("; small on a CPU" if kind == "cpu" else "")
    latent = _latent(facts.usable, size)
    model["latent_dim"] = {
        "choice": sorted({max(1, latent // 4), max(1, latent // 2), latent, latent * 2})
    }
    c["model.latent_dim"] = (
        f"around sqrt({facts.usable} images)/2 ~ {latent}, in powers of two: "
        "more images can fill more dimensions"
    )
    if len(facts.labels) >= 2:
        model["conditional"] = False
        c["model.conditional"] = (
            f"{len(facts.labels)} labels: set true (or {{choice: [false, true]}}) for "
            "a conditional VAE that samples a chosen class"
        )
    return model


def _train_choices(n: int, kind: str, counts: dict[str, int], c: dict[str, str]) -> dict[str, Any]:
    batch, epochs, c["train.batch_size"], c["train.epochs"] = _batch_and_epochs(
        counts["train"], kind
    )
    grace = _grace(epochs)
    fid_samples = min(counts["val"], MAX_FID_SAMPLES[kind])
    low_beta = 0.01 if n >= 1000 else 0.1
    warmup = 1 if epochs >= 10 else 0
    train = {
        "epochs": epochs,
        "batch_size": batch,
        "lr": {"loguniform": [0.0001, 0.003]},
        "lr_schedule": "cosine",
        "lr_warmup_epochs": warmup,
        "beta": {"loguniform": [low_beta, 4.0]},
        "beta_schedule": "linear",
        "warmup_epochs": {"uniform": [0, max(1, epochs // 3)]},
        "recon_loss": "bce",
        "grad_clip": 5.0,
        "fid_every": epochs,
        "fid_samples": fid_samples,
        "fid_reference": "val",
        "grid_every": grace,
        "checkpoint_every": grace,
    }
    c["train.lr"] = "AdamW learning rate, with cosine decay" + (
        " after a warm-up epoch" if warmup else ""
    )
    c["train.beta"] = "KL weight, 1 is the plain VAE; " + (
        f"{n} images: no lower than {low_beta}, a small set overfits with a weak prior"
        if low_beta > 0.01
        else "low values for sharp reconstructions, high for coherent samples"
    )
    c["train.warmup_epochs"] = (
        "epochs for beta to ramp up from 0: a warm-up keeps the latent open early"
    )
    c["train.fid_every"] = "FID/KID at the last epoch; the search adds ASHA's rung epochs"
    c["train.fid_samples"] = f"the validation split has {counts['val']} images" + (
        f"; {MAX_FID_SAMPLES[kind]} on a CPU, where one evaluation costs as much as many epochs"
        if kind == "cpu" and counts["val"] > fid_samples
        else ""
    )
    c["train.grid_every"] = "grids and checkpoints every first-rung interval"
    return train


def _grace(epochs: int) -> int:
    """ASHA's first rung: about a ninth of the epochs, so rungs at 1/9, 1/3 and all of them."""
    return max(1, round(epochs / 9))


def _search_choices(
    n: int, machine: Machine, data: dict, model: dict, train: dict, c: dict[str, str]
) -> tuple[dict[str, Any], dict[str, float], int]:
    """search, resources and train.num_threads."""
    kind, epochs, fid_samples = machine.kind, train["epochs"], train["fid_samples"]
    metric = "eval/fid_sample" if fid_samples >= FID_UNBIASED_FROM else "eval/kid_sample"
    concurrency, cpu, gpu, threads, c_res = _resources(machine, data["image_size"])
    trials = _pow2_clamp(math.sqrt(n) / 2, 4, MAX_TRIALS[kind])
    c["search.num_samples"] = (
        f"about sqrt({n})/2 trials, in [4, {MAX_TRIALS[kind]}] on a {kind.upper()} machine"
    )
    if kind == "gpu" and trials < 2 * concurrency:
        trials = 2 * concurrency
        c["search.num_samples"] = f"two rounds of {concurrency} concurrent trials"
    latent = _latent(n, data["image_size"])
    search = {
        "metric": metric,
        "mode": "min",
        "sampler": "tpe",
        "num_samples": trials,
        "max_concurrent": concurrency,
        "scheduler": "asha",
        "grace_period": _grace(epochs),
        "reduction_factor": 3,
        "max_t": epochs,
        "points_to_evaluate": [
            {
                "train.beta": 1.0,
                "model.latent_dim": latent,
                "train.lr": 0.001,
                "train.warmup_epochs": 0,
                "model.width": model["width"]["choice"][-1],
            }
        ],
    }
    c["search.metric"] = (
        f"KID of samples: {fid_samples} images per evaluation, and FID below "
        f"~{FID_UNBIASED_FROM} is biased while KID is not"
        if metric == "eval/kid_sample"
        else f"FID of samples on {fid_samples} images (unbiased enough from {FID_UNBIASED_FROM})"
    )
    c["search.grace_period"] = (
        f"ASHA compares trials at epochs {_rungs(_grace(epochs), epochs)} and stops the "
        "weaker two thirds at each"
    )
    c["search.points_to_evaluate"] = "a plain VAE first, as a reference point"
    c.update(c_res)
    return search, {"cpu": cpu, "gpu": gpu}, threads


def _search_name(source: str) -> str:
    stem = Path(source.rstrip("/\\")).expanduser().resolve().name
    stem = stem[:-4] if stem.lower().endswith(".zip") else stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.") or "search"


def _resize(f: SourceFacts) -> tuple[str, str]:
    a = f.aspect
    shape = f"aspect ratio (w/h) median {a.median:.2f}, 10-90% {a.p10:.2f}..{a.p90:.2f}"
    if f.square_share >= SQUARE_SHARE_FOR_FIT:
        return (
            "fit",
            f"{f.square_share:.0%} of images are square within 10% ({shape}): "
            "nothing to keep or cut",
        )
    if a.p90 / a.p10 <= UNIFORM_ASPECT_SPREAD:
        return "pad", (
            f"one non-square shape ({shape}): pad keeps the whole image, and the bars are "
            "the same in every image, so they cost the model nothing"
        )
    return "crop", (
        f"mixed shapes ({shape}): crop keeps the centre square; padding would add bars "
        "of a different size to each image for the model to reproduce"
    )


def _split(n: int) -> tuple[dict[str, float], str]:
    if n < 500:
        return {"train": 0.8, "val": 0.2, "test": 0.0}, (
            f"{n} images: a large validation share for a usable FID/KID reference, no test split "
            "(hold a test folder out yourself)"
        )
    if n < 2000:
        return {"train": 0.85, "val": 0.15, "test": 0.0}, (
            f"{n} images: 15% validation (a usable FID/KID reference), no test split"
        )
    if n < 20000:
        return {"train": 0.8, "val": 0.1, "test": 0.1}, f"{n} images: the usual 80/10/10"
    return {
        "train": 0.9,
        "val": 0.05,
        "test": 0.05,
    }, f"{n} images: 5% is already {n // 20} validation images"


def _image_size(f: SourceFacts, resize: str, n_train: int, machine: Machine) -> tuple[int, str]:
    side = f.side(resize)
    fitting = [s for s in SIZES if s <= side] or [SIZES[0]]
    size = fitting[-1]
    why = f"median {f.width.median:.0f}x{f.height.median:.0f} px ({resize} scales to {side:.0f} px)"
    if size > GPU_MAX_SIZE:
        size, why = GPU_MAX_SIZE, why + f"; capped at {GPU_MAX_SIZE} px for a first search"
    if machine.kind == "cpu":
        while size > SIZES[0] and n_train * size**2 > CPU_EPOCH_PIXELS:
            size = SIZES[SIZES.index(size) - 1]
        if size < fitting[-1]:
            why += (
                f"; no GPU: {n_train} training images x {size}^2 px keeps an epoch near 5 s "
                f"(at {fitting[-1]} px it would be "
                f"{n_train * fitting[-1] ** 2 / CPU_EPOCH_PIXELS * 5:.0f} s)"
            )
    if side < SIZES[0]:
        why += f"; images are smaller than {SIZES[0]} px and are scaled up"
    return size, why


def _channels(f: SourceFacts) -> tuple[int, str]:
    a = f.alpha
    if a.with_channel == 0:
        if f.grey:
            return 1, "every image is greyscale"
        return 3, "no image has an alpha channel"
    seen = (
        f"{a.with_channel} images have an alpha channel; in a decoded sample of {a.sampled}, "
        f"{a.transparent} have transparent pixels"
    )
    if not a.used:
        return (1 if f.grey else 3), f"{seen}: alpha is barely used, so it is composited away"
    seen += f" ({a.transparent_share:.0%} of their area)"
    if a.meaningful:
        return 4, (
            f"{seen} and {a.light_share:.0%} of their opaque pixels are near white: "
            "compositing on white would erase those silhouettes, so alpha is kept"
        )
    return (1 if f.grey else 3), (
        f"{seen}, but only {a.light_share:.0%} of their opaque pixels are near white: "
        "composited on white the silhouettes survive, and Inception sees RGB anyway"
    )


def _latent(n: int, size: int) -> int:
    return min(_pow2_clamp(math.sqrt(n) / 2, 2, 128), max(2, size * size // 16))


def _pow2_clamp(x: float, low: int, high: int) -> int:
    return int(min(max(2 ** round(math.log2(max(x, 1e-9))), low), high))


def _batch_and_epochs(n_train: int, kind: str) -> tuple[int, int, str, str]:
    batch = max(8, min(MAX_BATCH[kind], 2 ** int(math.log2(max(n_train / 4, 1)))))
    steps = math.ceil(n_train / batch)
    wanted = TARGET_STEPS[kind] / steps
    epochs = int(min(max(round(wanted), 3), MAX_EPOCHS[kind]))
    why_batch = f"{n_train} training images: at least 4 steps an epoch" + (
        f", at most {MAX_BATCH[kind]} on a CPU" if kind == "cpu" else ""
    )
    why_epochs = (
        f"{steps} steps an epoch; about {TARGET_STEPS[kind]} steps for a trial ASHA keeps"
        + (
            f", at most {MAX_EPOCHS[kind]} epochs on a {kind.upper()} machine"
            if wanted > MAX_EPOCHS[kind]
            else ""
        )
    )
    return batch, epochs, why_batch, why_epochs


def _rungs(grace: int, max_t: int) -> str:
    from vaetune.search import asha_rungs

    return ", ".join(map(str, asha_rungs(grace, 3, max_t) or [max_t]))


def _resources(m: Machine, size: int) -> tuple[int, float, float, int, dict[str, str]]:
    """(max_concurrent, resources.cpu, resources.gpu, train.num_threads, comments)."""
    c: dict[str, str] = {}
    if not m.gpus:
        # benchmarks/README.md, 6: two 1-thread trials train 1.1-1.4x the images/s of one
        # 2-thread trial
        concurrency = max(1, m.cpus)
        threads = 1
        c["search.max_concurrent"] = f"{m.cpus} CPU cores, one trial each"
        c["train.num_threads"] = (
            "one torch thread per trial: parallel trials use the cores better than threads"
        )
        c["resources.gpu"] = "no GPU seen" + (" (--gpu 0)" if m.gpus_given else "")
        return concurrency, float(threads), 0.0, threads, c
    fit = TRIALS_PER_GPU_SMALL if size <= 64 else TRIALS_PER_GPU_LARGE
    if m.gpu_memory_gib is not None and m.gpu_memory_gib < SMALL_GPU_GIB:
        fit = max(1, fit // 2)
    concurrency = min(m.gpus * fit, m.cpus)  # every trial needs a core to feed its GPU
    per_gpu = math.ceil(concurrency / m.gpus)
    threads = max(1, min(MAX_THREADS, m.cpus // concurrency))
    gpu = math.floor(100 / per_gpu) / 100  # 0.33 for 3: the fractions must fit in one GPU
    memory = f"{m.gpu_memory_gib:.0f} GiB each" if m.gpu_memory_gib else "memory unknown"
    source = "--gpu" if m.gpus_given else (m.gpu_name or "torch")
    c["search.max_concurrent"] = (
        f"{m.gpus} GPU(s) ({source}, {memory}) x {fit} {size} px trials each"
        + (
            f", but each trial needs one of the {m.cpus} CPU cores"
            if concurrency < m.gpus * fit
            else ""
        )
    )
    c["resources.gpu"] = f"{per_gpu} trial(s) per GPU" + (
        "; --set resources.gpu=0 to run on CPU" if m.gpus_given else ""
    )
    c["train.num_threads"] = f"{m.cpus} cores over {concurrency} trials"
    return concurrency, float(threads), gpu, threads, c


# --------------------------------------------------------------------------------------------
# YAML with comments


_COMMENT_COLUMN = 40
_WIDTH = 100


def render(s: Suggestion, out: str | os.PathLike) -> str:
    """The commented YAML of a suggestion: facts in the header, a why per choice, the command last.

    Args:
        s: from :func:`suggest`.
        out: where the file will be written, for the closing command line.
    """
    lines = [f"# {line}" if line else "#" for line in _header(s)]
    lines.append("")
    for key, value in s.space.items():
        if isinstance(value, dict):
            lines.append("")
            lines.append(f"{key}:")
            for sub, sub_value in value.items():
                lines.extend(_key_lines(f"{key}.{sub}", sub, sub_value, s.comments, indent="  "))
        else:
            lines.extend(_key_lines(key, key, value, s.comments, indent=""))
    lines += ["", f"# Run it: vaetune search {out}"]
    return "\n".join(lines) + "\n"


def _key_lines(
    dotted: str, key: str, value: Any, comments: dict[str, str], indent: str
) -> list[str]:
    if isinstance(value, list) and value and isinstance(value[0], dict):  # points_to_evaluate
        body = [f"{indent}{key}:"] + [f"{indent}  - {_flow(v)}" for v in value]
    else:
        body = [f"{indent}{key}: {_flow(value)}"]
    comment = comments.get(dotted)
    if not comment:
        return body
    if len(body) == 1 and len(comment) + max(len(body[0]), _COMMENT_COLUMN) + 3 <= _WIDTH:
        return [body[0].ljust(_COMMENT_COLUMN) + " # " + comment]
    wrapped = textwrap.wrap(comment, _WIDTH - len(indent) - 2)
    return [f"{indent}# {line}" for line in wrapped] + body


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _header(s: Suggestion) -> list[str]:
    f, m = s.facts, s.machine
    lines = [
        f"A first search space for {f.source}, written by `vaetune init` from what it found there",
        "and on this machine. Every choice below says which fact it follows from; edit freely.",
        "",
        f"Images: {f.usable} usable, {len(f.skipped)} skipped",
    ]
    for name, reason in f.skipped[:10]:
        lines.append(f"  skipped {name}: {reason}")
    if len(f.skipped) > 10:
        lines.append(f"  ... and {len(f.skipped) - 10} more (vaetune data inspect lists them all)")
    w, h, a = f.width, f.height, f.aspect
    lines += [
        f"Size: width median {w.median:.0f} px ({_range(w)}), "
        f"height median {h.median:.0f} px ({_range(h)})",
        f"Aspect ratio w/h: median {a.median:.2f} (10-90% {a.p10:.2f}..{a.p90:.2f}); "
        f"{f.square_share:.0%} square within 10%",
        "Modes: "
        + ", ".join(f"{mode} {k}" for mode, k in sorted(f.modes.items(), key=lambda kv: -kv[1])),
    ]
    al = f.alpha
    lines.append(
        f"Alpha: {al.with_channel} images have an alpha channel; a seeded sample of {al.sampled} "
        f"decoded images (transparency needs pixels; sizes come from headers alone) has "
        f"{al.transparent} with transparent pixels"
    )
    if f.labels:
        shown = ", ".join(f"{k} {v}" for k, v in list(f.labels.items())[:12])
        more = f", ... ({len(f.labels)} in all)" if len(f.labels) > 12 else ""
        lines.append(f"Labels (sub-folders): {shown}{more}")
    else:
        lines.append("Labels: none (images are not in two or more sub-folders)")
    gpus = (
        (
            f"{m.gpus} GPU(s)"
            + (" (--gpu)" if m.gpus_given else "")
            + (f", {m.gpu_name}" if m.gpu_name else "")
            + (f", {m.gpu_memory_gib:.0f} GiB" if m.gpu_memory_gib else "")
        )
        if m.gpus
        else "no GPU"
    )
    lines.append(f"Machine: {m.cpus} CPU cores, {gpus}")
    wrapped: list[str] = []
    for line in lines:
        cont = "  " if line.startswith("  ") else ""
        wrapped += textwrap.wrap(line, _WIDTH - 2, subsequent_indent=cont + "  ") or [""]
    return wrapped


def _range(s: Spread) -> str:
    return f"10-90% {s.p10:.0f}..{s.p90:.0f}, {s.low:.0f}..{s.high:.0f}"
