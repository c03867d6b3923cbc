"""The Optuna searcher vaetune gives Tune, driven the way Tune drives it (no Ray runtime needed)."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from ray import tune

from vaetune.search._searcher import StudySearcher
from vaetune.search._study import make_sampler
from vaetune.spec import asha_rungs

UNIFORM = {"x": FloatDistribution(0, 1)}


def searcher(sampler: str = "tpe", grid=None, max_epochs: int = 4) -> StudySearcher:
    space = {"x": CategoricalDistribution(grid["x"])} if grid else UNIFORM
    s = StudySearcher(metric="val/elbo", mode="min", space=space, sampler=make_sampler(sampler, 0, grid),
                      max_epochs=max_epochs)
    # what Tune does first: its param space (vaetune's, in Tune's terms) is the searcher's already
    assert s.set_search_properties(None, None, {"x": tune.choice([1, 2, 3])} if grid else {"x": tune.uniform(0, 1)})
    return s


def test_trial_stopped_early_is_pruned_with_its_intermediate_values():
    s = searcher()
    s.suggest("a")
    s.on_trial_result("a", {"val/elbo": 5.0, "epoch": 1})
    s.on_trial_complete("a", {"val/elbo": 4.0, "epoch": 2})  # the result ASHA stopped it on
    trial = s.study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {1: 5.0, 2: 4.0}


def test_full_trial_completes_and_failures_fail():
    s = searcher()
    for tid in "abc":
        s.suggest(tid)
    s.on_trial_complete("a", {"val/elbo": 3.0, "epoch": 4})
    s.on_trial_complete("b", {"val/elbo": float("nan"), "epoch": 4})
    s.on_trial_complete("c", None, error=True)
    states = [t.state for t in s.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.FAIL]
    assert s.study.trials[0].value == 3.0


def test_two_objectives_with_a_floor_reach_optuna_with_each_trials_violation():
    """Each trial is told with both objectives and how far its KL lies below the floor (5 - KL,
    0 when it holds), so Optuna's own front leaves out the trial that broke it."""
    s = StudySearcher(metric=["val/mse", "eval/fid_sample"], mode=["min", "min"], space=UNIFORM,
                      sampler=make_sampler("tpe", 0), max_epochs=2, constraints={"val/kl": {"min": 5.0}})
    assert s.set_search_properties(None, None, {"x": tune.uniform(0, 1)})
    for tid in "abcd":
        s.suggest(tid)
    s.on_trial_complete("a", {"val/mse": 0.01, "eval/fid_sample": 300.0, "val/kl": 2.0, "epoch": 2})  # broke it
    s.on_trial_complete("b", {"val/mse": 0.02, "eval/fid_sample": 200.0, "val/kl": 8.0, "epoch": 2})
    s.on_trial_complete("c", {"val/mse": 0.03, "eval/fid_sample": 250.0, "val/kl": 9.0, "epoch": 2})  # beaten by b
    s.on_trial_complete("d", {"val/mse": 0.5, "val/kl": 9.0, "epoch": 1})  # stopped early: pruned
    a, b, c, d = s.study.trials
    assert [t.state for t in (a, b, c)] == [optuna.trial.TrialState.COMPLETE] * 3
    assert d.state == optuna.trial.TrialState.PRUNED and d.intermediate_values == {}  # none for two objectives
    assert a.values == [0.01, 300.0] and a.constraints == {"val/kl >= 5": 3.0}
    assert b.constraints == {"val/kl >= 5": 0.0} and c.constraints == {"val/kl >= 5": 0.0}
    # without the floor a (best val/mse) and b (best FID) would both be on the front
    assert [t.number for t in s.study.best_trials] == [b.number]


def test_intermediate_values_follow_epochs_not_training_iteration():
    s = searcher()
    s.suggest("a")
    # a restored trial: Tune's training_iteration restarts at 1, vaetune's epoch goes on
    s.on_trial_result("a", {"val/elbo": 5.0, "epoch": 3, "training_iteration": 1})
    assert s.study.trials[0].intermediate_values == {3: 5.0}


def test_grid_sampler_runs_out_without_error_under_ask_and_tell():
    s = searcher("grid", grid={"x": [1, 2, 3]})
    for tid in "abc":
        s.suggest(tid)
        s.on_trial_complete(tid, {"val/elbo": 1.0, "epoch": 4})
    assert sorted(t.params["x"] for t in s.study.trials) == [1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in s.study.trials)


