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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vaetune.metrics.registry import ImageSet, image_sets
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


def epochs_at(every: int, last: int, also: Iterable[int] = ()) -> frozenset[int]:
    """Epochs (1-based) at which something happens: every `every`-th (0: none), the last, `also`."""
    periodic = range(every, last + 1, every) if every else ()
    return frozenset([*periodic, last, *also])


@dataclass(frozen=True)
class TrialSchedule:
    """When one trial of a search measures, draws, checkpoints and is compared (epochs, 1-based).

    `full`: the generative evaluations that measure every image set (every `train.fid_every`
    epochs and the last; the rungs too under `search.rung_eval: full`); `ranking`: the rungs that
    measure only `ranking_sets`, the image sets of what ranks the trial (the search metric(s) and
    the constrained ones); both empty when `train.fid_every` is 0. `grids`: every
    `train.grid_every` epochs and the last. `checkpoints`: every `train.checkpoint_every` epochs,
    every grid (the driver logs the grids from the checkpoint), every evaluation and every kept
    epoch (ASHA may stop the trial right after a rung's report, and Tune restores or exports from
    its last checkpoint). `kept`: the epochs whose checkpoint Tune keeps whatever its score, for
    the report's equal-epoch comparisons: the plan's kept epochs and the trial's last.
    """

    full: frozenset[int]
    ranking: frozenset[int]
    ranking_sets: frozenset[ImageSet]
    grids: frozenset[int]
    checkpoints: frozenset[int]
    kept: frozenset[int]

    @classmethod
    def of(cls, config: Config, kept_epochs: Iterable[int]) -> TrialSchedule:
        """The schedule of a trial whose configuration is `config`, compared at `kept_epochs`
        (its plan's: ASHA's rungs and the last epoch)."""
        tc, kept = config.train, frozenset([*kept_epochs, config.train.epochs])
        ranking_sets = image_sets([config.search.metric, *config.search.metrics, *config.search.constraints])
        full = ranking = frozenset()
        if tc.fid_every:
            full = epochs_at(tc.fid_every, tc.epochs, kept if config.search.rung_eval == "full" else ())
            ranking = kept - full if ranking_sets else frozenset()
        grids = epochs_at(tc.grid_every, tc.epochs)
        checkpoints = epochs_at(tc.checkpoint_every, tc.epochs, kept) | grids | full | ranking
        return cls(full=full, ranking=ranking, ranking_sets=ranking_sets, grids=grids,
                   checkpoints=checkpoints, kept=kept)

    @property
    def evaluations(self) -> frozenset[int]:
        """Every epoch with a generative evaluation, full or of what ranks the trial."""
        return self.full | self.ranking


@dataclass(frozen=True)
class SearchPlan:
    space: SearchSpace
    config: Config  # the fixed configuration: each searched key at its default, defaults resolved
    max_epochs: int  # what a trial that is never stopped runs: train.epochs, capped by ASHA's max_t
    rungs: tuple[int, ...]  # ASHA's rung epochs; () under fifo
    grace: int  # ASHA's first rung: search.grace_period, capped by max_epochs
    kept_epochs: tuple[int, ...]  # the rungs and the last epoch: FID, a kept checkpoint, comparisons
    trials: int  # search.num_samples, or the grid's size when Optuna's grid runs and it is smaller
    grid: bool  # whether Optuna's grid runs: named, or auto over a space of grid lists only

    @classmethod
    def of(cls, space: SearchSpace) -> SearchPlan:
        config = space.default_config()
        s = config.search
        top = min(s.max_t or config.train.epochs, config.train.epochs)
        grace = min(s.grace_period, top)
        rungs = tuple(asha_rungs(grace, s.reduction_factor, top)) if s.scheduler == "asha" else ()
        grid = (s.sampler == "grid" if s.sampler != "auto" else
                bool(space.params) and all(d.kind == "grid" for d in space.params.values()))
        return cls(space=space, config=config, max_epochs=top, rungs=rungs, grace=grace, kept_epochs=tuple(sorted({*rungs, top})),
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

    def schedule(self, config: Config | None = None) -> TrialSchedule:
        """When a trial of this plan whose configuration is `config` (None: the fixed one) measures,
        draws, checkpoints and is compared."""
        return TrialSchedule.of(self.config if config is None else config, self.kept_epochs)


def _grid_points(space: SearchSpace) -> int:
    return math.prod(len(d.args) for d in space.params.values())
