"""The configuration's sections: typed, validated, unknown keys refused.

`Config` is what one trial runs: data, model, train, search, resources, tracking. The `model`
and `train` sections are the model stage's (vaetune.models): `model` is validated by the config
of the architecture `model.arch` names (each with its own options and image-size rule), and
`train.objective` names a loss registered there. Reading those registries imports torch;
`vaetune --help` never gets here.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import (
    Field,
    SerializeAsAny,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from vaetune.metrics import registry
from vaetune.models import DEFAULT_ARCH, MODELS, ModelConfig, TrainConfig
from vaetune.samplers import GMM, NORMAL, Sampler
from vaetune.sections import Section, one_of
from vaetune.spec._errors import CrossFieldError


class AugmentConfig(Section):
    hflip: float = Field(0.0, ge=0, le=1)  # probability of a horizontal flip
    vflip: float = Field(0.0, ge=0, le=1)  # probability of a vertical flip
    rotate: float = Field(0.0, ge=0, le=180)  # max rotation in degrees, uniform in [-r, r]
    brightness: float = Field(0.0, ge=0, le=1)  # colour jitter strengths, as torchvision's
    contrast: float = Field(0.0, ge=0, le=1)
    saturation: float = Field(0.0, ge=0, le=1)


class SplitConfig(Section):
    train: float = Field(0.8, gt=0, le=1)
    val: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


class DataConfig(Section):
    # a folder of images, a .zip, hf:NAME or a folder saved by `datasets`, or builtin:sprites
    source: str = "builtin:sprites"
    image_size: int = Field(32, ge=8, le=1024)  # square side in pixels after resizing
    channels: Literal[1, 3, 4] = 3  # 4 keeps alpha; 1/3 composite alpha on `background`
    background: tuple[int, int, int] = (255, 255, 255)  # RGB used to composite transparency
    # fit squeezes to a square, crop keeps the centre, pad letterboxes (docs/data.md, Resize modes)
    resize: Literal["fit", "crop", "pad"] = "fit"
    # auto: sub-folder names are the labels when there are two or more sub-folders
    labels: Literal["none", "folders", "auto"] = "auto"
    hf_image_column: str = "image"  # column of a Hugging Face dataset holding the images
    hf_label_column: str | None = None  # optional column used as class label
    count: int = Field(20000, ge=1)  # builtin:sprites only: number of images generated
    min_images: int = Field(16, ge=1)  # fewer usable images than this is an error
    min_side: int = Field(8, ge=1)  # images smaller than this (either side) are skipped
    split: SplitConfig = Field(default_factory=SplitConfig)  # fractions of the images, summing to 1
    split_seed: int = 0  # the split is a function of (this seed, N) only
    cache_dir: str = ".vaetune_cache"  # decoded uint8 tensors, keyed by source + settings
    augment: AugmentConfig = Field(default_factory=AugmentConfig)  # of batches, on the device

    @field_validator("background")
    @classmethod
    def _rgb(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(not 0 <= c <= 255 for c in v):
            raise ValueError("each colour component must be in 0..255")
        return v


def architecture_config(raw: Any) -> type[ModelConfig]:
    """The config class that validates a `model` section: the one registered for its `arch`.

    Raises:
        CrossFieldError: on model.arch, listing the registered architectures.
    """
    arch = raw.get("arch", DEFAULT_ARCH) if isinstance(raw, dict) else DEFAULT_ARCH
    if not (isinstance(arch, str) and arch in MODELS):
        raise CrossFieldError("model.arch", arch, f"input should be {one_of(MODELS)} "
                              "(the architectures registered in vaetune.models)")
    return MODELS[arch].config_class


class Bound(Section):
    """search.constraints: the bounds one metric must hold, e.g. {min: 5} for val/kl."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_bound_that_can_hold(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both, e.g. {min: 5}")
        for side in ("min", "max"):
            v = getattr(self, side)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{side} must be a finite number, not {v}")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max}): no value could hold both")
        return self


