"""The console's words and arithmetic, without a search: names of trials, event lines, the
estimate of the time left, and a terminal view that stays a few lines however many trials run.
(The console of a real search, in a log and on a terminal: tests/test_search.py.)"""

from __future__ import annotations

import pytest

from vaetune.results import end_status, short_value, status_phrase, trial_label
from vaetune.search import RUNNING_ROWS, SearchProgress


@pytest.mark.parametrize("value, shown", [
    (0.0033, "0.0033"), (0.00333, "0.0033"), (2e-4, "2e-4"), (2.1e-4, "2.1e-4"), (1e8, "1e8"),
    (12345, "1.2e4"), (1.7, "1.7"), (2.0, "2"), (128.0, "130"), (0.1, "0.1"), (16, "16"), (0, "0"),
    (-0.25, "-0.25"), ("conv", "conv"), (True, "True"),
])
def test_values_are_shown_with_two_significant_digits(value, shown):
    assert short_value(value) == shown


def test_a_trial_is_named_by_what_it_tried_beta_and_latent_size_first():
    searched = {"model.latent_dim": 4, "train.lr": 2e-4, "train.beta": 0.0033,
                "train.warmup_epochs": 1.73}
    assert trial_label(searched) == "β=0.0033 z=4 lr=2e-4 warmup=1.7"
    # two searched keys ending alike keep their full names
    assert trial_label({"model.width": 32, "data.width": 8}) == "model.width=32 data.width=8"


def test_how_a_trial_ended():
    assert end_status(6, 6) == "completed"
    assert end_status(1, 6) == "stopped"  # the word of summary.csv and MLflow's tag; the console says more:
    assert status_phrase("stopped", 1) == "stopped by ASHA at epoch 1" and status_phrase("completed", 6) == "completed"
    assert end_status(0, 6, "vaetune.models._losses.DivergedError: loss became nan") == "diverged"
    assert end_status(0, 6, "RuntimeError: CUDA out of memory") == "errored"


def test_event_lines_and_the_estimate_of_the_time_left():
    p = SearchProgress("demo", "eval/fid_sample", "min", max_epochs=3, rungs=[1], planned=3,
                       start=0.0)
    assert p.started(1, "β=0.1", now=5.0) == ["[00:05] #1 β=0.1  started"]
    assert p.result(1, 1, 80.0, 10.0, now=15.0) == []  # a rung reached: told once the trial goes on
    # before any trial ended: a trial is 3 epochs of 10 s; two to come, and 30 - 11 s of the first
    assert p.summary(16.0).endswith("~1m19s left")
    passed = "[00:25] #1 β=0.1  passed rung 1  eval/fid_sample 80"
    assert p.result(1, 2, 70.0, 10.0, now=25.0) == [passed]
    assert p.result(1, 3, 75.0, 10.0, now=35.0) == []
    line = "[00:35] #1 β=0.1  completed  eval/fid_sample 75 (best 70 at epoch 2)"
    assert p.ended(1, "completed", now=35.0) == [line]
    # the other two trials are expected to take as long as the first (30 s), one at a time
    assert p.summary(35.0) == ("[00:35] trials 3: 0 running · 0 stopped · 1 completed · 0 failed · "
                               "2 to start · best #1 β=0.1 eval/fid_sample 70 · ~1m00s left")
    p.started(2, "β=1", now=35.0)
    failed = p.ended(2, "diverged", now=40.0, error="DivergedError: nan",
                     traceback_at="results/x/error.txt")
    assert failed == ["[00:40] #2 β=1  diverged: DivergedError: nan "
                      "(traceback: results/x/error.txt)"]


def test_a_resumed_search_counts_the_trials_that_ended_before_but_does_not_time_them():
    p = SearchProgress("demo", "val/elbo", "min", max_epochs=3, rungs=[], planned=4, start=100.0)
    p.restored(1, "β=0.1", "completed", 3, 70.0, now=100.0)
    p.restored(2, "β=1", "diverged", 1, float("nan"), now=100.0)
    assert p.summary(100.0) == ("[00:00] trials 4: 0 running · 0 stopped · 1 completed · 1 failed · "
                                "2 to start · best #1 β=0.1 val/elbo 70 · time left: estimating")
    p.started(3, "β=0.5", now=101.0)
    p.result(3, 1, 90.0, 10.0, now=111.0)
    p.ended(3, "stopped by ASHA at epoch 1", now=111.0)
    # the one trial timed here took 10 s: the one to come is expected to take as long
    assert p.summary(111.0).endswith("best #1 β=0.1 val/elbo 70 · ~0m10s left")


