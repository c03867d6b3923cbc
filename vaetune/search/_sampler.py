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
the random start-up trials once they report. With `auto`, the portfolio's points (configurations
that did well on other collections, vaetune.search._portfolio) take the place of the random
start-up trials after the starting points, and count among them the same way. The trials a warm start imports from an earlier search
(`search.warm_start`, vaetune.search._warm) are in the study before the first trial: they count
towards the trials a model needs (rule 2) and the budget the start-up share is taken of, and the
sampler's random start-up trials are those Optuna's own count leaves (TPE counts completed and
pruned trials, the GP completed ones only). Naming a sampler other than auto runs that one with
Optuna's own settings (an imported trial counts as Optuna counts it).

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
class Imported:
    """The finished trials of an earlier search a warm start puts in the study, by their state."""

    complete: int = 0
    pruned: int = 0

    @property
    def total(self) -> int:
        return self.complete + self.pruned

    def counted_by(self, name: str) -> int:
        """Those Optuna's sampler of this name counts towards its random start-up trials."""
        return {"tpe": self.complete + self.pruned, "gp": self.complete}.get(name, 0)


@dataclass(frozen=True)
class SamplerChoice:
    """The sampler a search runs: its name (as `search.sampler` spells it), the random trials it
    starts with among the search's own (0: none or not applicable), why it was chosen, and the
    imported trials the study holds (`imported`) of which the sampler counts `observed` towards its
    start-up (its Optuna setting is `startup + observed`)."""

    name: str
    startup: int = 0
    why: str = NAMED
    observed: int = 0
    imported: int = 0
    portfolio: int = 0  # of the start-up trials, those the portfolio's points take (vaetune.search._portfolio)
    random: int | None = None  # with a portfolio: the random start-up trials left after its points

    @property
    def sized(self) -> bool:
        """Whether `auto` chose and sized it (else Optuna's own settings of the named sampler)."""
        return self.why != NAMED

    def describe(self) -> str:
        """One phrase for the console's first line: `sampler TPE (multivariate, grouped), 3 random
        trials first (8 trials, 2 at a time, pruned trials observed)`, or with a portfolio
        `portfolio: 2 points, then sampler TPE (multivariate, grouped) (8 trials, ...)`."""
        label = SAMPLER_LABELS[self.name]
        if self.name == "tpe" and self.sized:
            label += " (multivariate, grouped)"
        random = self.startup if self.random is None else self.random
        if random:
            label += f", {random} random trial{'s' if random > 1 else ''} first"
        why = f"{self.why}; {self.imported} imported trials observed" if self.imported and not self.sized else self.why
        portfolio = f"portfolio: {self.portfolio} point{'s' if self.portfolio > 1 else ''}, then " if self.portfolio else ""
        return f"{portfolio}sampler {label} ({why})"


def optuna_startup(name: str) -> int:
    """Random trials Optuna's sampler of this name starts with under its own defaults."""
    return {"tpe": 10, "gp": 10, "cmaes": 1}.get(name, 0)


def choose_sampler(plan: SearchPlan, trials: int | None = None, imported: Imported = Imported()) -> SamplerChoice:
    """The sampler of a search of `trials` trials (None: the plan's) as `plan` runs it (see the
    module's rules: its fixed configuration's search.sampler, scheduler, concurrency, metrics),
    its study holding the `imported` trials of a warm start before its first trial."""
    s = plan.config.search
    trials = plan.trials if trials is None else trials
    known = imported.total
    if s.sampler != "auto":
        counted = imported.counted_by(s.sampler)
        return SamplerChoice(s.sampler, max(0, optuna_startup(s.sampler) - counted), observed=counted, imported=known)
    if plan.grid:
        return SamplerChoice("grid", 0, "every searched key is a grid list", imported=known)
    points = len(s.points_to_evaluate)
    budget = f"{trials} trials" + (f" + {known} imported" if known else "")
    if trials + known - points < MIN_MODEL_TRIALS:
        return SamplerChoice("random", 0, f"{budget}: too few to model", imported=known)
    startup = min(TPE_STARTUP_MAX, max(2, s.max_concurrent, math.ceil(TPE_STARTUP_SHARE * (trials + known))))
    objectives = f", {len(s.metrics)} objectives" if s.metrics else ""
    if s.scheduler == "fifo" and trials + known <= GP_MAX_TRIALS:
        counted = imported.counted_by("gp")
        return SamplerChoice("gp", max(0, startup - counted), f"{budget}, no early stopping{objectives}",
                             observed=counted, imported=known)
    why = f"{budget}, {s.max_concurrent} at a time{objectives}"
    if s.scheduler == "asha" and not s.metrics:
        why += ", pruned trials observed"
    counted = imported.counted_by("tpe")
    return SamplerChoice("tpe", max(0, startup - counted), why, observed=counted, imported=known)
