"""Search spaces: a YAML file (or mapping) split into fixed values and searched distributions,
overridden from the command line, and validated at every bound and choice.

Loading splits the file into the fixed configuration and a dict of distributions keyed by dotted
path ("train.beta"), then validates both: the configuration with every searched value at its
default, and again with each distribution's extreme values or choices substituted, so a bad bound
fails at load time.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from vaetune.spec._config import Config
from vaetune.spec._distributions import Distribution, is_distribution, parse_distribution
from vaetune.spec._errors import SpecError
from vaetune.spec._shipped import shipped_spaces, which_space
from vaetune.spec._unused import unused_keys
from vaetune.spec._validate import validate_config
from vaetune.spec._yaml import DuplicateKey, yaml_load

log = logging.getLogger(__name__)

# Sections whose leaves may be searched. name/search/resources/tracking describe the search itself.
SEARCHABLE_SECTIONS = ("data", "model", "train")


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

    def unused(self, sections: tuple[str, ...] | None = None) -> list[str]:
        """The keys this space sets (or searches) that its configuration does not read, each with why
        (vaetune.spec._unused); only those of `sections` when given."""
        return unused_keys(self.base, list(self.params), self.default_config(), sections)

    def default_config(self) -> Config:
        """The configuration `vaetune train` runs: defaults for searched values, the first
        point to evaluate applied over them when one is listed."""
        points = self.base.get("search", {}).get("points_to_evaluate") or []
        return self.resolve(points[0] if points else None)


def set_dotted(raw: dict, key: str, value: Any) -> None:
    """Set `raw[a][b][c] = value` for key "a.b.c", creating sections; KeyError if a parent is a leaf."""
    node = raw
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise KeyError(key)
    node[leaf] = value


def _split_distributions(source: str, node: Any, prefix: str, params: dict[str, Distribution]) -> Any:
    if is_distribution(node):
        section = prefix.split(".")[0]
        if section not in SEARCHABLE_SECTIONS:
            raise SpecError(source, prefix, node, f"only keys under {', '.join(SEARCHABLE_SECTIONS)} can be searched")
        params[prefix] = parse_distribution(source, prefix, node)
        return None
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            sub = _split_distributions(source, v, f"{prefix}.{k}" if prefix else str(k), params)
            if sub is not None or not is_distribution(v):
                out[k] = sub
        return out
    return node


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
    """Read, override and validate a search-space YAML file, or a shipped space given by name
    (`ygo`: search_spaces/ygo.yaml, from any folder)."""
    path, which = which_space(str(path))
    if which is not None:
        log.info("space %s", which)
    source = str(path)
    if path.exists() and not path.is_dir() and not path.is_file():  # reading a named pipe would wait forever
        raise SpecError(source, "<file>", source, "not a regular file (a named pipe, socket or device); give the "
                        "YAML file itself")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        shipped = ", ".join(shipped_spaces()) if "/" not in source else ""
        raise SpecError(source, "<file>", source, "the file does not exist" + (
            f"; the shipped spaces, given by name: {shipped} (vaetune spaces)" if shipped else "")) from None
    except OSError as exc:
        raise SpecError(source, "<file>", source, f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise SpecError(source, "<file>", source, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                        f"offset {exc.start}); save it as UTF-8") from None
    try:
        raw = yaml_load(text)
    except DuplicateKey as exc:
        raise SpecError(source, f"line {exc.second_line}", exc.path.rsplit(".", 1)[-1],
                        f"{exc.problem}; a key may appear once in a mapping: keep one of them") from None
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
