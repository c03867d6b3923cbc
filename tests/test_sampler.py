"""search.sampler auto: which Optuna sampler a search gets, sized to its trials, and that it models.

Each expected choice below is worked out by hand from the rules in vaetune/search/_sampler.py's
docstring (a grid space: grid; several objectives: NSGA-II; fewer than 4 trials beyond the
starting points: random; FIFO with <= 64 trials: GP; else TPE), with start-up trials
= min(10, max(2, concurrency, ceil(trials / 3))).
"""

from __future__ import annotations

import optuna
import pytest

from vaetune.search._sampler import choose_sampler
from vaetune.search._study import make_sampler
from vaetune.spec import SearchPlan, space_from_dict

NUMBERS = {"train.lr": {"loguniform": [1e-4, 1e-2]}, "train.beta": {"loguniform": [0.01, 10]}}
MIXED = {**NUMBERS, "model.latent_dim": {"choice": [4, 8, 16]}}
GRID = {"train.beta": {"grid": [0.1, 1]}, "model.latent_dim": {"grid": [4, 8]}}


def space(params: dict, **search):
    raw = {"name": "s", "data": {"source": "builtin:sprites", "image_size": 16}, "model": {"arch": "conv"},
           "train": {"epochs": 4}, "search": search}
    for key, dist in params.items():
        section, name = key.split(".")
        raw[section][name] = dist
    return space_from_dict(raw, "s.yaml")


@pytest.mark.parametrize(("params", "search", "trials", "expected"), [
    # the quick start: 8 trials, 2 at a time, ASHA, a categorical key: TPE after max(2, 2, ceil(8/3)=3)
    (MIXED, {"num_samples": 8, "max_concurrent": 2}, 8, ("tpe", 3)),
    # 24 trials, 2 at a time: ceil(24/3) = 8 random first
    (MIXED, {"num_samples": 24, "max_concurrent": 2}, 24, ("tpe", 8)),
    # 200 trials: a third would be 67, capped at Optuna's own 10
    (MIXED, {"num_samples": 200}, 200, ("tpe", 10)),
    # 8 at a time: at least one random trial per trial running at once
    (MIXED, {"num_samples": 16, "max_concurrent": 8}, 16, ("tpe", 8)),
    # 3 trials: nothing to model
    (MIXED, {"num_samples": 3}, 3, ("random", 0)),
    # 5 trials of which 2 are starting points: 3 left, below 4
    (NUMBERS, {"num_samples": 5, "points_to_evaluate": [{"train.beta": 1.0}, {"train.beta": 0.1}]}, 5,
     ("random", 0)),
    # FIFO over two numbers, 12 trials: the GP, after max(2, 2, 4) = 4
    (NUMBERS, {"num_samples": 12, "scheduler": "fifo"}, 12, ("gp", 4)),
    # the same under ASHA: the GP would ignore the pruned trials, so TPE
    (NUMBERS, {"num_samples": 12}, 12, ("tpe", 4)),
    # FIFO with a categorical key too: the GP
    (MIXED, {"num_samples": 12, "scheduler": "fifo"}, 12, ("gp", 4)),
    # FIFO over numbers with 100 trials: beyond the GP's 64, TPE
    (NUMBERS, {"num_samples": 100, "scheduler": "fifo"}, 100, ("tpe", 10)),
    # grid lists: the grid, whatever the count
    (GRID, {"num_samples": 4}, 4, ("grid", 0)),
    # two objectives and no search.metric: FIFO, so the GP (which models a front), after max(2, 2, 6) = 6
    (MIXED, {"num_samples": 16, "metrics": ["val/recon", "val/kl"]}, 16, ("gp", 6)),
    # two objectives under ASHA on a declared metric: TPE (GP would see few completed trials)
    (MIXED, {"num_samples": 16, "metrics": ["val/recon", "val/kl"], "scheduler": "asha", "metric": "val/recon"}, 16,
     ("tpe", 6)),
    # NSGA-II runs only when named (its generations of 50 make a small search random)
    (MIXED, {"num_samples": 16, "metrics": ["val/recon", "val/kl"], "sampler": "nsga2"}, 16, ("nsga2", 0)),
    # a sampler named: Optuna's own settings (TPE's 10 random trials)
    (MIXED, {"num_samples": 8, "sampler": "tpe"}, 8, ("tpe", 10)),
    (MIXED, {"num_samples": 8, "sampler": "random"}, 8, ("random", 0)),
])
def test_auto_sizes_the_sampler_to_the_search(params, search, trials, expected):
    s = space(params, **search)
    choice = choose_sampler(SearchPlan.of(s), trials)
    assert (choice.name, choice.startup) == expected


def test_the_choice_is_described_in_one_phrase():
    s = space(MIXED, num_samples=8, max_concurrent=2)
    choice = choose_sampler(SearchPlan.of(s), 8)
    assert choice.describe() == ("sampler TPE (multivariate, grouped), 3 random trials first "
                                 "(8 trials, 2 at a time, pruned trials observed)")
    named = space(MIXED, num_samples=8, sampler="tpe")
    assert choose_sampler(SearchPlan.of(named), 8).describe() == (
        "sampler TPE, 10 random trials first (as search.sampler names it)")


def _best_value(sampler, n: int) -> float:
    """Optuna's ask/tell on f(x, y) = (x - 0.3)² + (y - 0.6)² over [0, 1]²: the best of n trials."""
    study = optuna.create_study(sampler=sampler)
    for _ in range(n):
        trial = study.ask()
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        study.tell(trial, (x - 0.3) ** 2 + (y - 0.6) ** 2)
    return study.best_value


@pytest.mark.slow
def test_the_sized_samplers_model_where_optunas_defaults_are_still_random():
    """In 10 trials Optuna's default TPE is random throughout (10 start-up trials): the best of 10
    uniform points lies at a squared distance of about 0.02 from the optimum (P(d² > t) = (1 - πt)^10
    for small t: median t = (1 - 0.5^0.1) / π ≈ 0.021). auto's GP for a 10-trial FIFO search
    models after 4 random trials and gets far closer; summed over seeds to average out luck."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = space(NUMBERS, num_samples=10, scheduler="fifo")
    choice = choose_sampler(SearchPlan.of(s), 10)
    assert (choice.name, choice.startup) == ("gp", 4)
    sized = sum(_best_value(make_sampler(choice, seed), 10) for seed in range(3))
    default = sum(_best_value(optuna.samplers.TPESampler(seed=seed), 10) for seed in range(3))
    assert sized < 0.25 * default
