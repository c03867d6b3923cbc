"""Which trial is best: `ranking.rank`, `ranking.pick_best` and the one rule behind every
decider (`best_first`, `ranked_trials`, `best_over_epochs`, the console's best) on hand-made
tables, both ways.

A minimised metric (val/elbo, FID) wants the smallest value first, a maximised one (val/psnr,
SSIM) the largest. The tables below are written so that the two directions pick different
trials. tests/test_one_best.py runs a constrained search and asks all seven deciders.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vaetune.errors import UserError
from vaetune.metrics.registry import mode_of
from vaetune.ranking import (
    Standing,
    best_first,
    best_over_epochs,
    best_trial,
    pick_best,
    rank,
    ranked_trials,
)
from vaetune.results import CHECKPOINT, FEASIBLE, TRIAL_ID
from vaetune.search import SearchProgress


def summary() -> pd.DataFrame:
    return pd.DataFrame({
        TRIAL_ID: ["a", "b", "c", "d", "e"],
        "best/val/elbo": [120.0, 95.0, 101.0, math.nan, 80.0],
        "final/val/elbo": [125.0, 97.0, 101.0, math.nan, 82.0],
        "final/val/psnr": [18.0, 24.5, 22.0, 30.0, 26.0],
        CHECKPOINT: ["ckpt/a", "ckpt/b", "ckpt/c", "ckpt/d", ""],  # e has no checkpoint
    })


def test_rank_puts_the_smallest_first_for_min_and_the_largest_first_for_max():
    s = summary()
    # min by best/val/elbo: e 80, b 95, c 101, a 120 (d has no value and is left out)
    assert rank(s, "best/val/elbo", "min")[TRIAL_ID].tolist() == ["e", "b", "c", "a"]
    assert rank(s, "best/val/elbo", "max")[TRIAL_ID].tolist() == ["a", "c", "b", "e"]
    # max by final/val/psnr: d 30, e 26, b 24.5, c 22, a 18
    assert rank(s, "final/val/psnr", "max")[TRIAL_ID].tolist() == ["d", "e", "b", "c", "a"]
    assert rank(s, "final/val/psnr", "min")[TRIAL_ID].tolist() == ["a", "c", "b", "e", "d"]
    assert rank(s, "final/eval/fid_sample", "min").empty  # a column the search never recorded


def test_pick_best_of_a_maximised_metric_is_its_largest_value_with_a_checkpoint():
    s = summary()
    assert mode_of("val/psnr") == "max" and mode_of("val/elbo") == "min"
    row, col = pick_best(s, "val/psnr", "max")
    assert (row[TRIAL_ID], col) == ("d", "final/val/psnr")  # 30 dB, the largest (no best/val/psnr column)
    # e (elbo 80) is the smallest but has no checkpoint to export: b (95) is the best exportable
    row, col = pick_best(s, "val/elbo", "min")
    assert (row[TRIAL_ID], col) == ("b", "best/val/elbo")
    row, _ = pick_best(s, "val/psnr", "min")
    assert row[TRIAL_ID] == "a"


def test_pick_best_names_what_the_search_recorded_when_the_metric_is_missing():
    with pytest.raises(UserError, match=r"--metric: got 'eval/fid_sample'; this search recorded: .*val/psnr"):
        pick_best(summary(), "eval/fid_sample", "min")


# ---------------------------------------------------------------------------------------------
# the rule: feasible, measured, a checkpoint first, then by value


def constrained() -> pd.DataFrame:
    """A search held to val/kl <= 5: `a` has the lowest loss but broke the bound at its last epoch;
    `b` holds it but kept no checkpoint (it errored before its first); `c` and `d` hold it with a
    checkpoint; `e` never measured the metric."""
    return pd.DataFrame({
        TRIAL_ID: ["a", "b", "c", "d", "e"],
        "best/val/mse": [0.10, 0.12, 0.17, 0.15, math.nan],
        "final/val/mse": [0.10, 0.12, 0.17, 0.16, math.nan],
        FEASIBLE: [False, True, True, True, True],
        CHECKPOINT: ["ckpt/a", "", "ckpt/c", "ckpt/d", "ckpt/e"],
    })


def test_best_first_holds_the_constraints_needs_a_value_and_prefers_a_checkpoint():
    s = [Standing("a", 0.10, feasible=False), Standing("b", 0.12, checkpoint=False), Standing("c", 0.17),
         Standing("d", 0.15), Standing("e", None), Standing("f", math.inf), Standing("g", 0.15)]
    # a breaks the bound, e and f have no finite value; b kept no checkpoint: after every trial that did;
    # d and g tie at 0.15 and keep their order
    assert [x.key for x in best_first(s, "min")] == ["d", "g", "c", "b"]
    assert [x.key for x in best_first(s, "max")] == ["c", "d", "g", "b"]
    assert best_first([Standing("b", 0.12, checkpoint=False)], "min")[0].key == "b"  # none kept one: still ranked


def test_every_reader_of_summary_csv_gets_the_same_best_trial():
    s = constrained()
    assert ranked_trials(s, "val/mse", "min")[TRIAL_ID].tolist() == ["d", "c", "b"]
    assert best_trial(s, "val/mse", "min")[TRIAL_ID] == "d"
    row, col = pick_best(s, "val/mse", "min")
    assert (row[TRIAL_ID], col) == ("d", "best/val/mse")  # export's pick is the same row
    # without the feasible column (no constraints) a holds nothing back: lowest value, with a checkpoint
    assert best_trial(s.drop(columns=[FEASIBLE]), "val/mse", "min")[TRIAL_ID] == "a"
    # by a metric the summary keeps no best of: its last-epoch value (d 0.16 beats c 0.17)
    assert best_trial(s.drop(columns=["best/val/mse"]), "val/mse", "min")[TRIAL_ID] == "d"


def test_with_no_checkpoint_among_the_candidates_the_best_is_named_but_export_refuses():
    s = constrained().assign(**{CHECKPOINT: ["ckpt/a", "", "", "", ""]})  # only a, which broke the bound
    assert best_trial(s, "val/mse", "min")[TRIAL_ID] == "b"  # the best candidate, told without a checkpoint
    with pytest.raises(UserError, match=r"no trial held the search's constraints with a value of val/mse and a "
                                        r"checkpoint; see the feasible column of summary.csv"):
        pick_best(s, "val/mse", "min")


def test_a_trials_value_is_its_best_epoch_inside_the_constraints():
    history = pd.DataFrame({"epoch": [1, 2, 3], "val/mse": [0.20, 0.13, 0.15], "val/kl": [1.7, 9.0, 4.0]})
    bounds = {"val/kl": {"max": 5.0}}
    assert best_over_epochs(history, "val/mse", "min", bounds) == (0.15, 3)  # epoch 2's 0.13 broke the bound
    assert best_over_epochs(history, "val/mse", "min") == (0.13, 2)
    assert best_over_epochs(history, "val/mse", "max", bounds) == (0.20, 1)
    assert best_over_epochs(history, "val/mse", "min", {"val/kl": {"max": 1.0}}) is None
    assert best_over_epochs(history, "eval/fid_sample", "min") is None


def test_the_console_ranks_what_it_has_heard_by_the_same_rule():
    """The live console: a trial whose latest epoch breaks the bound is not ranked, and one that
    has reported no checkpoint yet ranks after those that have, as export would pick now."""
    p = SearchProgress("held", "val/mse", "min", max_epochs=3, rungs=[], planned=3, start=0.0)
    for n in (1, 2, 3):
        p.started(n, f"#{n}", now=0.0)
    p.result(1, 1, 0.20, None, now=1.0, feasible=True, checkpoint=True)
    p.result(2, 1, 0.17, None, now=1.0, feasible=True, checkpoint=True)
    p.result(3, 1, 0.12, None, now=1.0, feasible=True, checkpoint=False)  # no checkpoint at epoch 1
    assert p.best().number == 2
    p.result(2, 2, 0.15, None, now=2.0, feasible=False, checkpoint=True)  # its latest epoch breaks the bound
    assert p.best().number == 1
    p.result(3, 2, 0.14, None, now=2.0, feasible=True, checkpoint=True)  # now it has one: its best 0.12 counts
    assert p.best().number == 3 and p.best().best == 0.12 and p.best().best_epoch == 1
