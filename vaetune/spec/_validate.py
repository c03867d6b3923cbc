"""A configuration dict -> `Config`, every pydantic error turned into one SpecError line; and
configs read back from checkpoints, which may be in the layout of an earlier vaetune."""

from __future__ import annotations

import copy
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from vaetune.models import ModelConfig
from vaetune.spec._config import Config, architecture_config
from vaetune.spec._distributions import DISTRIBUTIONS
from vaetune.spec._errors import CrossFieldError, SpecError

# The model keys every architecture shared before each had its own config (checkpoints of that
# layout store all of them, whatever the architecture read).
_SHARED_MODEL_KEYS = ("width", "depth", "downsample")


def validate_config(raw: dict, source: str = "<config>") -> Config:
    """Validate a fully resolved configuration dict, raising SpecError on the first problem.

    Args:
        raw: the sections as plain values (a resolved search space, or `Config.model_dump()`).
        source: the file (or other origin) that messages name.
    """
    if not isinstance(raw, dict):
        raise SpecError(source, "<top>", raw, "a search space is a YAML mapping of sections")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise _format_validation_error(source, err, raw) from None


def stored_config(raw: dict, source: str = "<stored config>") -> Config:
    """The `Config` a checkpoint stored (`Config.model_dump(mode="json")`), in this layout or the
    previous one, where every architecture carried width, depth and downsample, and the capacity
    objective was `train.beta_schedule: capacity` (a constant β that the loss did not use).

    A stored config is not the user's to edit, so it is translated; a search space is not: there
    the old spelling fails with a message saying what to write instead.
    """
    raw = copy.deepcopy(raw)
    model, train = raw.get("model"), raw.get("train")
    if isinstance(model, dict) and all(k in model for k in _SHARED_MODEL_KEYS):
        try:
            own = architecture_config(model).model_fields
        except CrossFieldError:
            own = model  # unknown architecture: validate_config says so
        for key in _SHARED_MODEL_KEYS:
            if key not in own:
                model.pop(key)
    if isinstance(train, dict) and train.get("beta_schedule") == "capacity":
        train.update(objective="capacity", beta_schedule="constant")
    return validate_config(raw, source)


def _format_validation_error(source: str, err: ValidationError, raw: dict) -> SpecError:
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"] if not str(p).startswith(("function-", "tagged-union"))]
    key = ".".join(loc) or "<top>"
    ctx_err = e.get("ctx", {}).get("error")
    if isinstance(ctx_err, CrossFieldError):
        return SpecError(source, ctx_err.key, ctx_err.value, ctx_err.accepted)
    value = e.get("input")
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1], raw)
        allowed = ", ".join(parent.model_fields) if parent else "see docs/search-spaces.md"
        if parent is not None and issubclass(parent, ModelConfig):
            arch = parent.model_fields["arch"].default
            return SpecError(source, key, loc[-1],
                             f"unknown key for model.arch {arch!r}; accepted keys here: {allowed}")
        return SpecError(source, key, loc[-1], f"unknown key; accepted keys here: {allowed}")
    if e["type"] == "missing":
        return SpecError(source, key, None, "this key is required")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    unknown = _unknown_distribution(value)
    if unknown:  # a one-key mapping of a list where a value was expected: a misspelt distribution
        return SpecError(source, key, value, f"{unknown!r} is not a distribution vaetune knows; a searched key "
                         f"takes one of {', '.join(DISTRIBUTIONS)}, e.g. {{loguniform: [0.001, 10]}}")
    return SpecError(source, key, value, _accepted_phrase(msg))


def _unknown_distribution(value: Any) -> str | None:
    """The name of `value` when it is written like a distribution ({name: [...]}) of another name."""
    if isinstance(value, dict) and len(value) == 1:
        (name, args), = value.items()
        if isinstance(args, list) and name not in DISTRIBUTIONS:
            return str(name)
    return None


def _accepted_phrase(msg: str) -> str:
    return msg[0].lower() + msg[1:] if msg.startswith("Input should") else msg


def _model_at(path: list[str], raw: Any) -> type[BaseModel] | None:
    """The section class at a dotted path of `raw`; for `model`, its architecture's config; past a
    mapping of sections (search.constraints: {val/kl: Bound}), the section its values are."""
    model: type[BaseModel] = Config
    parts = iter(path)
    for part in parts:
        raw = raw.get(part) if isinstance(raw, dict) else None
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if get_origin(ann) is dict and _is_section(get_args(ann)[1]):
            key = next(parts, None)  # the mapping's own key, e.g. val/kl
            if key is None:
                return None
            raw, ann = (raw.get(key) if isinstance(raw, dict) else None), get_args(ann)[1]
        if not _is_section(ann):
            return None
        model = architecture_config(raw) if issubclass(ann, ModelConfig) else ann
    return model


def _is_section(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)