class SearchConfig(Section):
    # None: with train.fid_every > 0 the FID of the samples its user is handed (eval/fid_sample_gmm with
    # train.prior gmm, else eval/fid_sample), else val/elbo
    metric: str | None = None
    mode: Literal["min", "max"] | None = None  # None: the metric's own better direction
    # true: rank by search.mode (and search.modes) even against the direction the metric registry says is
    # better (val/elbo: min), which makes the worst trial "best"; without it such a mode is refused
    mode_override: bool = False
    # auto: chosen and sized for the trials, concurrency and space (vaetune.search._sampler);
    # or one of Optuna's samplers with Optuna's own settings (gp: its Gaussian-process sampler)
    sampler: Literal["auto", "tpe", "gp", "random", "cmaes", "nsga2", "grid"] = "auto"
    # with sampler auto, a new search's random start-up trials are configurations that did well on
    # other collections (vaetune.search._portfolio): auto, the shipped portfolio; a CSV file of the
    # same columns, one of your own (benchmarks/bench_portfolio.py writes one); none: random ones
    portfolio: str = "auto"
    # two or more objectives, e.g. [val/mse, eval/fid_sample]: Optuna searches their Pareto front
    # (search.metric then ranks checkpoints and, under ASHA, stops trials; unset: the first objective,
    # and the scheduler defaults to fifo)
    metrics: list[str] = Field(default_factory=list)
    modes: list[Literal["min", "max"]] = Field(default_factory=list)  # one per objective; unset: each metric's own
    # bounds a trial's final values must hold to count (feasible): {val/kl: {min: 5}}; Optuna's
    # constrained sampling (TPE, GP, NSGA-II) steers away from trials that break them
    constraints: dict[str, Bound] = Field(default_factory=dict)

    def bounds(self) -> dict[str, dict[str, float]]:
        """search.constraints as plain numbers: {val/kl: {min: 5.0}} (vaetune.ranking.Bounds)."""
        return {m: b.model_dump(exclude_none=True) for m, b in self.constraints.items()}
    num_samples: int = Field(8, ge=1)  # trials
    max_concurrent: int = Field(2, ge=1)  # trials running at once
    seed: int = 0
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(1, ge=1)  # ASHA, in epochs
    # what a trial measures at ASHA's rungs: ranking, only what ranks it (search.metric's images:
    # N samples for eval/fid_sample, with their KID, precision and recall); full, every measure.
    # Every measure is always taken at train.fid_every epochs and at the last epoch
    rung_eval: Literal["ranking", "full"] = "ranking"
    reduction_factor: float = Field(3.0, gt=1)  # ASHA
    max_t: int | None = Field(None, ge=1)  # ASHA, in epochs; None: train.epochs
    # configurations tried first, as dotted keys: [{train.beta: 1.0, model.latent_dim: 16}]
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)
    # the results folder of an earlier search on the same data and space: its finished trials reach
    # the sampler as observations, without running again (a subset of its keys, narrower ranges)
    warm_start: str | None = None
    # retries of a trial that crashed or lost its node, from its last checkpoint (not of a diverged one)
    max_failures: int = Field(2, ge=0)
    storage: str = "results"  # local path, shared path or s3:// URI for checkpoints and results
    # best N checkpoints kept per trial by the search metric, besides those of ASHA's rungs and
    # of the last epoch (always kept, for the report)
    keep_checkpoints: int = Field(2, ge=1)


class ResourcesConfig(Section):
    cpu: float = Field(1.0, gt=0)  # per trial
    gpu: float = Field(0.0, ge=0)  # per trial; 0.25 lets four trials share a GPU


class TrackingConfig(Section):
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else MLflow's own default (./mlflow.db)
    experiment: str | None = None  # None: the search name


NAME_MAX = 100  # a search's name is a folder name and an MLflow experiment name


