"""The portfolio: configurations that did well on other collections take the place of a search's
random start-up trials (vaetune/search/_portfolio.py).

Each expected value below is worked out by hand from the rules in that module's docstring and the
start-up sizing of vaetune/search/_sampler.py: start-up = min(10, max(2, concurrency,
ceil(trials / 3))), of which the space's own points come first and the portfolio fills the rest
(all the trials but the own points where there are too few to model)."""

from __future__ import annotations

import csv
import math

import pytest

from vaetune.search._portfolio import (
    CONDITIONS,
    LEARNED_ON,
    PORTFOLIO_FILE,
    RANK,
    REGRET,
    Portfolio,
    project,
    read_portfolio,
    starting,
)
from vaetune.spec import SearchPlan, space_from_dict

# the quick start's searched keys (search_spaces/sprites.yaml): width fixed at 32
SPRITES = {"model.latent_dim": {"choice": [4, 8, 16, 32]}, "train.lr": {"loguniform": [0.0001, 0.003]},
           "train.beta": {"loguniform": [0.001, 10]}, "train.warmup_epochs": {"uniform": [0, 3]}}
LEARNED = {"model.arch": "conv", "train.recon_loss": "bce"}
# three points of the offline table's shape: width, latent size, lr, beta, warm-up
POINTS = (
    {"model.width": 16, "model.latent_dim": 64, "train.lr": 0.002, "train.beta": 0.05, "train.warmup_epochs": 5.0},
    {"model.width": 32, "model.latent_dim": 8, "train.lr": 0.0003, "train.beta": 0.5, "train.warmup_epochs": 1.5},
    {"model.width": 32, "model.latent_dim": 16, "train.lr": 0.01, "train.beta": 2.0, "train.warmup_epochs": 0.0},
)
PORTFOLIO = Portfolio(POINTS, LEARNED)


def plan(params: dict, recon_loss: str = "bce", **search) -> SearchPlan:
    raw = {"name": "s", "data": {"source": "builtin:sprites", "image_size": 16},
           "model": {"arch": "conv", "width": 32}, "train": {"epochs": 6, "recon_loss": recon_loss},
           "search": {"num_samples": 8, "max_concurrent": 2, **search}}
    for key, dist in params.items():
        section, name = key.split(".")
        raw[section][name] = dist
    return SearchPlan.of(space_from_dict(raw, "s.yaml"))


def test_a_point_is_projected_into_the_space_it_starts():
    p = plan({**SPRITES, "model.width": {"choice": [16, 24]}, "train.epochs": {"randint": [2, 5]}}).space.params
    got = project({"model.latent_dim": 64, "train.lr": 0.01, "train.beta": 0.05, "train.warmup_epochs": 5.0,
                   "model.width": 32, "train.epochs": 7.6, "train.cycles": 3}, p)
    # latent 64: not a choice, the nearest on a log scale is 32; lr 0.01 above 0.003: clipped; β inside: kept;
    # warm-up 5 above 3: clipped; width 32: nearest of 16, 24 in log terms is 24 (log 32/24 < log 24/16);
    # epochs 7.6 -> 8, above randint's highest (4); cycles not searched: dropped
    assert got == {"model.latent_dim": 32, "train.lr": 0.003, "train.beta": 0.05, "train.warmup_epochs": 3.0,
                   "model.width": 24, "train.epochs": 4}
    # a value a categorical key cannot approach (no numeric choice): left to the default
    assert project({"train.recon_loss": "mse"}, {"train.recon_loss": plan(
        {"train.recon_loss": {"choice": ["bce", "calibrated"]}}).space.params["train.recon_loss"]}) == {}


def test_the_portfolio_takes_the_random_start_up_trials_after_the_own_points():
    own = {"train.beta": 1.0, "model.latent_dim": 16, "train.lr": 0.002, "train.warmup_epochs": 0}
    p = plan(SPRITES, points_to_evaluate=[own])
    choice, start = starting(p, portfolio=PORTFOLIO)
    # 8 trials, 2 at a time: 3 start-up trials, the first the own point: 2 portfolio points, no random one
    assert (choice.name, choice.startup, choice.portfolio, choice.random) == ("tpe", 3, 2, 0)
    assert start.points == (
        {"model.latent_dim": 32, "train.lr": 0.002, "train.beta": 0.05, "train.warmup_epochs": 3.0},
        {"model.latent_dim": 8, "train.lr": 0.0003, "train.beta": 0.5, "train.warmup_epochs": 1.5},
    )
    assert choice.describe() == ("portfolio: 2 points, then sampler TPE (multivariate, grouped) "
                                 "(8 trials, 2 at a time, pruned trials observed)")


def test_a_point_the_space_already_starts_from_runs_once():
    # the first portfolio point, as projected, is the space's own starting point: the next two take the slots
    own = {"model.latent_dim": 32, "train.lr": 0.002, "train.beta": 0.05, "train.warmup_epochs": 3.0}
    _, start = starting(plan(SPRITES, points_to_evaluate=[own]), portfolio=PORTFOLIO)
    assert [p["model.latent_dim"] for p in start.points] == [8, 16]


