"""The search-space file: its schema, its distributions, and validation with clear errors.

A search-space YAML holds fixed values and, for any hyperparameter, a distribution written as a
one-key mapping, e.g. ``beta: {loguniform: [0.001, 10]}``. Loading splits the file into the
fixed configuration and a dict of distributions keyed by dotted path ("train.beta"), then
validates both: the configuration with every searched value at its default, and again with each
distribution's extreme values or choices substituted, so a bad bound fails at load time.

Every user mistake raises :class:`SpecError`, whose message names the file, the dotted key, the
bad value and what is accepted; the CLI prints it without a traceback.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vaetune.errors import UserError

DISTRIBUTIONS = ("loguniform", "uniform", "quniform", "randint", "choice", "grid")
# Sections whose leaves may be searched. name/search/resources/tracking describe the search itself.
SEARCHABLE_SECTIONS = ("data", "model", "train")


class YamlLoader(yaml.SafeLoader):
    """YAML scalars as people write them today (YAML 1.2): `1e-3` is a number, not the string PyYAML's
    YAML 1.1 rules make of it, and only true/false are booleans, so `amp: off` stays the word "off"."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),  # 1e-3, 2.5E4: exponent without a dot
    list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """Parse YAML with :class:`YamlLoader`."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


class SpecError(UserError, ValueError):
    """A user mistake in a search space or an override, described for a person to fix."""

    def __init__(self, source: str, key: str, value: Any, accepted: str):
        self.source, self.key, self.value, self.accepted = source, key, value, accepted
        super().__init__(f"{source}: {key}: got {value!r}; {accepted}")


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
    # A folder of images, a .zip, "hf:NAME" or a path saved with `datasets`, or "builtin:sprites".
    source: str = "builtin:sprites"
    image_size: int = Field(32, ge=8, le=1024)  # square side in pixels after resizing
    channels: Literal[1, 3, 4] = 3  # 4 keeps alpha; 1/3 composite alpha on `background`
    background: tuple[int, int, int] = (255, 255, 255)  # RGB used to composite transparency
    resize: Literal["fit", "crop", "pad"] = "fit"  # see README "Resize modes"
    labels: Literal["none", "folders", "auto"] = "auto"  # auto: folders if there are sub-folders
    hf_image_column: str = "image"  # column of a Hugging Face dataset holding the images
    hf_label_column: str | None = None  # optional column used as class label
    count: int = Field(20000, ge=1)  # builtin:sprites only: number of images generated
    min_images: int = Field(16, ge=1)  # fewer usable images than this is an error
    min_side: int = Field(8, ge=1)  # images smaller than this (either side) are skipped
    split: SplitConfig = Field(default_factory=SplitConfig)
    split_seed: int = 0  # the split is a function of (this seed, N) only
    cache_dir: str = ".vaetune_cache"  # decoded uint8 tensors, keyed by source + settings
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("background")
    @classmethod
    def _rgb(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(not 0 <= c <= 255 for c in v):
            raise ValueError("each colour component must be in 0..255")
        return v


class ModelConfig(_Section):
    arch: Literal["conv", "mlp", "resnet"] = "conv"
    latent_dim: int = Field(16, ge=1, le=4096)
    width: int = Field(32, ge=1)  # conv/resnet: channels of the first stage; mlp: hidden units
    depth: int | None = Field(None, ge=1)  # conv: down-sampling stages (None: follow image size); mlp: hidden layers
    downsample: Literal[8, 16] = 8  # resnet: total down-sampling factor
    conditional: bool = False  # condition encoder and decoder on the class label (CVAE)
    logvar_clamp: float = Field(10.0, gt=0)  # logvar is clamped to [-c, c] for stability


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: linear warm-up then cosine decay
    lr_warmup_epochs: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(None, gt=0)  # max global gradient norm; None disables
    recon_loss: Literal["mse", "bce"] = "mse"
    recon_reduction: Literal["sum", "mean"] = "sum"  # sum over pixels per image, or mean over pixels
    recon_weight: float = Field(1.0, gt=0)
    beta: float = Field(1.0, ge=0)  # KL weight
    beta_schedule: Literal["constant", "linear", "cyclical", "capacity"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0)  # linear: epochs for beta to ramp 0 -> beta
    cycles: int = Field(4, ge=1)  # cyclical: number of cycles M over training
    cycle_ratio: float = Field(0.5, gt=0, le=1)  # cyclical: fraction R of a cycle spent ramping
    capacity_max: float = Field(25.0, ge=0)  # capacity: C_max in nats
    capacity_epochs: float = Field(10.0, gt=0)  # capacity: epochs for C to reach C_max
    capacity_gamma: float = Field(100.0, gt=0)  # capacity: gamma in gamma * |KL - C|
    free_bits: float = Field(0.0, ge=0)  # nats per latent dimension not penalised
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["off", "bf16"] = "off"  # bf16: autocast on CUDA (ignored on CPU)
    num_threads: int | None = Field(None, ge=1)  # torch CPU threads; None keeps torch's default
    checkpoint_every: int = Field(1, ge=1)  # epochs between checkpoints (and always at the end)
    grid_every: int = Field(1, ge=1)  # epochs between reconstruction/sample grid PNGs
    grid_size: int = Field(8, ge=1, le=32)  # images per grid row; grids are grid_size x grid_size
    fid_every: int = Field(0, ge=0)  # epochs between FID/KID evaluations; 0 disables
    fid_samples: int = Field(1000, ge=2)  # generated and real images used for FID/KID
    fid_reference: Literal["val", "train", "test"] = "val"  # split that the real statistics use
    seed: int = 0


class SearchConfig(_Section):
    metric: str | None = None  # None: eval/fid_sample when train.fid_every > 0, else val/elbo
    mode: Literal["min", "max"] | None = None  # None: the metric's own better direction
    sampler: Literal["tpe", "random", "cmaes", "nsga2", "grid"] = "tpe"
    metrics: list[str] = Field(default_factory=list)  # nsga2: the objectives
    modes: list[Literal["min", "max"]] = Field(default_factory=list)  # nsga2: one mode per objective
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(2, ge=1)
    seed: int = 0
    scheduler: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(1, ge=1)  # ASHA, in epochs
    reduction_factor: float = Field(3.0, gt=1)  # ASHA
    max_t: int | None = Field(None, ge=1)  # ASHA, in epochs; None: train.epochs
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)  # dotted key -> value
    max_failures: int = Field(2, ge=0)  # retries of a trial that crashed or lost its node, from its last checkpoint
    storage: str = "results"  # local path, shared path or s3:// URI for checkpoints and results
    keep_checkpoints: int = Field(2, ge=1)  # best N checkpoints kept per trial


class ResourcesConfig(_Section):
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)  # fractional values share a GPU between trials


class TrackingConfig(_Section):
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db
    experiment: str | None = None  # None: the search name


NAME_MAX = 100  # a search's name is a folder name and an MLflow experiment name


class Config(_Section):
    name: str = "search"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
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
            raise _CrossFieldError("data.split.val", split.val, "every epoch validates: give the val split a share, "
                                   "e.g. {train: 0.8, val: 0.1, test: 0.1}")
        if tc.fid_every and getattr(split, tc.fid_reference) == 0:
            raise _CrossFieldError(f"data.split.{tc.fid_reference}", 0, f"train.fid_reference is "
                                   f"{tc.fid_reference!r} and FID is on: give that split a share, or pick another")
        return self

    @model_validator(mode="after")
    def _architecture_fits_image(self) -> Config:
        size, m = self.data.image_size, self.model
        if m.arch == "resnet" and size % m.downsample:
            raise _CrossFieldError(
                "data.image_size", size, f"resnet with downsample {m.downsample} needs a multiple of {m.downsample}"
            )
        if m.arch == "conv":
            depth = m.depth if m.depth is not None else conv_depth(size)
            if size % (2**depth) or size // (2**depth) < 1:
                raise _CrossFieldError(
                    "data.image_size", size, f"conv with depth {depth} needs a multiple of {2**depth}"
                )
        self._resolve_metrics()
        if self.search.sampler == "nsga2" and len(self.search.metrics) < 2:
            raise _CrossFieldError("search.metrics", self.search.metrics, "nsga2 needs at least two metrics")
        if len(self.search.modes) not in (0, len(self.search.metrics)):
            raise _CrossFieldError("search.modes", self.search.modes, "give one mode per entry of search.metrics")
        return self

    def _resolve_metrics(self) -> None:
        """The search metric(s) must be ones a trial of this config reports; unset ones get defaults
        (the metric: sample FID when FID is on, else val/elbo; the mode: the metric's own)."""
        from vaetune.metrics import registry

        s, fid_on = self.search, bool(self.train.fid_every)
        if s.metric is None:
            s.metric = "eval/fid_sample" if fid_on else "val/elbo"
        reported = registry.rankable(fid_on)
        for key, metric in [("search.metric", s.metric), *(("search.metrics", m) for m in s.metrics)]:
            if metric in reported:
                continue
            if metric in registry.rankable(True):
                raise _CrossFieldError(key, metric, "an eval/ metric (FID, KID) needs train.fid_every > 0")
            raise _CrossFieldError(key, metric, f"a trial reports: {', '.join(reported)}")
        if s.mode is None:
            s.mode = registry.mode_of(s.metric)


def conv_depth(image_size: int) -> int:
    """Down-sampling stages of the conv VAE: halve until about 4 px remain (64 -> 4 stages)."""
    depth = 0
    while image_size % 2 == 0 and image_size // 2 >= 4:
        image_size //= 2
        depth += 1
    return max(depth, 1)


class _CrossFieldError(ValueError):
    def __init__(self, key: str, value: Any, accepted: str):
        self.key, self.value, self.accepted = key, value, accepted
        super().__init__(f"{key}: {accepted}")


# --------------------------------------------------------------------------------------------
# Distributions


class Distribution(BaseModel):
    """One searched hyperparameter: a kind and its arguments, as written in the YAML."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["loguniform", "uniform", "quniform", "randint", "choice", "grid"]
    args: tuple[Any, ...]

    def default(self) -> Any:
        """The value `vaetune train` uses for this parameter (documented in the README)."""
        a = self.args
        if self.kind in ("choice", "grid"):
            return a[0]
        if self.kind == "loguniform":
            return math.sqrt(a[0] * a[1])
        if self.kind == "uniform":
            return (a[0] + a[1]) / 2
        if self.kind == "quniform":
            return round(((a[0] + a[1]) / 2) / a[2]) * a[2]
        return (a[0] + a[1] - 1) // 2  # randint: [low, high)

    def candidates(self) -> list[Any]:
        """Values that must all be valid for the distribution to be: its bounds or choices."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        if self.kind == "randint":
            return [self.args[0], self.args[1] - 1]
        return [self.args[0], self.args[1]]

    def to_tune(self):
        """The equivalent `ray.tune` search-space object."""
        from ray import tune

        a = self.args
        return {
            "loguniform": lambda: tune.loguniform(a[0], a[1]),
            "uniform": lambda: tune.uniform(a[0], a[1]),
            "quniform": lambda: tune.quniform(a[0], a[1], a[2]),
            "randint": lambda: tune.randint(a[0], a[1]),
            "choice": lambda: tune.choice(list(a)),
            "grid": lambda: tune.grid_search(list(a)),
        }[self.kind]()


def _parse_distribution(source: str, key: str, node: dict) -> Distribution:
    (kind, args), = node.items()
    if not isinstance(args, list):
        raise SpecError(source, key, node, f"{kind} takes a list, e.g. {{{kind}: [low, high]}}")
    numeric = kind in ("loguniform", "uniform", "quniform", "randint")
    if numeric:
        want = 3 if kind == "quniform" else 2
        if len(args) != want or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args):
            shape = "[low, high, q]" if kind == "quniform" else "[low, high]"
            raise SpecError(source, key, node, f"{kind} takes {shape} numbers")
        low, high = args[0], args[1]
        if low > high or (kind == "randint" and low == high):
            raise SpecError(source, key, node, f"{kind} needs low < high (got low={low}, high={high})")
        if kind == "loguniform" and low <= 0:
            raise SpecError(source, key, node, "loguniform needs 0 < low < high")
        if kind == "randint" and not all(isinstance(v, int) for v in args):
            raise SpecError(source, key, node, "randint takes integers [low, high), high excluded")
        if kind == "quniform" and args[2] <= 0:
            raise SpecError(source, key, node, "quniform needs q > 0")
    elif not args:
        raise SpecError(source, key, node, f"{kind} needs at least one value")
    return Distribution(kind=kind, args=tuple(args))


