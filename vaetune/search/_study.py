"""The Optuna side of a search: the sampler of a choice, the grid run under ask/tell, and the
trials a stopped driver left RUNNING in its study.

Only Optuna's public interfaces are used here (a sampler is a `BaseSampler`; trials are read with
`Study.get_trials` and told with `Study.tell`), so a new Optuna needs no audit of its internals.
This module needs no Ray: `vaetune.search._run` closes lost trials before Ray's Tuner exists.
"""

from __future__ import annotations

import itertools
import logging
import random
import warnings
from collections import Counter
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from vaetune.search._sampler import SamplerChoice, optuna_startup

log = logging.getLogger(__name__)

TUNE_TRIAL = "tune_trial_id"  # user attr of a study's trial: the Tune trial it is, for the study's readers


def make_sampler(choice: SamplerChoice | str, seed: int, grid: dict[str, list] | None = None):
    """The Optuna sampler of a choice (vaetune.search._sampler; a bare name: Optuna's settings).
    Constraints need no setting: the samplers that take them (TPE, GP, NSGA-II) read each trial's
    violations, which the searcher sets on it (`Trial.set_constraint`) as it tells its outcome."""
    if isinstance(choice, str):
        choice = SamplerChoice(choice, optuna_startup(choice))
    startup = choice.startup + choice.observed  # Optuna counts the imported trials it observes among its start-up
    with warnings.catch_warnings():  # `group` is experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if choice.sized and choice.name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                              group=True, constant_liar=True)
        samplers = {
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False),
            "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
            "grid": lambda: GridPoints(grid or {}, seed=seed),
        }
        return samplers[choice.name]()


class GridPoints(optuna.samplers.BaseSampler):
    """Every point of a grid, in an order the seed shuffles, asked one trial at a time: Tune, not
    the sampler, decides when the search ends (vaetune caps the trials at the grid's size).

    A trial's point is the one the study's other trials hold least: a point no trial started
    first, then a point whose every trial failed (the point of a trial a stopped driver lost, told
    FAIL on --resume, runs again), and no point twice while another is unvisited. The whole point
    is sampled at once (Optuna's relative sampling); a key outside the grid is drawn at random.
    """

    def __init__(self, grid: dict[str, list], seed: int | None = None):
        self.grid = {key: list(values) for key, values in sorted(grid.items())}
        self.points = list(itertools.product(*self.grid.values()))
        random.Random(seed or 0).shuffle(self.points)
        self.fallback = optuna.samplers.RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {key: CategoricalDistribution(values) for key, values in self.grid.items()}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not self.points:
            return {}
        held, started = Counter(), Counter()  # point -> trials not failed, trials started
        for other in study.get_trials(deepcopy=False):
            point = tuple(other.params.get(key, _ABSENT) for key in self.grid)
            if other.number != trial.number and _ABSENT not in point:
                started[point] += 1
                held[point] += other.state != TrialState.FAIL
        point = min(self.points, key=lambda p: (held[p], started[p]))  # the first such in the seeded order
        return dict(zip(self.grid, point, strict=True))

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.fallback.sample_independent(study, trial, param_name, param_distribution)


_ABSENT = object()  # a key a trial has no value for


def fail_lost_trials(study: optuna.Study, held: set[int] = frozenset()) -> list[int]:
    """A resumed search: a trial asked of the study after the experiment snapshot Tune restored
    (the searcher's state, `held`, is saved with that snapshot) was started by the stopped driver
    and is unknown to Tune now; it would stay RUNNING in the study for ever. Tell it FAIL: the
    searcher asks a new trial in its place."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    lost = [t.number for t in running if t.number not in held]
    for number in lost:
        study.tell(number, state=TrialState.FAIL)
    if lost:
        log.warning("Optuna trial(s) %s of study %r, started after the stopped driver's last experiment snapshot, "
                    "are recorded as FAIL", ", ".join(map(str, lost)), study.study_name)
    return lost
