"""What must hold of a search space before a search starts: checked before Ray or any file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.search._portfolio import OFF, SHIPPED, read_portfolio
from vaetune.spec import Distribution, SearchPlan, SearchSpace, SpecError


def check_space(plan: SearchPlan) -> None:
    """Raise a UserError naming the key when the space cannot be searched as written."""
    space, config = plan.space, plan.config
    s = config.search
    categorical = {k: d for k, d in space.params.items() if d.kind in ("choice", "grid")}
    gridded = [k for k, d in space.params.items() if d.kind == "grid"]
    grid = plan.grid
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
    if s.portfolio not in (SHIPPED, OFF):
        try:
            read_portfolio(Path(s.portfolio))
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SpecError(space.source, "search.portfolio", s.portfolio,
                            f"{SHIPPED} (vaetune's own), {OFF}, or a portfolio CSV file (the columns "
                            f"benchmarks/bench_portfolio.py writes); this one: {why}") from None
    for i, point in enumerate(s.points_to_evaluate):
        for key, value in point.items():
            if not inside(space.params[key], value):
                dist = space.params[key]
                raise SpecError(space.source, f"search.points_to_evaluate[{i}].{key}", value,
                                f"outside the space {dist.kind} {list(dist.args)}; a point to evaluate first is one "
                                "the search could sample")


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


def data_is_searched(space: SearchSpace) -> bool:
    """Whether trials decode different data (then each loads its own, from the cache)."""
    return any(k.startswith("data.") and not k.startswith("data.augment.") for k in space.params)