def test_a_portfolio_shorter_than_the_start_up_leaves_random_trials():
    # 24 trials: 8 start-up trials, 3 portfolio points, 5 random ones
    choice, start = starting(plan(SPRITES, num_samples=24), portfolio=PORTFOLIO)
    assert (choice.startup, choice.portfolio, choice.random, len(start.points)) == (8, 3, 5, 3)
    assert choice.describe().startswith("portfolio: 3 points, then sampler TPE (multivariate, grouped), "
                                        "5 random trials first (24 trials")


def test_too_few_trials_to_model_are_all_portfolio_points():
    # 4 trials, 1 own point: 3 beyond it, too few to model; the 3 others are the portfolio's 3
    own = {"train.beta": 1.0}
    choice, start = starting(plan(SPRITES, num_samples=4, points_to_evaluate=[own]), portfolio=PORTFOLIO)
    assert (choice.name, choice.portfolio, len(start.points)) == ("random", 3, 3)
    assert choice.describe() == "portfolio: 3 points, then sampler random (4 trials: too few to model)"
    # a searched key the point lacks takes its default, as an own point's does (loguniform: geometric mean)
    _, start = starting(plan({"train.beta": {"loguniform": [0.01, 1]}, "train.grad_clip": {"uniform": [1, 3]}},
                             num_samples=2), portfolio=PORTFOLIO)
    assert start.points[0] == {"train.beta": 0.05, "train.grad_clip": 2.0}


@pytest.mark.parametrize(("recon_loss", "search", "why"), [
    ("bce", {"portfolio": "none"}, "search.portfolio is none"),
    ("bce", {"sampler": "tpe"}, "search.sampler tpe"),
    ("mse", {}, "the portfolio was learned with train.recon_loss bce, this space has mse"),
])
def test_no_portfolio_where_it_is_turned_off_or_was_learned_otherwise(recon_loss, search, why):
    choice, start = starting(plan(SPRITES, recon_loss, **search), portfolio=PORTFOLIO)
    assert (start.points, start.why_none, choice.portfolio) == ((), why, 0)
    assert not choice.describe().startswith("portfolio")


def test_a_searched_condition_is_set_to_what_the_portfolio_learned():
    choice, start = starting(plan({**SPRITES, "train.recon_loss": {"choice": ["mse", "bce"]}}),
                             portfolio=PORTFOLIO)
    assert choice.portfolio == 3 and {p["train.recon_loss"] for p in start.points} == {"bce"}


def test_the_shipped_portfolio_is_read_as_its_file_says(tmp_path):
    """The package data, read with the csv module here, against the reader."""
    from importlib import resources

    text = resources.files("vaetune.search").joinpath(PORTFOLIO_FILE).read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) >= 4 and [int(r[RANK]) for r in rows] == list(range(1, len(rows) + 1))
    shipped = read_portfolio()
    assert shipped.conditions == {k: rows[0][k] for k in CONDITIONS} == LEARNED
    assert shipped.learned_on == rows[0][LEARNED_ON] and "pokesprite" in shipped.learned_on
    for row, point in zip(rows, shipped.points, strict=True):
        assert set(point) == {k for k in row if "." in k} - set(CONDITIONS)
        for key, value in point.items():
            assert math.isclose(float(row[key]), value)
    # the regret once each point is in never rises (greedy: each point lowers it or keeps it)
    regrets = [float(r[REGRET]) for r in rows]
    assert regrets == sorted(regrets, reverse=True)


