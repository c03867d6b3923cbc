"""A search as a library: check a space, record it, run it with Ray Tune, summarise it.

Optuna samples (a sampler sized to the search by default, told the truth about pruned trials),
ASHA stops weak trials at its rungs (counted in the trainable's own epochs), MLflow records
everything from the driver,
and the results folder (`vaetune.results`) collects the Ray experiment, summary.csv, the Optuna
study and search.json, which --resume, `vaetune export` and `vaetune report` read.

- `_sampler`: which Optuna sampler a search runs (`search.sampler: auto` sizes it);
- `_checks`: what must hold before anything starts (the sizes of a search, its epochs, ASHA's
  rungs and its trials, are its plan: `vaetune.spec.SearchPlan`, built by `plan_search`);
- `_preflight`: what is checked before Ray starts beyond the space (resources, cluster, folders,
  tracking store, data) and what changed for --resume;
- `_state`: the plan of a search about to start; search.json and space.yaml;
- `_tuner`: the Tuner's parts (param space, searcher, scheduler, callbacks, storage);
- `_searcher`: Tune's searcher over the Optuna study and the driver's callbacks (need Ray at import);
- `_study`: the Optuna side: the sampler of a choice, the grid, the trials a stopped driver lost;
- `_run`: Ray start, the shared data, new or restored Tuner, fit;
- `_storage`: room on the disks a search fills, and remote storage that answers (before Ray);
- `_faults`: what stops a running search that is neither a mistake nor a bug (a full disk, a
  closed output, a dead raylet), each told in one line;
- `_summary`: summary.csv rows and the outcome;
- `_sweep`: an equal-budget sweep of one key around a configuration, as a grid space;
- `_warm`: a warm start: an earlier search's finished trials as observations, checked before Ray;
- `_portfolio`: configurations that did well on other collections, tried first (package data);
- `_trainable`: the Ray Tune adapter: one trial = one `train()`, reporting every epoch;
- `_console` (with `_progress`, the state it tells, and `_quiet`, the libraries silenced): what a
  person watching the search sees.
"""

from __future__ import annotations

from vaetune.search._checks import check_space
from vaetune.search._console import REDRAW_EVERY_S, SearchConsole
from vaetune.search._faults import DISK, OUTPUT, out_of_space, results_folders, stopped_for
from vaetune.search._portfolio import PORTFOLIO_KEY, PortfolioStart, starting
from vaetune.search._preflight import (
    Change,
    changes_between,
    preflight,
    ray_address,
    ray_temp_dir,
    resume_changes,
)
from vaetune.search._progress import RUNNING_ROWS, SUMMARY_EVERY_S, SearchProgress
from vaetune.search._run import run_search, terminated, tune_environment
from vaetune.search._state import grow_state, plan_search, read_state, space_raw, write_state
from vaetune.search._summary import Outcome, summarise, trial_rows
from vaetune.search._sweep import Sweep, check_resume, default_values, plan_sweep
from vaetune.search._trainable import run_trial, trial_callbacks
from vaetune.search._warm import (
    IMPORTED_FROM,
    IMPORTED_TRIAL,
    WarmStart,
    check_warm_data,
    warm_start,
)

__all__ = [
    "DISK", "OUTPUT", "PORTFOLIO_KEY", "REDRAW_EVERY_S", "RUNNING_ROWS", "SUMMARY_EVERY_S", "Change", "SearchConsole", "SearchProgress",
    "run_trial", "trial_callbacks", "Outcome", "changes_between", "Sweep", "check_resume", "check_space", "default_values",
    "grow_state", "out_of_space", "plan_search", "plan_sweep", "preflight", "ray_address", "ray_temp_dir",
    "read_state", "results_folders", "resume_changes", "run_search", "space_raw", "stopped_for", "summarise", "terminated", "trial_rows",
    "tune_environment", "IMPORTED_FROM", "IMPORTED_TRIAL", "WarmStart", "check_warm_data", "warm_start",
    "write_state", "PortfolioStart", "starting",
]