def test_grid_sampler_gives_a_failed_point_again_once_every_point_has_started():
    """A resumed grid search replaces a trial its stopped driver lost (told FAIL) with a trial of
    the same point: a sweep must run every (value, seed), none twice."""
    s = searcher("grid", grid={"x": [1, 2, 3]})
    for tid in "ab":
        s.suggest(tid)
    s.on_trial_complete("a", {"val/elbo": 1.0, "epoch": 4})
    s.on_trial_complete("b", None, error=True)  # as fail_lost_trials tells a lost trial
    s.suggest("c")  # the point no trial started comes first
    s.suggest("d")  # then the failed one
    x = {t.user_attrs["tune_trial_id"]: t.params["x"] for t in s.study.trials}
    assert x["c"] not in (x["a"], x["b"]) and x["d"] == x["b"]
    assert sorted(x[t] for t in "acd") == [1, 2, 3]


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "nsga2"])
def test_every_sampler_builds(name):
    assert isinstance(make_sampler(name, 0), optuna.samplers.BaseSampler)


def test_asha_rungs():
    assert asha_rungs(1, 3, 10) == [1, 3, 9]
    assert asha_rungs(2, 2, 8) == [2, 4]


def test_restore_fails_trials_asked_after_the_saved_state_and_keeps_the_others(tmp_path):
    """A killed driver's searcher state is from its last snapshot; a trial it asked of the study
    after that is unknown to the restored search and must not stay RUNNING in the study."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"

    def make() -> StudySearcher:
        s = StudySearcher(metric="val/elbo", mode="min", space=UNIFORM, sampler=make_sampler("tpe", 0), max_epochs=4,
                          storage=optuna.storages.RDBStorage(storage), study_name="s")
        assert s.set_search_properties(None, None, {"x": tune.uniform(0, 1)})
        return s

    first = make()
    for tid in ("a", "b", "e"):
        first.suggest(tid)
    first.on_trial_complete("a", {"val/elbo": 3.0, "epoch": 4})
    first.save(str(tmp_path / "searcher.pkl"))  # the snapshot
    first.suggest("c")  # started after it; then the driver is killed
    first.on_trial_complete("e", {"val/elbo": 1.5, "epoch": 4})  # finished after it

    restored = make()
    restored.restore(str(tmp_path / "searcher.pkl"))
    study = optuna.load_study(study_name="s", storage=storage)
    by_tune_id = {t.user_attrs["tune_trial_id"]: t.state for t in study.trials}
    S = optuna.trial.TrialState
    assert by_tune_id == {"a": S.COMPLETE, "b": S.RUNNING, "c": S.FAIL, "e": S.COMPLETE}
    restored.on_trial_complete("b", {"val/elbo": 2.0, "epoch": 4})  # the resumed trial still reports
    # Tune runs "e" again from the snapshot's checkpoint: its reports must not touch the finished trial
    restored.on_trial_result("e", {"val/elbo": 9.0, "epoch": 3})
    restored.on_trial_complete("e", {"val/elbo": 9.0, "epoch": 4})
    restored.suggest("d")  # and the search asks new ones
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert {t.user_attrs["tune_trial_id"]: t.state for t in trials} == {
        "a": S.COMPLETE, "b": S.COMPLETE, "c": S.FAIL, "e": S.COMPLETE, "d": S.RUNNING}
    assert {t.user_attrs["tune_trial_id"]: t.value for t in trials if t.state == S.COMPLETE} == {
        "a": 3.0, "b": 2.0, "e": 1.5}


def test_the_study_names_its_metric_and_each_trials_tune_trial_and_keeps_the_first_outcome():
    """Through the study alone: its values are named by the metric, each Optuna trial names the Tune
    trial it is, a Tune trial asked again is the same Optuna trial, and a trial told once is not
    told again (Tune may hand its last result twice; a restored trial runs its epochs again)."""
    s = searcher()
    first = s.suggest("a")
    assert s.suggest("a") == first
    study = optuna.load_study(study_name=s.study.study_name, storage=s.storage)  # as its readers open it
    (trial,) = study.trials
    assert trial.user_attrs["tune_trial_id"] == "a" and trial.params == first
    s.on_trial_complete("a", {"val/elbo": 1.0, "epoch": 4})
    s.on_trial_result("a", {"val/elbo": 0.5, "epoch": 4})
    s.on_trial_complete("a", {"val/elbo": 0.5, "epoch": 4})
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 1.0
    assert trial.intermediate_values == {4: 1.0}
    assert study.metric_names == ["val/elbo"]


def test_the_starting_points_run_first_and_once_when_a_search_is_resumed(tmp_path):
    """`search.points_to_evaluate` are enqueued when the study is created; a resumed search opens
    the same study and does not enqueue them again (its trials after the points are the sampler's)."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    points = [{"x": 0.25}, {"x": 0.75}]

    def make() -> StudySearcher:
        return StudySearcher(metric="val/elbo", mode="min", space=UNIFORM, sampler=make_sampler("random", 0),
                             max_epochs=1, storage=optuna.storages.RDBStorage(storage), study_name="s",
                             points_to_evaluate=points)

    first = make()
    assert [first.suggest("a"), first.suggest("b")] == points
    first.on_trial_complete("a", {"val/elbo": 1.0, "epoch": 1})
    resumed = make()
    assert resumed.suggest("c")["x"] not in (0.25, 0.75)
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.params["x"] for t in trials][:2] == [0.25, 0.75] and len(trials) == 3  # none waits to run again


