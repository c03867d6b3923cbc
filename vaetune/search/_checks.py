"""What must hold of a search space before a search starts: checked before Ray or any file."""

from __future__ import annotations

import math
from typing import Any

from vaetune.errors import UserError
from vaetune.spec import Config, Distribution, SearchSpace, SpecError


def check_space(space: SearchSpace, config: Config) -> None:
    """Raise a UserError naming the key when the space cannot be searched as written."""
    s = config.search
    categorical = {k: d for k, d in space.params.items() if d.kind in ("choice", "grid")}
    gridded = [k for k, d in space.params.items() if d.kind == "grid"]
    grid = runs_grid(space, config)
    if grid and len(categorical) != len(space.params):
        bad = next(k for k in space.params if k not in categorical)
        raise UserError(f"{space.source}: {bad}: got {space.params[bad].kind}; search.sampler grid needs every "
                        "searched key to be a choice or grid list")
    if gridded and not grid:
        why = "beside keys that are not grid lists" if s.sampler == "auto" else f"with search.sampler {s.sampler!r}"
        raise UserError(f"{space.source}: {gridded[0]}: got a grid list {why}; use grid lists for every key "
                        "(or sampler grid) to try every value, or choice to let the sampler pick")
    if not space.params:
        raise UserError(f"{space.source}: nothing to search; give at least one key a distribution "
                        "(e.g. train.beta: {loguniform: [0.001, 10]}) or use vaetune train")
    if config.train.device == "cuda" and not config.resources.gpu:
        raise SpecError(space.source, "train.device", "cuda", "resources.gpu is 0, so trials see no GPU; set "
                        "resources.gpu (e.g. 1, or 0.5 to share one) or train.device: auto")
    for i, point in enumerate(s.points_to_evaluate):
        for key, value in point.items():
            if not inside(space.params[key], value):
                dist = space.params[key]
                raise SpecError(space.source, f"search.points_to_evaluate[{i}].{key}", value,
                                f"outside the space {dist.kind} {list(dist.args)}; a point to evaluate first is one "
                                "the search could sample")


def runs_grid(space: SearchSpace, config: Config) -> bool:
    """Whether the search runs Optuna's grid: named, or auto over a space of grid lists only."""
    s = config.search
    if s.sampler != "auto":
        return s.sampler == "grid"
    return bool(space.params) and all(d.kind == "grid" for d in space.params.values())


def inside(dist: Distribution, value: Any) -> bool:
    """Whether the sampler could draw `value` from `dist` (bounds inclusive, randint's high excluded,
    quniform on its grid of q)."""
    a = dist.args
    if dist.kind in ("choice", "grid"):
        return any(value == v and isinstance(value, bool) == isinstance(v, bool) for v in a)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if dist.kind == "randint":
        return isinstance(value, int) and a[0] <= value < a[1]
    if dist.kind == "quniform":
        steps = (value - a[0]) / a[2]
        return a[0] <= value <= a[1] and math.isclose(steps, round(steps), abs_tol=1e-9)
    return a[0] <= value <= a[1]


def grid_size(space: SearchSpace) -> int:
    """Points of the full grid (every searched key a choice or grid list)."""
    return math.prod(len(d.args) for d in space.params.values())


def planned_trials(space: SearchSpace, config: Config) -> int:
    s = config.search
    return min(s.num_samples, grid_size(space)) if runs_grid(space, config) else s.num_samples


def max_epochs(config: Config) -> int:
    """The epochs a trial that is never stopped runs (ASHA's max_t caps train.epochs)."""
    return min(config.search.max_t or config.train.epochs, config.train.epochs)


def asha_rungs(grace: int, factor: float, max_t: int) -> list[int]:
    """Epochs at which ASHA compares trials: grace * factor^k below max_t."""
    rungs, t = [], float(grace)
    while t < max_t:
        rungs.append(int(round(t)))
        t *= factor
    return rungs


def rungs_of(config: Config) -> list[int]:
    """The ASHA rung epochs of a configuration ([] with the fifo scheduler)."""
    s = config.search
    if s.scheduler != "asha":
        return []
    top = max_epochs(config)
    return asha_rungs(min(s.grace_period, top), s.reduction_factor, top)


def kept_epochs(config: Config) -> list[int]:
    """Epochs at which every trial measures FID/KID and keeps its checkpoint: ASHA's rungs (where
    it may stop a trial) and the last epoch. Trials are compared at one of these epochs."""
    return sorted({*rungs_of(config), max_epochs(config)})


def data_is_searched(space: SearchSpace) -> bool:
    """Whether trials decode different data (then each loads its own, from the cache)."""
    return any(k.startswith("data.") and not k.startswith("data.augment.") for k in space.params)
