"""Which trial is best: `results.rank` and `results.pick_best` on a hand-made summary, both ways.

Export, the report, the search's summary and the sweep all rank through `rank`; a minimised
metric (val/elbo, FID) wants the smallest value first, a maximised one (val/psnr, SSIM) the
largest. The tables below are written so that the two directions pick different trials.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vaetune.errors import UserError
from vaetune.metrics.registry import mode_of
from vaetune.results import CHECKPOINT, TRIAL_ID, pick_best, rank


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