@pytest.mark.parametrize("written", [{"loguniform": [1e-3, 10]}, {"uniform": [0.1, 0.9]}, {"quniform": [8, 64, 8]},
                                     {"randint": [2, 6]}, {"choice": ["a", "b"]}, {"grid": [1, 2, 4]}])
def test_each_searched_key_reaches_the_study_as_rays_optunasearch_recorded_it(written):
    """The searcher's own Optuna distributions are the ones Ray's OptunaSearch made of the same key
    (Tune's distribution, a grid list as a choice): the studies of earlier searches stay one study."""
    from ray.tune.search.optuna import OptunaSearch

    from vaetune.spec import Distribution

    (kind, args), = written.items()
    d = Distribution(kind=kind, args=tuple(args))
    tuned = tune.choice(list(d.args)) if kind == "grid" else d.to_tune()
    assert d.to_optuna() == OptunaSearch.convert_search_space({"k": tuned})["k"]


def test_a_restored_search_goes_on_to_the_trials_its_search_json_plans(tmp_path):
    """Tune restores the trial count a search started with; `--resume` with more trials writes
    the new count to search.json, and the restored search goes on to it."""
    import json

    from ray.tune.experiment import Experiment
    from ray.tune.search import ConcurrencyLimiter

    from vaetune.search._searcher import PlannedSearch

    def make() -> PlannedSearch:
        s = StudySearcher(metric="val/elbo", mode="min", space=UNIFORM, sampler=make_sampler("random", 0),
                          max_epochs=1, storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"),
                          study_name="s")
        search = PlannedSearch(ConcurrencyLimiter(s, max_concurrent=2), tmp_path)
        assert search.set_search_properties(None, None, {"x": tune.uniform(0, 1)})
        return search

    search = make()
    search.add_configurations(Experiment("e", run=lambda config: None, num_samples=2,
                                         storage_path=str(tmp_path / "ray")))
    started = [search.next_trial() for _ in range(3)]
    assert started[2] is None and search.is_finished()  # 2 trials planned
    for trial in started[:2]:
        search.on_trial_complete(trial.trial_id, {"val/elbo": 1.0, "epoch": 1})
    (tmp_path / "snapshot").mkdir()
    search.save_to_dir(str(tmp_path / "snapshot"), session_str="s")
    (tmp_path / "search.json").write_text(json.dumps({"trials": 3}))

    restored = make()  # as Tune unpickles the Tuner's, then restores it from the snapshot
    restored.restore_from_dir(str(tmp_path / "snapshot"))
    assert restored.total_samples == 3 and not restored.is_finished()
    assert restored.next_trial() is not None and restored.next_trial() is None and restored.is_finished()
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials) == 3


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_restored_searcher_asks_what_the_search_would_have_asked_next(tmp_path, sampler):
    """The sampler is saved with the searcher's state: a search stopped and resumed asks the trials
    the same search asks when it runs through (search.seed: one search, one sequence of trials)."""

    def make(name: str) -> StudySearcher:
        return StudySearcher(metric="val/elbo", mode="min", space=UNIFORM, sampler=make_sampler(sampler, 0),
                             max_epochs=1, storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}"),
                             study_name=name)

    through = make("through")
    expected = [through.suggest(t)["x"] for t in "ab"]
    stopped = make("stopped")
    assert stopped.suggest("a")["x"] == expected[0]
    stopped.save(str(tmp_path / "searcher.pkl"))
    resumed = make("stopped")  # as Tune builds it again, then restores its state
    resumed.restore(str(tmp_path / "searcher.pkl"))
    assert resumed.suggest("b")["x"] == expected[1] != expected[0]
