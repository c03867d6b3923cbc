"""The Optuna searcher vaetune gives Tune, driven the way Tune drives it (no Ray runtime needed)."""

from __future__ import annotations

import optuna
import pytest
from ray import tune

from vaetune.search._searcher import TruthfulOptunaSearch, make_sampler
from vaetune.spec import asha_rungs


def searcher(sampler: str = "tpe", grid=None, max_epochs: int = 4) -> TruthfulOptunaSearch:
    s = TruthfulOptunaSearch(metric="val/elbo", mode="min", sampler=make_sampler(sampler, 0, grid),
                             max_epochs=max_epochs)
    space = {"x": tune.choice([1, 2, 3])} if grid else {"x": tune.uniform(0, 1)}
    assert s.set_search_properties(None, None, space)
    return s


def test_trial_stopped_early_is_pruned_with_its_intermediate_values():
    s = searcher()
    s.suggest("a")
    s.on_trial_result("a", {"val/elbo": 5.0, "epoch": 1})
    s.on_trial_complete("a", {"val/elbo": 4.0, "epoch": 2})  # the result ASHA stopped it on
    trial = s._ot_study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {1: 5.0, 2: 4.0}


def test_full_trial_completes_and_failures_fail():
    s = searcher()
    for tid in "abc":
        s.suggest(tid)
    s.on_trial_complete("a", {"val/elbo": 3.0, "epoch": 4})
    s.on_trial_complete("b", {"val/elbo": float("nan"), "epoch": 4})
    s.on_trial_complete("c", None, error=True)
    states = [t.state for t in s._ot_study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.FAIL]
    assert s._ot_study.trials[0].value == 3.0


def test_two_objectives_with_a_floor_reach_optuna_with_each_trials_violation():
    """Each trial is told with both objectives and how far its KL lies below the floor (5 - KL,
    0 when it holds), so Optuna's own front leaves out the trial that broke it."""
    s = TruthfulOptunaSearch(metric=["val/mse", "eval/fid_sample"], mode=["min", "min"],
                             sampler=make_sampler("tpe", 0), max_epochs=2, constraints={"val/kl": {"min": 5.0}})
    assert s.set_search_properties(None, None, {"x": tune.uniform(0, 1)})
    for tid in "abcd":
        s.suggest(tid)
    s.on_trial_complete("a", {"val/mse": 0.01, "eval/fid_sample": 300.0, "val/kl": 2.0, "epoch": 2})  # broke it
    s.on_trial_complete("b", {"val/mse": 0.02, "eval/fid_sample": 200.0, "val/kl": 8.0, "epoch": 2})
    s.on_trial_complete("c", {"val/mse": 0.03, "eval/fid_sample": 250.0, "val/kl": 9.0, "epoch": 2})  # beaten by b
    s.on_trial_complete("d", {"val/mse": 0.5, "val/kl": 9.0, "epoch": 1})  # stopped early: pruned
    a, b, c, d = s._ot_study.trials
    assert [t.state for t in (a, b, c)] == [optuna.trial.TrialState.COMPLETE] * 3
    assert d.state == optuna.trial.TrialState.PRUNED and d.intermediate_values == {}  # none for two objectives
    assert a.values == [0.01, 300.0] and a.constraints == {"val/kl >= 5": 3.0}
    assert b.constraints == {"val/kl >= 5": 0.0} and c.constraints == {"val/kl >= 5": 0.0}
    # without the floor a (best val/mse) and b (best FID) would both be on the front
    assert [t.number for t in s._ot_study.best_trials] == [b.number]


def test_intermediate_values_follow_epochs_not_training_iteration():
    s = searcher()
    s.suggest("a")
    # a restored trial: Tune's training_iteration restarts at 1, vaetune's epoch goes on
    s.on_trial_result("a", {"val/elbo": 5.0, "epoch": 3, "training_iteration": 1})
    assert s._ot_study.trials[0].intermediate_values == {3: 5.0}


def test_grid_sampler_runs_out_without_error_under_ask_and_tell():
    s = searcher("grid", grid={"x": [1, 2, 3]})
    for tid in "abc":
        s.suggest(tid)
        s.on_trial_complete(tid, {"val/elbo": 1.0, "epoch": 4})
    assert sorted(t.params["x"] for t in s._ot_study.trials) == [1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in s._ot_study.trials)


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
    x = {t.user_attrs["tune_trial_id"]: t.params["x"] for t in s._ot_study.trials}
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

    def make() -> TruthfulOptunaSearch:
        s = TruthfulOptunaSearch(metric="val/elbo", mode="min", sampler=make_sampler("tpe", 0), max_epochs=4,
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


def test_the_private_parts_of_optunasearch_vaetune_builds_on_are_there():
    # TruthfulOptunaSearch extends Ray's OptunaSearch through attributes Ray does not document;
    # pyproject.toml bounds ray[tune] above, and this test says loudly what a new Ray changed
    s = searcher()
    s.suggest("a")
    assert isinstance(s._ot_study, optuna.Study), "OptunaSearch._ot_study is gone"
    assert isinstance(s._ot_trials, dict) and isinstance(s._ot_trials["a"], optuna.Trial), \
        "OptunaSearch._ot_trials (Tune trial id -> optuna.Trial) changed"
    assert s._ot_trials["a"].user_attrs["tune_trial_id"] == "a"
    s.on_trial_complete("a", {"val/elbo": 1.0, "epoch": 4})
    assert isinstance(s._completed_trials, set) and "a" in s._completed_trials, \
        "OptunaSearch._completed_trials changed"
    assert s._ot_study.metric_names == ["val/elbo"], "OptunaSearch._setup_study (the study's metric names) changed"