def _is_distribution(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in DISTRIBUTIONS


# --------------------------------------------------------------------------------------------
# Search spaces


class SearchSpace(BaseModel):
    """A loaded, validated search-space file: fixed values plus searched distributions."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    source: str  # the file it came from, for messages
    base: dict[str, Any]  # the raw configuration with every searched value removed
    params: dict[str, Distribution]  # dotted key -> distribution

    @property
    def name(self) -> str:
        return self.default_config().name

    def resolve(self, values: dict[str, Any] | None = None) -> Config:
        """The configuration of one trial: base + each searched value (default where missing)."""
        raw = copy.deepcopy(self.base)
        for key, dist in self.params.items():
            set_dotted(raw, key, dist.default())
        for key, value in (values or {}).items():
            set_dotted(raw, key, value)
        return validate_config(raw, self.source)

    def default_config(self) -> Config:
        """The configuration `vaetune train` runs: defaults for searched values, the first
        point to evaluate applied over them when one is listed."""
        points = self.base.get("search", {}).get("points_to_evaluate") or []
        return self.resolve(points[0] if points else None)


def set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise KeyError(key)
    node[leaf] = value


def _split_distributions(source: str, node: Any, prefix: str, params: dict[str, Distribution]) -> Any:
    if _is_distribution(node):
        section = prefix.split(".")[0]
        if section not in SEARCHABLE_SECTIONS:
            raise SpecError(source, prefix, node, f"only keys under {', '.join(SEARCHABLE_SECTIONS)} can be searched")
        params[prefix] = _parse_distribution(source, prefix, node)
        return None
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            sub = _split_distributions(source, v, f"{prefix}.{k}" if prefix else str(k), params)
            if sub is not None or not _is_distribution(v):
                out[k] = sub
        return out
    return node


def _format_validation_error(source: str, err: ValidationError) -> SpecError:
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"] if not str(p).startswith(("function-", "tagged-union"))]
    key = ".".join(loc) or "<top>"
    ctx_err = e.get("ctx", {}).get("error")
    if isinstance(ctx_err, _CrossFieldError):
        return SpecError(source, ctx_err.key, ctx_err.value, ctx_err.accepted)
    value = e.get("input")
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else "see README"
        return SpecError(source, key, loc[-1], f"unknown key; accepted keys here: {allowed}")
    if e["type"] == "missing":
        return SpecError(source, key, None, "this key is required")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return SpecError(source, key, value, _accepted_phrase(msg))


def _accepted_phrase(msg: str) -> str:
    return msg[0].lower() + msg[1:] if msg.startswith("Input should") else msg


def _model_at(path: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in path:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def validate_config(raw: dict, source: str = "<config>") -> Config:
    """Validate a fully resolved configuration dict, raising SpecError on the first problem."""
    if not isinstance(raw, dict):
        raise SpecError(source, "<top>", raw, "a search space is a YAML mapping of sections")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise _format_validation_error(source, err) from None


def parse_override(source: str, text: str) -> tuple[str, Any]:
    """Parse one `--set key.path=value`, the value read as YAML (so 1e-3, [1,2], {choice: [..]} work)."""
    if "=" not in text:
        raise SpecError(source, text, text, "overrides are written key.path=value")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise SpecError(source, key, text, "overrides are written key.path=value")
    try:
        parsed = yaml_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise SpecError(source, key, value, f"the value must be YAML ({exc.problem})") from None
    return key, parsed


def load_space(path: str | Path, overrides: list[str] | None = None) -> SearchSpace:
    """Read, override and validate a search-space YAML file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(source, "<file>", source, "the file does not exist") from None
    except OSError as exc:
        raise SpecError(source, "<file>", source, f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise SpecError(source, "<file>", source, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                        f"offset {exc.start}); save it as UTF-8") from None
    try:
        raw = yaml_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        raise SpecError(source, where, getattr(exc, "problem", str(exc)), "the file must be valid YAML") from None
    return space_from_dict(raw if raw is not None else {}, source, overrides)


def space_from_dict(raw: Any, source: str = "<dict>", overrides: list[str] | None = None) -> SearchSpace:
    """Build a SearchSpace from an already-parsed mapping (used by tests and the trainable)."""
    if not isinstance(raw, dict):
        raise SpecError(source, "<top>", raw, "a search space is a YAML mapping of sections")
    raw = copy.deepcopy(raw)
    for text in overrides or []:
        key, value = parse_override(f"{source} (--set)", text)
        try:
            set_dotted(raw, key, value)
        except KeyError:
            raise SpecError(f"{source} (--set)", key, value, "a parent of this key is not a section") from None
        # an override wins over the file's points to evaluate as well
        for point in (raw.get("search") or {}).get("points_to_evaluate") or []:
            if isinstance(point, dict):
                point.pop(key, None)
    params: dict[str, Distribution] = {}
    base = _split_distributions(source, raw, "", params)
    space = SearchSpace(source=source, base=base, params=params)
    try:  # the fixed values first, so that their mistakes are not blamed on a searched key
        space.resolve()
    except SpecError as err:
        if err.key in params:
            dist = params[err.key]
            raise SpecError(source, err.key, err.value, f"{err.accepted} (the default of {dist.kind} {list(dist.args)})") from None
        raise
    for key, dist in params.items():
        for value in dist.candidates():
            try:
                space.resolve({key: value})
            except SpecError as err:
                if err.key == key:
                    raise SpecError(source, key, value, f"{err.accepted} (a value of {dist.kind} {list(dist.args)})") from None
                raise SpecError(source, err.key, err.value, f"{err.accepted} (when {key}={value!r})") from None
    _check_points(source, space)
    return space


def _check_points(source: str, space: SearchSpace) -> None:
    points = space.base.get("search", {}).get("points_to_evaluate") or []
    for i, point in enumerate(points):
        if not isinstance(point, dict):
            raise SpecError(source, f"search.points_to_evaluate[{i}]", point, "each point is a mapping of dotted key: value")
        for key in point:
            if key not in space.params:
                raise SpecError(source, f"search.points_to_evaluate[{i}].{key}", point[key],
                                f"points may only set searched keys: {', '.join(space.params) or '(none searched)'}")
        try:
            space.resolve(point)
        except SpecError as err:
            raise SpecError(source, f"search.points_to_evaluate[{i}].{err.key}", err.value, err.accepted) from None


def flatten(config: Config | dict, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value, for MLflow params and summary tables."""
    raw = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
