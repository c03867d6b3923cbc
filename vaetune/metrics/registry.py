"""Every metric a trial reports, once: its name, which way is better, how it is shown, and what
produces it.

Tables (the KL-weight table's columns, the report's trial list), `vaetune export --metric`, the
search's scheduler and sampler modes, and the validation of `search.metric` all read this
registry: a metric is named, ranked, shown and placed in the KL table here, and nowhere else. Its
value comes from its producer (docs/architecture.md, "Add a metric": a `val/` one is a function
registered in vaetune/train/_validate.py). The names follow CleanRL's prefixes:
`train/` (the training loop, every epoch), `val/` (the validation split, every epoch), `eval/`
(the generative evaluation: FID/KID, precision and recall from Inception features, only when
`train.fid_every > 0`; the `_gmm` ones of samples from the fitted latent prior, only when
`train.prior` is gmm too), and a few bare names for the schedule and the clock.

This module imports nothing heavy: the spec validates against it before torch or Ray are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from vaetune.samplers import GMM, NORMAL, Sampler
from vaetune.samplers import get as get_sampler

Mode = Literal["min", "max"]
# What produces a metric, which decides when a trial reports it:
#   loop, validation, schedule, timing: every epoch; generative: at FID evaluations, carried
#   between them (needs train.fid_every > 0); gpu: every epoch on CUDA only.
Producer = Literal["loop", "validation", "generative", "schedule", "timing", "gpu"]
# The KL-weight table's column groups, in the table's order (a metric's `table` names its group):
# reconstruction quality, the samples of each sampler (vaetune.samplers: N(0, I), the fitted
# mixture), the FID of reconstructions, and the rate (KL, active units).
TableGroup = Literal["quality", "normal", "gmm", "recon", "rate"]
TABLE_GROUPS: tuple[TableGroup, ...] = ("quality", NORMAL.name, GMM.name, "recon", "rate")


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # column header in tables
    mode: Mode  # the better direction when trials are ranked by it
    fmt: str  # how a value is shown
    producer: Producer
    doc: str  # meaning and units, for the docs and --help texts
    descriptive: bool = False  # a table shows it but never calls one value "best" (KL, active units)
    sampler: str | None = None  # a sample measure: the vaetune.samplers name its samples are drawn with
    table: TableGroup | None = None  # its column group in the KL-weight table (None: not a column)

    def format(self, value: float | None, missing: str = "—") -> str:
        return missing if value is None else self.fmt.format(value)

    @property
    def fitted(self) -> bool:
        """Whether it measures samples from the fitted mixture (train.prior gmm only)."""
        return self.sampler is not None and get_sampler(self.sampler).fitted


def of_sampler(name: str, sampler: Sampler) -> str:
    """A sample measure's name (of N(0, I)'s samples) for the samples of `sampler`:
    eval/fid_sample -> eval/fid_sample_gmm for the fitted mixture."""
    return name + sampler.suffix


# The metrics' names, written out here only: everything else imports them (a test holds to it).
TRAIN_LOSS, TRAIN_RECON, TRAIN_KL = "train/loss", "train/recon", "train/kl"  # the training loop
VAL_RECON, VAL_KL, VAL_ELBO = "val/recon", "val/kl", "val/elbo"  # the validation split
VAL_MSE, VAL_PSNR, VAL_SSIM, VAL_ACTIVE_UNITS = "val/mse", "val/psnr", "val/ssim", "val/active_units"
FID_SAMPLE, KID_SAMPLE, KID_SAMPLE_STD = "eval/fid_sample", "eval/kid_sample", "eval/kid_sample_std"  # N(0, I)'s
PRECISION, RECALL = "eval/precision", "eval/recall"
FID_RECON, FID_N = "eval/fid_recon", "eval/fid_n"
FID_SAMPLE_GMM, KID_SAMPLE_GMM = of_sampler(FID_SAMPLE, GMM), of_sampler(KID_SAMPLE, GMM)  # the fitted mixture's
PRECISION_GMM, RECALL_GMM = of_sampler(PRECISION, GMM), of_sampler(RECALL, GMM)
EVAL_EPOCH = "eval/epoch"  # when the carried eval/ values were measured: a time stamp, never a ranking
EPOCH, BETA, LR = "epoch", "beta", "lr"  # the schedule, at the epoch's end
# where a trial's time goes, per epoch (the rest of Tune's time_this_iter_s is start-up and waiting)
EPOCH_TIME, IMAGES_PER_S = "time/epoch_s", "time/train_images_per_s"
TRAIN_TIME, EVAL_TIME, CHECKPOINT_TIME = "time/train_s", "time/eval_s", "time/checkpoint_s"
GPU_PEAK_MEM, GPU_PEAK_RESERVED = "sys/gpu_peak_mem_mb", "sys/gpu_peak_reserved_mb"  # CUDA only

PR_KEYS = (PRECISION, RECALL)  # of the N(0, I) samples, beside eval/fid_sample
SAMPLE_KEYS = (FID_SAMPLE, KID_SAMPLE, *PR_KEYS)  # the measures of a set of samples

GMM_KEYS = tuple(of_sampler(k, GMM) for k in SAMPLE_KEYS)  # the same, z from the fitted mixture

# The sets of generated images an evaluation decodes and runs through Inception, each N images:
# samples from N(0, I), reconstructions of the reference images, samples from the fitted prior.
# An evaluation may decode only some (ASHA's rungs decode what ranks the trial): each measure
# comes from one set, and the reference images' statistics (cached) serve them all.
ImageSet = Literal["normal", "recon", "gmm"]
IMAGE_SETS: tuple[ImageSet, ...] = (NORMAL.name, "recon", GMM.name)
_SET_OF = {**dict.fromkeys((*SAMPLE_KEYS, KID_SAMPLE_STD), NORMAL.name), FID_RECON: "recon",
           **dict.fromkeys(GMM_KEYS, GMM.name)}


def image_sets(metrics) -> frozenset[ImageSet]:
    """The image sets an evaluation must decode to measure `metrics` (none for a val/ metric)."""
    return frozenset(_SET_OF[m] for m in metrics if m in _SET_OF)
_PR_DOC = "manifolds of k nearest neighbours in Inception features (Kynkäänniemi et al. 2019)"
_GMM_DOC = "z from the Gaussian mixture fitted to the training set's posterior means (train.prior)"

_METRICS = (
    Metric(TRAIN_LOSS, "train loss", "min", "{:.4g}", "loop", "the training objective per image, batch mean"),
    Metric(TRAIN_RECON, "train recon", "min", "{:.4g}", "loop", "reconstruction term per image (training batches)"),
    Metric(TRAIN_KL, "train KL", "min", "{:.3g}", "loop", "KL(q(z|x) || N(0, I)) in nats per image (training batches)",
           descriptive=True),
    Metric(VAL_RECON, "val recon", "min", "{:.4g}", "validation",
           "the configured reconstruction loss per image, validation split"),
    Metric(VAL_KL, "KL (nats)", "min", "{:.2f}", "validation", "KL(q(z|x) || N(0, I)) in nats per image (the rate)",
           descriptive=True, table="rate"),
    Metric(VAL_ELBO, "val −ELBO", "min", "{:.4g}", "validation",
           "negative ELBO per image: reconstruction summed over pixels plus KL"),
    Metric(VAL_MSE, "val MSE", "min", "{:.4g}", "validation", "mean squared error per pixel, [0, 1] units",
           table="quality"),
    Metric(VAL_PSNR, "PSNR (dB)", "max", "{:.2f}", "validation", "10 log10(1 / MSE) in dB, averaged over images",
           table="quality"),
    Metric(VAL_SSIM, "SSIM", "max", "{:.3f}", "validation", "mean structural similarity", table="quality"),
    Metric(VAL_ACTIVE_UNITS, "active units", "max", "{:.0f}", "validation",
           "latent dimensions with Cov_x(E[z|x]) > 0.01", descriptive=True, table="rate"),
    Metric(FID_SAMPLE, "FID samples", "min", "{:.1f}", "generative",
           "FID of samples decoded from z ~ N(0, I) against the reference split", sampler=NORMAL.name, table=NORMAL.name),
    Metric(FID_RECON, "FID recon", "min", "{:.1f}", "generative",
           "FID of reconstructions of the reference images", table="recon"),
    Metric(KID_SAMPLE, "KID samples", "min", "{:.4f}", "generative",
           "unbiased KID of samples from N(0, I) (mean over subsets)", sampler=NORMAL.name, table=NORMAL.name),
    Metric(KID_SAMPLE_STD, "KID std", "min", "{:.4f}", "generative", "spread of KID over subsets",
           descriptive=True),
    Metric(PRECISION, "precision", "max", "{:.3f}", "generative",
           f"fidelity: the share of N(0, I) samples inside the real images' manifold; {_PR_DOC}", sampler=NORMAL.name,
           table=NORMAL.name),
    Metric(RECALL, "recall", "max", "{:.3f}", "generative",
           f"coverage: the share of real images inside the N(0, I) samples' manifold; {_PR_DOC}", sampler=NORMAL.name,
           table=NORMAL.name),
    Metric(FID_SAMPLE_GMM, "FID GMM", "min", "{:.1f}", "generative",
           f"FID of samples decoded from {_GMM_DOC}", sampler=GMM.name, table=GMM.name),
    Metric(KID_SAMPLE_GMM, "KID GMM", "min", "{:.4f}", "generative",
           f"unbiased KID of samples decoded from {_GMM_DOC}", sampler=GMM.name, table=GMM.name),
    Metric(PRECISION_GMM, "precision GMM", "max", "{:.3f}", "generative",
           f"eval/precision of samples decoded from {_GMM_DOC}", sampler=GMM.name, table=GMM.name),
    Metric(RECALL_GMM, "recall GMM", "max", "{:.3f}", "generative",
           f"eval/recall of samples decoded from {_GMM_DOC}", sampler=GMM.name, table=GMM.name),
    Metric(FID_N, "FID N", "max", "{:.0f}", "generative", "images per set behind FID/KID", descriptive=True),
    Metric(EVAL_EPOCH, "FID epoch", "max", "{:.0f}", "generative",
           "the epoch whose model the eval/ values measured (they are carried to the epochs between)",
           descriptive=True),
    Metric(EPOCH, "epochs", "max", "{:.0f}", "schedule", "epochs completed", descriptive=True),
    Metric(BETA, "β", "min", "{:.3g}", "schedule", "the KL weight in effect at the epoch's end", descriptive=True),
    Metric(LR, "lr", "min", "{:.3g}", "schedule", "the learning rate at the epoch's end", descriptive=True),
    Metric(EPOCH_TIME, "s/epoch", "min", "{:.1f}", "timing", "wall seconds of the epoch, evaluation included"),
    Metric(TRAIN_TIME, "train s", "min", "{:.1f}", "timing",
           "wall seconds of the epoch's optimiser steps and validation pass"),
    Metric(EVAL_TIME, "eval s", "min", "{:.1f}", "timing",
           "wall seconds of the epoch's generative evaluation (FID/KID) and latent prior fit"),
    Metric(CHECKPOINT_TIME, "checkpoint s", "min", "{:.1f}", "timing",
           "wall seconds of the epoch's checkpoint and grid pictures"),
    Metric(IMAGES_PER_S, "images/s", "max", "{:.0f}", "timing", "training images per second"),
    Metric(GPU_PEAK_MEM, "GPU MB", "min", "{:.0f}", "gpu", "peak GPU memory allocated by tensors"),
    Metric(GPU_PEAK_RESERVED, "GPU reserved MB", "min", "{:.0f}", "gpu",
           "peak GPU memory held by PyTorch's allocator"),
)

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}
# Producers whose metrics can rank trials (search.metric, export --metric)
RANKING_PRODUCERS: tuple[Producer, ...] = ("loop", "validation", "generative")


def register_metric(metric: Metric) -> Metric:
    """Add `metric` after the entries above: what one more entry in `_METRICS` does, for code
    outside the package (a test, a notebook; a search's Ray workers see only the package's).
    A generative metric belongs in `_METRICS`: the tuples of generative names are built at import."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is registered already")
    if metric.producer == "generative":
        raise ValueError(f"{metric.name}: a generative metric is an entry of _METRICS in {__name__}")
    METRICS[metric.name] = metric
    return metric


