"""The search plan: what a search space runs when it is searched, worked out once.

`SearchPlan.of(space)` is built when `vaetune search` or `vaetune sweep` starts (and from a
finished search's space.yaml by `vaetune.results`, for the report and export): the space, its
fixed configuration with every default resolved (search.metric and its mode among them), the
epochs a trial that is never stopped runs, ASHA's rungs, the kept epochs (where trials measure
everything, keep their checkpoint and are compared), the trials planned and whether Optuna's
grid runs them. The trainable, the Tuner, the console, tracking, the summary and the report read
these figures from the plan; a trial gets the plan and its searched values, and
`plan.trial_config(values)` is its configuration, with no file parsed and no distribution
checked again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vaetune.spec._config import Config
from vaetune.spec._space import SearchSpace

BETA = "train.beta"  # the KL weight's key: what the KL-weight tables and the default sweep vary
SEED = "train.seed"  # the seed's key: what a sweep repeats each value over


def asha_rungs(grace: int, factor: float, max_t: int) -> list[int]:
    """Epochs at which ASHA compares trials: grace * factor^k below max_t."""
    rungs, t = [], float(grace)
    while t < max_t:
        rungs.append(int(round(t)))
        t *= factor
    return rungs


@dataclass(frozen=True)
class SearchPlan:
    space: SearchSpace
    config: Config  # the fixed configuration: each searched key at its default, defaults resolved
    max_epochs: int  # what a trial that is never stopped runs: train.epochs, capped by ASHA's max_t
    rungs: tuple[int, ...]  # ASHA's rung epochs; () under fifo
    kept_epochs: tuple[int, ...]  # the rungs and the last epoch: FID, a kept checkpoint, comparisons
    trials: int  # search.num_samples, or the grid's size when Optuna's grid runs and it is smaller
    grid: bool  # whether Optuna's grid runs: named, or auto over a space of grid lists only

    @classmethod
    def of(cls, space: SearchSpace) -> SearchPlan:
        config = space.default_config()
        s = config.search
        top = min(s.max_t or config.train.epochs, config.train.epochs)
        rungs = tuple(asha_rungs(min(s.grace_period, top), s.reduction_factor, top)) if s.scheduler == "asha" else ()
        grid = (s.sampler == "grid" if s.sampler != "auto" else
                bool(space.params) and all(d.kind == "grid" for d in space.params.values()))
        return cls(space=space, config=config, max_epochs=top, rungs=rungs, kept_epochs=tuple(sorted({*rungs, top})),
                   trials=min(s.num_samples, _grid_points(space)) if grid else s.num_samples, grid=grid)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def grid_points(self) -> int:
        """The points of the full grid of the searched keys (each a choice or grid list)."""
        return _grid_points(self.space)

    @property
    def searched(self) -> list[str]:
        """The searched keys, dotted, in the file's order."""
        return list(self.space.params)

    def trial_config(self, values: dict[str, Any]) -> Config:
        """The configuration of the trial that tried `values` (searched keys missing: their defaults)."""
        return self.space.resolve(values)


def _grid_points(space: SearchSpace) -> int:
    return math.prod(len(d.args) for d in space.params.values())