def test_the_terminal_view_stays_a_few_lines_however_many_trials_run():
    p = SearchProgress("big", "val/elbo", "min", max_epochs=6, rungs=[1, 3], planned=200, start=0.0,
                       sampler="sampler TPE, 10 random trials first (as search.sampler names it)")
    for n in range(1, 101):
        p.started(n, f"β={n}", now=float(n))
        p.result(n, 1, 100.0 - n / 10, 5.0, now=n + 5.0)
    view = p.view(now=200.0)
    assert len(view) <= RUNNING_ROWS + 7
    assert view[0] == ("search big: 200 trials of up to 6 epochs; sampler TPE, 10 random trials first (as "
                       "search.sampler names it); ranked by val/elbo (min); ASHA compares them at epochs 1, 3")
    assert view[2] == "trials 200: 100 running · 0 stopped · 0 completed · 0 failed · 100 to start"
    assert view[3] == "best  #100 β=100  val/elbo 90 at epoch 1"
    assert view[-1] == "last  #100 β=100  started"
    assert f"  and {100 - RUNNING_ROWS} more running" in view


def test_with_constraints_an_epoch_outside_them_is_never_the_best():
    """A search held to val/kl >= 5: a collapsed trial's lower loss (its KL below the floor) is
    shown on its line but never called the best; the best is the trial that holds the bound, until
    the collapsed one reports an epoch inside it. Fed through the console's Tune hook, with Tune's
    own Trial objects, so the bound is read from each epoch's reported values."""
    from ray.tune.experiment import Trial

    from vaetune.search import SearchConsole

    p = SearchProgress("held", "val/elbo", "min", max_epochs=3, rungs=[], planned=2, start=0.0)
    console = SearchConsole(p, ["train.beta"], bounds={"val/kl": {"min": 5.0}})
    collapsed, kept = (Trial("run_trial", config={"train.beta": b}, experiment_tag=f"{n}_train_beta={b}", stub=True)
                       for n, b in ((1, 30.0), (2, 0.1)))
    p.started(1, "β=30", now=0.0)
    p.started(2, "β=0.1", now=0.0)
    console.on_trial_result(0, [], collapsed, {"epoch": 1, "val/elbo": 50.0, "val/kl": 2.0})
    console.on_trial_result(0, [], kept, {"epoch": 1, "val/elbo": 80.0, "val/kl": 30.0})
    assert p.best().number == 2 and "best #2 β=0.1 val/elbo 80" in p.summary(1.0)
    assert "  #1 β=30  epoch 1/3  val/elbo 50" in p.view(1.0)  # shown running, with its value
    console.on_trial_result(0, [], collapsed, {"epoch": 2, "val/elbo": 60.0, "val/kl": 6.0})  # now inside the bound
    assert p.best().number == 1 and p.best().best_epoch == 2
    # without constraints the lowest value is the best, whatever its KL
    q = SearchProgress("free", "val/elbo", "min", max_epochs=3, rungs=[], planned=2, start=0.0)
    free = SearchConsole(q, ["train.beta"])
    q.started(1, "β=30", now=0.0)
    free.on_trial_result(0, [], collapsed, {"epoch": 1, "val/elbo": 50.0, "val/kl": 2.0})
    assert q.best().number == 1


def test_the_end_of_a_search_no_trial_of_which_held_its_constraints_says_so(capsys, tmp_path):
    """Every trial reported the metric, none held search.constraints: the last line says that, not
    that no trial reported the metric."""
    from vaetune.commands.search import print_outcome
    from vaetune.search import Outcome

    rows = [{"trial_id": f"t{i}", "status": "completed", "best/val/elbo": 100.0 + i, "feasible": False}
            for i in range(3)]
    held = Outcome(rows=rows, summary_path=None, metric="val/elbo", mode="min", unfinished=0, best=None,
                   held_to="val/kl >= 5")
    print_outcome(held, None, tmp_path, "vaetune search x")
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"no trial held val/kl >= 5: 3 reported val/elbo, each outside them; see the feasible column of "
        f"{tmp_path / 'summary.csv'}")
    errored = Outcome(rows=[{"trial_id": "t0", "status": "errored", "best/val/elbo": float("nan")}],
                      summary_path=None, metric="val/elbo", mode="min", unfinished=0, best=None, held_to="val/kl >= 5")
    print_outcome(errored, None, tmp_path, "vaetune search x")
    assert capsys.readouterr().out.splitlines()[-1].startswith("no trial reported val/elbo; see ")