def get(name: str) -> Metric:
    """The registered metric `name`; KeyError naming the known ones otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def mode_of(name: str) -> Mode:
    """The better direction of `name` ("min" for a metric the registry does not know)."""
    metric = METRICS.get(name)
    return metric.mode if metric is not None else "min"


def against_direction(name: str, mode: str) -> Metric | None:
    """The registered metric `name` when ranking by `mode` puts its worst value first (val/elbo by
    max); None when `mode` is its better direction, or it is unknown or descriptive (val/kl: no value
    of it is better)."""
    metric = METRICS.get(name)
    if metric is None or metric.descriptive or mode == metric.mode:
        return None
    return metric


def direction_words(metric: Metric) -> str:
    """`better lower (min)`: a metric's better direction, as messages say it."""
    return f"better {'lower' if metric.mode == 'min' else 'higher'} ({metric.mode})"


def produced_by(*producers: Producer) -> tuple[str, ...]:
    """Names of the metrics of these producers, in registry order."""
    return tuple(m.name for m in METRICS.values() if m.producer in producers)


def table_columns() -> tuple[str, ...]:
    """The KL-weight table's metric columns: group by group (TABLE_GROUPS), in registry order
    within a group."""
    return tuple(m.name for group in TABLE_GROUPS for m in METRICS.values() if m.table == group)


def generative(prior_on: bool) -> tuple[str, ...]:
    """What a generative evaluation reports: the `_gmm` metrics only when a prior is fitted."""
    return tuple(name for name in GENERATIVE if prior_on or not METRICS[name].fitted)


def rankable(fid_on: bool, prior_on: bool) -> tuple[str, ...]:
    """Metrics a trial reports that can rank trials: `eval/` ones only when FID is computed, those
    of the fitted prior only when it is fitted too."""
    reported = generative(prior_on) if fid_on else ()
    return tuple(name for name in produced_by(*RANKING_PRODUCERS) if name != EVAL_EPOCH
                 and (name in reported or METRICS[name].producer != "generative"))


GENERATIVE: tuple[str, ...] = produced_by("generative")  # all a generative evaluation can report


def handed_sampler(ranked_by: Iterable[str], fitted: bool) -> Sampler:
    """The sampler a search hands its user: that of the first sample measure it ranks by (its
    search.metric, or its objectives); with none, the fitted mixture where one is fitted, else
    N(0, I)."""
    for name in ranked_by:
        metric = METRICS.get(name)
        if metric is not None and metric.sampler is not None:
            return get_sampler(metric.sampler)
    return GMM if fitted else NORMAL
