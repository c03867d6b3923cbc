"""Which Optuna sampler a search runs, sized to its budget: `search.sampler: auto` decides here.

A search of 8-24 trials is mostly random under Optuna's defaults (TPE draws its first 10 trials at
random), so `auto` sizes the sampler to the trials, the concurrency, the scheduler and the kind
of space:

1. a space of grid lists: the grid (every point once);
2. too few trials for any model (fewer than MIN_MODEL_TRIALS beyond the starting points): random;
3. no early stopping (FIFO), at most GP_MAX_TRIALS trials: Optuna's Gaussian-process sampler,
   which models small budgets best (benchmarks/bench_sampler.py: on synthetic objectives of the
   quick start's shape its best of 16 trials was 5x closer to the optimum than TPE's); it
   learns only from completed trials, so under ASHA (most trials pruned) it would see few;
4. otherwise TPE, multivariate and grouped, with pruned trials as observations (ASHA's rungs,
   told to Optuna as PRUNED with their intermediate values), a constant liar for the trials
   running at once, and random start-up trials scaled to the budget: a third of the trials,
   at least one per trial running at once and at least 2, at most Optuna's own 10 (a quarter
   did better at 8 trials and worse at 16, a half worse at 8: benchmarks/bench_sampler.py).

Several objectives (`search.metrics`) follow the same rules: GP and TPE model a Pareto front
(GP by expected hypervolume improvement) and NSGA-II, whose generations of 50 trials make a
search of a few dozen trials random, is run only when named. Constraints (`search.constraints`)
reach GP, TPE and NSGA-II as Optuna's `constraints_func`; random and grid sampling mark
feasibility without steering by it. A multi-objective study takes no intermediate values, so
pruned trials inform no sampler there.

The starting points (`search.points_to_evaluate`) are trials like any other: they count towards
the random start-up trials once they report. Naming a sampler other than auto runs that one with
Optuna's own settings.

This module imports nothing heavy: the console and the checks read a choice before Ray starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vaetune.spec import SearchPlan

MIN_MODEL_TRIALS = 4  # trials beyond the starting points below which no model can learn anything
GP_MAX_TRIALS = 64  # the GP's cost grows with the cube of the trials; TPE above this
TPE_STARTUP_SHARE = 1 / 3  # the share of trials drawn at random first (benchmarks/bench_sampler.py)
TPE_STARTUP_MAX = 10  # Optuna's own default: never more random trials than that
NAMED = "as search.sampler names it"
SAMPLER_LABELS = {"tpe": "TPE", "gp": "Gaussian process", "random": "random", "cmaes": "CMA-ES",
                  "nsga2": "NSGA-II", "grid": "grid"}


@dataclass(frozen=True)
class SamplerChoice:
    """The sampler a search runs: its name (as `search.sampler` spells it), the random trials it
    starts with (0: none or not applicable) and why it was chosen."""

    name: str
    startup: int = 0
    why: str = NAMED

    @property
    def sized(self) -> bool:
        """Whether `auto` chose and sized it (else Optuna's own settings of the named sampler)."""
        return self.why != NAMED

    def describe(self) -> str:
        """One phrase for the console's first line: `sampler TPE (multivariate, grouped), 3 random
        trials first (8 trials, 2 at a time, pruned trials observed)`."""
        label = SAMPLER_LABELS[self.name]
        if self.name == "tpe" and self.sized:
            label += " (multivariate, grouped)"
        if self.startup:
            label += f", {self.startup} random trial{'s' if self.startup > 1 else ''} first"
        return f"sampler {label} ({self.why})"


def optuna_startup(name: str) -> int:
    """Random trials Optuna's sampler of this name starts with under its own defaults."""
    return {"tpe": 10, "gp": 10, "cmaes": 1}.get(name, 0)


def choose_sampler(plan: SearchPlan, trials: int | None = None) -> SamplerChoice:
    """The sampler of a search of `trials` trials (None: the plan's) as `plan` runs it (see the
    module's rules: its fixed configuration's search.sampler, scheduler, concurrency, metrics)."""
    s = plan.config.search
    trials = plan.trials if trials is None else trials
    if s.sampler != "auto":
        return SamplerChoice(s.sampler, optuna_startup(s.sampler))
    if plan.grid:
        return SamplerChoice("grid", 0, "every searched key is a grid list")
    points = len(s.points_to_evaluate)
    if trials - points < MIN_MODEL_TRIALS:
        return SamplerChoice("random", 0, f"{trials} trials: too few to model")
    startup = min(TPE_STARTUP_MAX, max(2, s.max_concurrent, math.ceil(TPE_STARTUP_SHARE * trials)))
    objectives = f", {len(s.metrics)} objectives" if s.metrics else ""
    if s.scheduler == "fifo" and trials <= GP_MAX_TRIALS:
        return SamplerChoice("gp", startup, f"{trials} trials, no early stopping{objectives}")
    why = f"{trials} trials, {s.max_concurrent} at a time{objectives}"
    if s.scheduler == "asha" and not s.metrics:
        why += ", pruned trials observed"
    return SamplerChoice("tpe", startup, why)