class Config(Section):
    # the search's name: its folder results/<name>/ and its MLflow experiment
    name: str = "search"
    data: DataConfig = Field(default_factory=DataConfig)
    # the registered architecture's config, dumped with its own options (SerializeAsAny)
    model: SerializeAsAny[ModelConfig] = Field(default_factory=dict, validate_default=True)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @property
    def handed_sampler(self) -> Sampler:
        """The sampler (vaetune.samplers) this configuration's user is handed: the one whose samples
        rank its trials (vaetune.metrics.registry.handed_sampler)."""
        s = self.search
        return registry.handed_sampler([s.metric, *s.metrics], self.train.fits_prior)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, v: str) -> str:
        # it names results/<name>/ and runs/<name>/: nothing that leaves those folders or hides
        if not re.fullmatch(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}", v):
            bad = next((c for c in v if not re.fullmatch(r"[A-Za-z0-9_.-]", c)), None)
            which = f"{bad!r} is not one of them; " if bad is not None else ""
            raise ValueError(f"a name is 1-{NAME_MAX} of the ASCII letters A-Z and a-z, the digits 0-9, '_', '-' "
                             f"and '.', not starting with '.' or '-' ({which}it names the results folder and the "
                             "MLflow experiment)")
        return v

    @model_validator(mode="after")
    def _splits_hold_what_training_reads(self) -> Config:
        split, tc = self.data.split, self.train
        if split.val == 0:
            raise CrossFieldError("data.split.val", split.val, "every epoch validates: give the val split a share, "
                                  "e.g. {train: 0.8, val: 0.1, test: 0.1}")
        if tc.fid_every and getattr(split, tc.fid_reference) == 0:
            raise CrossFieldError(f"data.split.{tc.fid_reference}", 0, f"train.fid_reference is "
                                  f"{tc.fid_reference!r} and FID is on: give that split a share, or pick another")
        return self

    @field_validator("model", mode="wrap")
    @classmethod
    def _by_architecture(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> ModelConfig:
        if isinstance(value, ModelConfig):
            if type(value) is architecture_config({"arch": value.arch}):
                return value
            value = value.model_dump(exclude_unset=True)  # e.g. a plain ModelConfig: validate its keys
        if not isinstance(value, dict):
            return handler(value)  # pydantic's own message: a mapping is expected
        return architecture_config(value).model_validate(value)

    @model_validator(mode="after")
    def _architecture_fits_image(self) -> Config:
        size = self.data.image_size
        try:
            self.model.check_image_size(size)
        except ValueError as exc:
            raise CrossFieldError("data.image_size", size, str(exc)) from None
        self._resolve_objectives()
        self._resolve_metrics()
        self._check_points_run()
        return self

    def _resolve_objectives(self) -> None:
        """Several objectives: a sampler that takes them, and one number for ASHA (search.metric,
        declared; without it the search runs FIFO), checked before search.metric gets its default."""
        s = self.search
        if len(s.metrics) == 1:
            raise CrossFieldError("search.metrics", s.metrics, "give two or more objectives (for one, set "
                                  "search.metric)")
        if len(set(s.metrics)) != len(s.metrics):
            raise CrossFieldError("search.metrics", s.metrics, "each objective once")
        if s.sampler == "nsga2" and not s.metrics:
            raise CrossFieldError("search.metrics", s.metrics, "nsga2 needs at least two metrics")
        if len(s.modes) not in (0, len(s.metrics)):
            raise CrossFieldError("search.modes", s.modes, "give one mode per entry of search.metrics")
        if s.sampler == "cmaes" and (s.metrics or s.constraints):
            what = "search.metrics" if s.metrics else "search.constraints"
            raise CrossFieldError("search.sampler", s.sampler, f"Optuna's CMA-ES takes one objective and no "
                                  f"constraints, and {what} is set: use auto, tpe, gp or nsga2")
        if not s.metrics:
            return
        if s.scheduler == "asha" and "metric" not in s.model_fields_set:
            if "scheduler" in s.model_fields_set:
                raise CrossFieldError("search.scheduler", s.scheduler, "ASHA stops trials by one number: name "
                                      f"it with search.metric (e.g. {s.metrics[0]}), or set search.scheduler: fifo")
            s.scheduler = "fifo"
        if s.metric is None:
            s.metric = s.metrics[0]

    def _resolve_metrics(self) -> None:
        """The search metric(s) must be ones a trial of this config reports; unset ones get defaults
        (the metric: when FID is on, the FID of the samples its user is handed — from the fitted
        mixture when one is fitted, else from N(0, I) — else val/elbo; the mode: the metric's own)."""
        s, fid_on, prior_on = self.search, bool(self.train.fid_every), self.train.fits_prior
        if s.metric is None:
            s.metric = registry.of_sampler(registry.FID_SAMPLE, GMM if prior_on else NORMAL) if fid_on else registry.VAL_ELBO
        reported = registry.rankable(fid_on, prior_on)
        for key, metric in [("search.metric", s.metric), *(("search.metrics", m) for m in s.metrics),
                            *(("search.constraints", m) for m in s.constraints)]:
            if metric in reported:
                continue
            if metric in registry.rankable(True, prior_on):
                raise CrossFieldError(key, metric, "an eval/ metric (FID, KID) needs train.fid_every > 0")
            if metric in registry.rankable(True, True):
                raise CrossFieldError(key, metric, "a metric of the fitted prior needs "
                                      "train.prior: gmm (and train.fid_every > 0)")
            raise CrossFieldError(key, metric, f"a trial reports: {', '.join(reported)}")
        if s.metrics and not s.modes:
            s.modes = [registry.mode_of(m) for m in s.metrics]
        self._check_modes()
        if s.mode is None:
            s.mode = s.modes[s.metrics.index(s.metric)] if s.metric in s.metrics else registry.mode_of(s.metric)

    def _check_modes(self) -> None:
        """A mode given against the registry's better direction of its metric ranks the worst trial
        first: refused unless search.mode_override says it is meant (a descriptive metric, such as
        val/kl, has no better direction and takes either)."""
        s = self.search
        given = [("search.mode", s.metric, s.mode),
                 *(("search.modes", m, mode) for m, mode in zip(s.metrics, s.modes, strict=True))]
        for key, metric, mode in given:
            known = None if mode is None or s.mode_override else registry.against_direction(metric, mode)
            if known is None:
                continue
            default = f"it defaults to {known.mode}" if key == "search.mode" else "each defaults to its metric's own"
            raise CrossFieldError(key, s.modes if key == "search.modes" else mode,
                                  f"{metric} is {registry.direction_words(known)} by the metric registry, so "
                                  f"{mode} would rank its worst trial best: leave {key} unset ({default}), or set "
                                  "search.mode_override: true to rank that way on purpose")

    def _check_points_run(self) -> None:
        """Each point to evaluate is a trial: a list longer than the trials would be cut short."""
        s = self.search
        if len(s.points_to_evaluate) > s.num_samples:
            k = len(s.points_to_evaluate)
            raise CrossFieldError("search.num_samples", s.num_samples,
                                  f"search.points_to_evaluate lists {k} points, each a trial of its own, so "
                                  f"{k - s.num_samples} of them would never run: give search.num_samples at least "
                                  f"{k}, or list fewer points (search.points_to_evaluate: [] drops them all)")
