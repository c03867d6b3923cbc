"""The configuration's sections: typed, validated, unknown keys refused.

`Config` is what one trial runs: data, model, train, search, resources, tracking. The `model`
section is validated by the config of the architecture `model.arch` names (registered in
vaetune.models, each with its own options and image-size rule); `train.objective` names a loss
registered in vaetune.objectives. Both registries are read when a config is validated, which
imports torch; `vaetune --help` never gets here.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from vaetune.spec._errors import CrossFieldError, one_of


class _Section(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info) -> Any:
        # pydantic would read true as 1: a boolean where a number belongs is a mistake to report
        if isinstance(value, bool) and _wants_number(cls.model_fields[info.field_name].annotation):
            raise ValueError("a boolean is not a number; give a number here")
        return value


def _wants_number(annotation: Any) -> bool:
    """Whether a field takes a number and not a boolean: int, float, their Optional, a Literal of numbers."""
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if args:  # X | None
        return any(_wants_number(a) for a in args if a is not type(None))
    return annotation in (int, float)


class AugmentConfig(_Section):
    hflip: float = Field(0.0, ge=0, le=1)  # probability of a horizontal flip
    vflip: float = Field(0.0, ge=0, le=1)  # probability of a vertical flip
    rotate: float = Field(0.0, ge=0, le=180)  # max rotation in degrees, uniform in [-r, r]
    brightness: float = Field(0.0, ge=0, le=1)  # colour jitter strengths, as torchvision's
    contrast: float = Field(0.0, ge=0, le=1)
    saturation: float = Field(0.0, ge=0, le=1)


class SplitConfig(_Section):
    train: float = Field(0.8, gt=0, le=1)
    val: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


class DataConfig(_Section):
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


class ModelConfig(_Section):
    """What every architecture takes. An architecture's own config (in its file in vaetune.models)
    subclasses this with its options and its image-size rule; `arch` picks which one validates the
    section, e.g. ``model: {arch: conv, latent_dim: 16, width: 32}``."""

    arch: str = "conv"  # an architecture registered in vaetune.models (one file each)
    latent_dim: int = Field(16, ge=1, le=4096)  # dimensions of z
    conditional: bool = False  # condition encoder and decoder on the class label (CVAE)
    logvar_clamp: float = Field(10.0, gt=0)  # logvar is clamped to [-c, c] for stability

    def check_image_size(self, size: int) -> None:
        """Raise ValueError, saying which sizes fit, if square images of side `size` do not fit
        this architecture. Every size fits unless an architecture says otherwise."""


DEFAULT_ARCH: str = ModelConfig.model_fields["arch"].default


def architecture_config(raw: Any) -> type[ModelConfig]:
    """The config class that validates a `model` section: the one registered for its `arch`.

    Raises:
        CrossFieldError: on model.arch, listing the registered architectures.
    """
    from vaetune.models import MODELS

    arch = raw.get("arch", DEFAULT_ARCH) if isinstance(raw, dict) else DEFAULT_ARCH
    if not (isinstance(arch, str) and arch in MODELS):
        raise CrossFieldError("model.arch", arch, f"input should be {one_of(MODELS)} "
                              "(the architectures registered in vaetune.models)")
    return MODELS[arch].config_class


# scikit-learn's covariance types of a Gaussian mixture (vaetune.prior)
PriorCovariance = Literal["full", "diag", "spherical", "tied"]


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: linear warm-up then cosine decay
    lr_warmup_epochs: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)  # AdamW's (decoupled)
    grad_clip: float | None = Field(None, gt=0)  # max global gradient norm; None disables
    recon_loss: Literal["mse", "bce"] = "mse"
    recon_reduction: Literal["sum", "mean"] = "sum"  # sum over pixels per image, or mean over pixels
    recon_weight: float = Field(1.0, gt=0)  # elbo: loss = recon_weight * recon + beta * KL
    # the loss, from vaetune.objectives: elbo (recon + beta * KL) | capacity (recon + gamma * |KL - C|)
    objective: str = "elbo"
    beta: float = Field(1.0, ge=0)  # KL weight (elbo)
    beta_schedule: Literal["constant", "linear", "cyclical"] = "constant"  # how the KL weight moves
    warmup_epochs: float = Field(0.0, ge=0)  # linear: epochs for beta to ramp 0 -> beta
    cycles: int = Field(4, ge=1)  # cyclical (Fu et al. 2019): number of cycles M over training
    cycle_ratio: float = Field(0.5, gt=0, le=1)  # cyclical: fraction R of a cycle spent ramping
    capacity_max: float = Field(25.0, ge=0)  # capacity (Burgess et al. 2018): C_max in nats
    capacity_epochs: float = Field(10.0, gt=0)  # capacity: epochs for C to reach C_max
    capacity_gamma: float = Field(100.0, gt=0)  # capacity: gamma in gamma * |KL - C|
    free_bits: float = Field(0.0, ge=0)  # elbo: nats per latent dimension not penalised
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["off", "bf16"] = "off"  # bf16: autocast on CUDA (ignored on CPU)
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads per trial; None: torch's
    checkpoint_every: int = Field(1, ge=1)  # epochs between checkpoints (and always at the end)
    grid_every: int = Field(1, ge=1)  # epochs between reconstruction/sample grid PNGs
    grid_size: int = Field(8, ge=1, le=32)  # images per grid row; grids are grid_size x grid_size
    fid_every: int = Field(0, ge=0)  # epochs between FID/KID evaluations; 0 disables
    fid_samples: int = Field(1000, ge=2)  # generated and real images used for FID/KID
    fid_reference: Literal["val", "train", "test"] = "val"  # split that the real statistics use
    # gmm: at each FID evaluation and checkpoint, a Gaussian mixture fitted to the training set's
    # posterior means (Ghosh et al. 2020); eval/*_gmm measure N samples from it, the checkpoint
    # keeps it and `vaetune sample` draws from it. none: z ~ N(0, I) only
    prior: Literal["gmm", "none"] = "gmm"
    prior_components: int = Field(10, ge=1)  # the mixture's components (Ghosh et al. use 10)
    # diag fits 5,000 means in well under a second on a CPU; full has D² parameters per component
    prior_covariance: PriorCovariance = "diag"
    seed: int = 0

    @property
    def fits_prior(self) -> bool:
        """Whether a latent prior is fitted (and its eval/*_gmm metrics measured with FID)."""
        return self.prior != "none"

    @field_validator("objective")
    @classmethod
    def _registered_objective(cls, name: str) -> str:
        from vaetune.objectives import OBJECTIVES

        if name not in OBJECTIVES:
            raise ValueError(f"input should be {one_of(OBJECTIVES)} "
                             "(the objectives in vaetune.objectives)")
        return name

    @field_validator("beta_schedule", mode="before")
    @classmethod
    def _capacity_is_an_objective(cls, name: Any) -> Any:
        # beta_schedule: capacity switched the loss before train.objective existed; translating it
        # silently would keep a searched {choice: [linear, capacity]} mixing schedules and losses
        if name == "capacity":
            raise ValueError("capacity is an objective, not a schedule of the KL weight: set "
                             "train.objective: capacity (β schedules: constant, linear, cyclical)")
        return name


class Bound(_Section):
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


class SearchConfig(_Section):
    metric: str | None = None  # None: eval/fid_sample when train.fid_every > 0, else val/elbo
    mode: Literal["min", "max"] | None = None  # None: the metric's own better direction
    # auto: chosen and sized for the trials, concurrency and space (vaetune.search._sampler);
    # or one of Optuna's samplers with Optuna's own settings (gp: its Gaussian-process sampler)
    sampler: Literal["auto", "tpe", "gp", "random", "cmaes", "nsga2", "grid"] = "auto"
    # two or more objectives, e.g. [val/mse, eval/fid_sample]: Optuna searches their Pareto front
    # (search.metric then ranks checkpoints and, under ASHA, stops trials; unset: the first objective,
    # and the scheduler defaults to fifo)
    metrics: list[str] = Field(default_factory=list)
    modes: list[Literal["min", "max"]] = Field(default_factory=list)  # one per objective; unset: each metric's own
    # bounds a trial's final values must hold to count (feasible): {val/kl: {min: 5}}; Optuna's
    # constrained sampling (TPE, GP, NSGA-II) steers away from trials that break them
    constraints: dict[str, Bound] = Field(default_factory=dict)

    def bounds(self) -> dict[str, dict[str, float]]:
        """search.constraints as plain numbers: {val/kl: {min: 5.0}} (vaetune.results.Bounds)."""
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
    # retries of a trial that crashed or lost its node, from its last checkpoint (not of a diverged one)
    max_failures: int = Field(2, ge=0)
    storage: str = "results"  # local path, shared path or s3:// URI for checkpoints and results
    # best N checkpoints kept per trial by the search metric, besides those of ASHA's rungs and
    # of the last epoch (always kept, for the report)
    keep_checkpoints: int = Field(2, ge=1)


class ResourcesConfig(_Section):
    cpu: float = Field(1.0, gt=0)  # per trial
    gpu: float = Field(0.0, ge=0)  # per trial; 0.25 lets four trials share a GPU


class TrackingConfig(_Section):
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else MLflow's own default (./mlflow.db)
    experiment: str | None = None  # None: the search name


NAME_MAX = 100  # a search's name is a folder name and an MLflow experiment name


class Config(_Section):
    # the search's name: its folder results/<name>/ and its MLflow experiment
    name: str = "search"
    data: DataConfig = Field(default_factory=DataConfig)
    # the registered architecture's config, dumped with its own options (SerializeAsAny)
    model: SerializeAsAny[ModelConfig] = Field(default_factory=dict, validate_default=True)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, v: str) -> str:
        # it names results/<name>/ and runs/<name>/: nothing that leaves those folders or hides
        if not re.fullmatch(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}", v):
            raise ValueError(f"a name is 1-{NAME_MAX} letters, digits, '_', '-' or '.', not starting with "
                             "'.' or '-' (it names the results folder and the MLflow experiment)")
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
        (the metric: sample FID when FID is on, else val/elbo; the mode: the metric's own)."""
        from vaetune.metrics import registry

        s, fid_on, prior_on = self.search, bool(self.train.fid_every), self.train.fits_prior
        if s.metric is None:
            s.metric = "eval/fid_sample" if fid_on else "val/elbo"
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
        if s.mode is None:
            s.mode = s.modes[s.metrics.index(s.metric)] if s.metric in s.metrics else registry.mode_of(s.metric)