def test_a_warm_start_counts_its_trials_and_no_point_runs_what_it_ran(tmp_path):
    """A warm start's imported trials count towards the start-up (TPE counts completed and pruned),
    and a portfolio point an imported trial ran is not run again."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    from vaetune.search import WarmStart

    p = plan(SPRITES, num_samples=12)
    dists = {k: d.to_optuna() for k, d in p.space.params.items()}
    assert isinstance(dists["model.latent_dim"], CategoricalDistribution)
    assert isinstance(dists["train.lr"], FloatDistribution)
    first = {"model.latent_dim": 32, "train.lr": 0.002, "train.beta": 0.05, "train.warmup_epochs": 3.0}
    other = {"model.latent_dim": 4, "train.lr": 0.001, "train.beta": 1.0, "train.warmup_epochs": 0.0}
    trials = tuple(create_trial(params=params, distributions=dists, value=1.0, state=TrialState.COMPLETE)
                   for params in (first, other))
    warm = WarmStart(source=tmp_path, trials=trials, total=2)
    choice, start = starting(p, warm, portfolio=PORTFOLIO)
    # 12 trials + 2 imported: start-up max(2, 2, ceil(14/3) = 5), of which the 2 imported count: 3 slots;
    # the portfolio's first point is the first imported trial's: its other 2 take them
    assert (choice.startup, choice.observed, choice.portfolio) == (3, 2, 2)
    assert [q["model.latent_dim"] for q in start.points] == [8, 16]


@pytest.mark.slow
def test_a_new_search_starts_with_the_shipped_portfolios_points(tmp_path):
    """A real search (Ray, Optuna, MLflow; one epoch a trial): its own point, then the shipped
    portfolio's first two points as this test projects them from the file, then nothing random."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from importlib import resources

    import optuna
    import yaml
    from guards import HANG_GUARD_S

    from vaetune.results import SEARCH_FILE, optuna_url
    from vaetune.search import PORTFOLIO_KEY

    latents, lr, beta, warmup = [2, 4, 8, 16], (1e-4, 3e-3), (0.01, 4.0), (0.0, 2.0)
    raw = {"name": "p", "data": {"source": "builtin:sprites", "image_size": 16, "count": 64, "min_images": 16,
                                 "cache_dir": str(tmp_path / "cache")},
           "model": {"arch": "conv", "width": 4, "latent_dim": {"choice": latents}},
           "train": {"epochs": 1, "batch_size": 16, "num_threads": 1, "grid_size": 2, "recon_loss": "bce",
                     "lr": {"loguniform": list(lr)}, "beta": {"loguniform": list(beta)},
                     "warmup_epochs": {"uniform": list(warmup)}},
           "search": {"num_samples": 3, "max_concurrent": 1, "max_failures": 0,
                      "points_to_evaluate": [{"train.beta": 1.0}]},
           "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))

    # what the file says, projected by hand: the nearest latent size on a log scale, the rest clipped
    rows = list(csv.DictReader(resources.files("vaetune.search").joinpath(PORTFOLIO_FILE).read_text().splitlines()))
    own = {"model.latent_dim": 2, "train.lr": math.sqrt(lr[0] * lr[1]), "train.beta": 1.0,
           "train.warmup_epochs": sum(warmup) / 2}  # a starting point's other keys take their defaults
    expected = []
    for row in sorted(rows, key=lambda r: int(r[RANK])):
        point = {"model.latent_dim": min(latents, key=lambda z: abs(math.log(z / float(row["model.latent_dim"])))),
                 "train.lr": min(max(float(row["train.lr"]), lr[0]), lr[1]),
                 "train.beta": min(max(float(row["train.beta"]), beta[0]), beta[1]),
                 "train.warmup_epochs": min(max(float(row["train.warmup_epochs"]), warmup[0]), warmup[1])}
        if point != own and point not in expected:
            expected.append(point)
    expected = expected[:2]  # 3 trials, 1 own point: too few to model, the other 2 are the portfolio's

    ray_tmp = tempfile.mkdtemp(prefix="vp", dir="/tmp")  # short: Ray's socket paths are limited
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "RAY_TMPDIR": ray_tmp}
    try:
        done = subprocess.run([sys.executable, "-m", "vaetune.cli", "search", str(path)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=HANG_GUARD_S)
    finally:
        subprocess.run(["pkill", "-9", "-f", ray_tmp], check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    first = done.stdout.splitlines()[0]
    assert "; portfolio: 2 points, then sampler random (3 trials: too few to model);" in first, first
    results = tmp_path / "results" / "p"
    trials = sorted(optuna.load_study(study_name="p", storage=optuna_url(results)).trials, key=lambda t: t.number)
    assert len(trials) == 3
    for trial, point in zip(trials, [own, *expected], strict=True):
        assert trial.params.keys() == point.keys()
        for key, value in point.items():
            assert trial.params[key] == pytest.approx(value, rel=1e-9), (trial.number, key)
    recorded = json.loads((results / SEARCH_FILE).read_text())[PORTFOLIO_KEY]["points"]
    assert [{k: pytest.approx(v) for k, v in q.items()} for q in expected] == recorded


def test_a_portfolio_of_ones_own_is_a_csv_of_the_same_columns(tmp_path):
    path = tmp_path / "ours.csv"
    # written out of rank order, one point without a warm-up (its default then), extra columns ignored
    path.write_text("rank,train.beta,train.warmup_epochs,train.recon_loss,model.arch,note\n"
                    "2,0.3,,bce,conv,second\n1,0.02,2.5,bce,conv,first\n")
    p = plan(SPRITES, num_samples=4, portfolio=str(path))
    choice, start = starting(p)
    # 4 trials, 2 at a time: TPE after max(2, 2, ceil(4/3)) = 2 start-up trials, both the file's points
    assert (choice.name, choice.startup, choice.portfolio) == ("tpe", 2, 2)
    defaults = {"model.latent_dim": 4, "train.lr": math.sqrt(0.0001 * 0.003)}
    assert start.points == ({**defaults, "train.beta": 0.02, "train.warmup_epochs": 2.5},
                            {**defaults, "train.beta": 0.3, "train.warmup_epochs": 1.5})
