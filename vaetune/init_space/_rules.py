"""The rules behind `vaetune init`'s choices: constants, each saying where it comes from, and the
small functions that apply them to one key."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaetune.init_space._facts import Machine, SourceFacts

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
    from vaetune.spec import asha_rungs

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


