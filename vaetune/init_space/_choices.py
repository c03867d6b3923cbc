"""`vaetune init`'s choices: a search space from the facts, each key with the fact it follows from."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from vaetune.init_space._facts import Machine, SourceFacts
from vaetune.init_space._rules import (
    FID_UNBIASED_FROM,
    MAX_FID_SAMPLES,
    MAX_TRIALS,
    RESNET_FROM,
    _batch_and_epochs,
    _channels,
    _image_size,
    _latent,
    _pow2_clamp,
    _resize,
    _resources,
    _rungs,
    _search_name,
    _split,
)
from vaetune.metrics.registry import FID_SAMPLE, KID_SAMPLE, of_sampler
from vaetune.models import MODELS, config_for
from vaetune.models.conv import conv_depth
from vaetune.samplers import GMM

log = logging.getLogger(__name__)


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


def other_architectures(chosen: str, size: int) -> list[str]:
    """The registered architectures (vaetune.models) besides `chosen` that take `size` px images."""
    out = []
    for name in sorted(MODELS):
        if name == chosen:
            continue
        try:
            config_for(name).check_image_size(size)
        except ValueError:
            continue
        out.append(name)
    return out


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
    others = other_architectures(model["arch"], size)
    if others:
        c["model.arch"] += (f"; also registered for {size} px: {', '.join(others)} (set model.arch to one; "
                            "its options: docs/search-spaces.md)")
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
    # of the samples its user is handed: z from the mixture fitted to the training codes (train.prior: gmm)
    measure = FID_SAMPLE if fid_samples >= FID_UNBIASED_FROM else KID_SAMPLE
    metric = of_sampler(measure, GMM)
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
        "sampler": "auto",
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
        if measure == KID_SAMPLE
        else f"FID of samples on {fid_samples} images (unbiased enough from {FID_UNBIASED_FROM})"
    ) + f", with z from {GMM.words} as vaetune sample draws them"
    c["search.grace_period"] = (
        f"ASHA compares trials at epochs {_rungs(_grace(epochs), epochs)} and stops the "
        "weaker two thirds at each"
    )
    c["search.sampler"] = "chosen and sized for the trials and concurrency (the console says which)"
    c["search.points_to_evaluate"] = "a plain VAE first, as a reference point"
    c.update(c_res)
    return search, {"cpu": cpu, "gpu": gpu}, threads
