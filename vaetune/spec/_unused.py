"""Keys a space sets that nothing reads as it stands: said in one line, never dropped in silence.

A key of one option's (ASHA's grace period under the FIFO scheduler, the linear β schedule's warm-up
under a constant one, an objective's option under another objective, the number of generated
sprites for a folder of images) is valid and harmless, but the user who wrote it expects it to do
something. `unused_keys` names each such key of a space (set in the file, by --set, or searched)
with the key that decides and its value; a key whose decider is itself searched is read by some
trials and is not named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaetune.models import OBJECTIVES
from vaetune.spec._config import Config


@dataclass(frozen=True)
class _Rule:
    keys: tuple[str, ...]  # dotted keys read only when `applies` holds of the deciding key's value
    on: str  # the deciding key
    applies: Callable[[Any], bool]
    reader: str  # when they are read: "search.scheduler: asha"


_RULES = (
    _Rule(("data.count",), "data.source", lambda v: str(v).startswith("builtin:"), "data.source: builtin:sprites"),
    _Rule(("search.grace_period", "search.reduction_factor", "search.rung_eval"), "search.scheduler",
          lambda v: v == "asha", "search.scheduler: asha"),
    _Rule(("train.fid_samples", "train.fid_reference"), "train.fid_every", lambda v: bool(v), "train.fid_every > 0"),
    _Rule(("train.prior_components", "train.prior_covariance"), "train.prior", lambda v: v != "none",
          "train.prior: gmm"),
    *(_Rule((f"train.{key}",), "train.objective", lambda v, key=key: key in OBJECTIVES[v].keys,
            "train.objective: " + " or ".join(name for name, o in OBJECTIVES.items() if key in o.keys))
      for key in dict.fromkeys(k for o in OBJECTIVES.values() for k in o.keys)),
    _Rule(("train.warmup_epochs",), "train.beta_schedule", lambda v: v == "linear", "train.beta_schedule: linear"),
    _Rule(("train.cycles", "train.cycle_ratio"), "train.beta_schedule", lambda v: v == "cyclical",
          "train.beta_schedule: cyclical"),
)


def unused_keys(base: dict, searched: list[str], config: Config, sections: tuple[str, ...] | None = None) -> list[str]:
    """Each key set in `base` (a space's fixed values) or `searched` that `config` (the space's fixed
    configuration) does not read, as `key (read by ...; decider is value)`; only keys of `sections`
    when given."""
    given = {*_dotted(base), *searched}
    said, out = set(), []
    for rule in _RULES:
        if rule.on in searched:
            continue
        value = _value(config, rule.on)
        if rule.applies(value):
            continue
        for key in rule.keys:
            if key in given and key not in said and (sections is None or key.split(".")[0] in sections):
                said.add(key)
                out.append(f"{key} (read only with {rule.reader}; {rule.on} is {value!r})")
    s = config.search
    if "search.mode_override" in given and s.mode_override and (sections is None or "search" in sections):
        from vaetune.metrics.registry import against_direction

        pairs = [(s.metric, s.mode), *zip(s.metrics, s.modes, strict=True)]
        if not any(against_direction(metric, mode) for metric, mode in pairs):
            out.append(f"search.mode_override (read only when a mode goes against its metric's direction; "
                       f"search.mode {s.mode!r} is {s.metric}'s own)")
    return out


def _dotted(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [prefix] if prefix else []
    keys = []
    for k, v in node.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        keys += _dotted(v, key) if isinstance(v, dict) and key.count(".") < 1 else [key]
    return keys


def _value(config: Config, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node
