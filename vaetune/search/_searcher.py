"""Ray Tune pieces that need Ray at import time: the Optuna searcher and the driver's callbacks
(the trial ledger, MLflow, the console).

Only the search's Tuner assembly imports this module, when a search runs, so `vaetune --help`
stays fast.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState
from ray.tune import Callback
from ray.tune.search import SearchGenerator
from ray.tune.search.optuna import OptunaSearch

from vaetune.results import (
    DIVERGENCE,
    DRIVER_FILES,
    SEARCH_FILE,
    TRIALS_FILE,
    Bounds,
    constraint_names,
    error_summary,
    read_json,
    violations,
    write_json,
)
from vaetune.search._console import SearchConsole
from vaetune.search._faults import on_trial_error
from vaetune.search._sampler import SamplerChoice, optuna_startup
from vaetune.tracking import SearchTracker

log = logging.getLogger(__name__)

ERROR_CHARS = 2000  # of a trial's error kept in trials.json


class MLflowSearchCallback(SearchTracker, Callback):
    """Driver-side MLflow logging (see vaetune.tracking)."""


class ConsoleCallback(SearchConsole, Callback):
    """The search's console: a live view on a terminal, event lines in a log (see vaetune.search._console)."""


class TrialLedger(Callback):
    """The driver's record of each trial: its searched values when it starts and how it ended
    (an error with its message), kept in `trials.json` of the results folder so that a resumed
    driver and the summary know them (a trial that errors before its first report has no result
    to carry its config; one that errored for want of space is resumed)."""

    def __init__(self, results: str | Path):
        self.path = Path(results) / TRIALS_FILE
        self.trials: dict[str, dict] = {}

    def setup(self, **info):
        self.trials = read_json(self.path)

    def on_trial_start(self, iteration, trials, trial, **info):
        starts = self.trials.get(trial.trial_id, {}).get("starts", 0) + 1  # retries and restores count too
        self._record(trial.trial_id, config=dict(trial.config), state="running", starts=starts)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._record(trial.trial_id, state="terminated")

    def on_trial_error(self, iteration, trials, trial, **info):
        error = error_summary(trial)
        on_trial_error(error)  # one that failed for want of space stops the search
        self._record(trial.trial_id, state="error", error=error[:ERROR_CHARS])

    def _record(self, trial_id: str, **fields) -> None:
        self.trials.setdefault(trial_id, {}).update(fields)
        write_json(self.path, self.trials)


class PlannedSearch(SearchGenerator):
    """Tune's search algorithm over a searcher, whose number of trials a resumed search may raise.

    Tune restores the number a search started with and ignores a new one; the number planned now
    is in the results folder's search.json (`vaetune search --resume` with more trials writes it
    there), so a restored search takes it from there and goes on suggesting trials up to it.
    """

    def __init__(self, searcher, results: str | Path):
        super().__init__(searcher)
        self._results = str(results)

    def restore_from_dir(self, dirpath: str) -> None:
        """`dirpath` is Tune's staging folder on the driver. To restore, Tune copies every .json and
        .pkl file of the results folder there, and each experiment snapshot copies that folder
        back over the results folder: vaetune's own files, which its driver keeps current in the
        results folder, would be put back as they were when the search stopped. Their staged
        copies go; the results folder keeps the live ones."""
        for name in DRIVER_FILES:
            (Path(dirpath) / name).unlink(missing_ok=True)
        super().restore_from_dir(dirpath)
        planned = read_json(Path(self._results) / SEARCH_FILE).get("trials")
        if isinstance(planned, int) and planned > self._total_samples:
            log.info("trials planned: %d -> %d", self._total_samples, planned)
            self._total_samples, self._finished = planned, False


class TruthfulOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna what really happened to each trial.

    Ray's OptunaSearch tells Optuna a trial stopped early by ASHA is COMPLETE with its early
    value, so TPE learns from half-trained results as if they were final. Here a trial that
    ends before `max_epochs` reaches Optuna as PRUNED (its intermediate values already reported
    per epoch), a trial that errored or ended on a non-finite value as FAIL, and only a trial
    that ran every epoch as COMPLETE. Intermediate values are reported against the trainable's
    own `epoch` counter, which, unlike `training_iteration`, survives restores.
    """

    def __init__(self, *args, max_epochs: int, time_attr: str = "epoch", constraints: Bounds | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._max_epochs = max_epochs
        self._constraints = dict(constraints or {})
        self._time_attr = time_attr
        self._reported_steps: dict[str, set[int]] = {}  # trial -> epochs already told to Optuna

    def _setup_study(self, mode) -> None:
        super()._setup_study(mode)
        # the study's readers (Optuna Dashboard, `vaetune report`) name its values by the metric
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._ot_study.set_metric_names(self.metric if isinstance(self.metric, list) else [self.metric])

    def suggest(self, trial_id: str):
        suggestion = super().suggest(trial_id)
        if trial_id in self._ot_trials:  # which Tune trial each Optuna trial is, for the study's readers
            self._ot_trials[trial_id].set_user_attr("tune_trial_id", trial_id)
        return suggestion

    def restore(self, checkpoint_path: str) -> None:
        """The searcher's state is from the experiment snapshot Tune restores; the study is a live
        database that a stopped driver kept writing to after that snapshot. Reconcile the two."""
        super().restore(checkpoint_path)
        states = {t.number: t.state for t in self._ot_study.get_trials(deepcopy=False)}
        for trial_id, ot_trial in self._ot_trials.items():
            if trial_id not in self._completed_trials and states.get(ot_trial.number, TrialState.RUNNING).is_finished():
                # its outcome reached the study after the snapshot: Tune runs it again from its
                # last checkpoint the snapshot knew, and the study keeps the outcome it has
                self._completed_trials.add(trial_id)
        fail_lost_trials(self._ot_study, held={t.number for t in self._ot_trials.values()})

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        self._report_intermediate(trial_id, result)

    def _report_intermediate(self, trial_id: str, result: dict) -> None:
        if isinstance(self.metric, list):
            return  # Optuna takes no intermediate values for multi-objective studies
        value, step = result.get(self.metric), int(result.get(self._time_attr, 0))
        reported = self._reported_steps.setdefault(trial_id, set())
        if value is None or not math.isfinite(value) or step in reported:
            return
        self._ot_trials[trial_id].report(float(value), step)
        reported.add(step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        result = result or {}
        # Tune hands the last result (often the one ASHA stopped on) only to this method
        if result and not error:
            self._report_intermediate(trial_id, result)
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        values = [result.get(m) for m in metrics]
        finite = all(v is not None and math.isfinite(v) for v in values)
        diverged = bool(result.get(DIVERGENCE)) or any(v is not None and not math.isfinite(v) for v in values)
        epochs = int(result.get(self._time_attr, 0))
        if error or diverged or (not finite and epochs >= self._max_epochs):
            state, told = TrialState.FAIL, None
        elif epochs < self._max_epochs:  # stopped early: an objective not measured at its rung is no failure
            state, told = TrialState.PRUNED, None
        else:
            state, told = TrialState.COMPLETE, values if len(values) > 1 else values[0]
        if self._constraints and not error:  # the samplers read them as the trial is told
            for name, violation in zip(constraint_names(self._constraints), violations(result, self._constraints),
                                       strict=True):
                ot_trial.set_constraint(name, violation)
        self._tell(trial_id, ot_trial, told, state)
        self._completed_trials.add(trial_id)

    def _tell(self, trial_id: str, ot_trial, told, state) -> None:
        # skip_if_finished: a resumed search's study (a live database) may already hold this
        # trial's outcome, recorded after the experiment snapshot that Tune restored
        self._ot_study.tell(ot_trial, told, state=state, skip_if_finished=True)


def fail_lost_trials(study: optuna.Study, held: set[int] = frozenset()) -> list[int]:
    """A resumed search: a trial asked of the study after the experiment snapshot Tune restored
    (the searcher's state, `held`, is saved with that snapshot) was started by the stopped driver
    and is unknown to Tune now; it would stay RUNNING in the study for ever. Tell it FAIL: the
    searcher asks a new trial in its place."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    lost = [t.number for t in running if t.number not in held]
    for number in lost:
        study.tell(number, state=TrialState.FAIL)
    if lost:
        log.warning("Optuna trial(s) %s of study %r, started after the stopped driver's last experiment snapshot, "
                    "are recorded as FAIL", ", ".join(map(str, lost)), study.study_name)
    return lost


def make_sampler(choice: SamplerChoice | str, seed: int, grid: dict[str, list] | None = None):
    """The Optuna sampler of a choice (vaetune.search._sampler; a bare name: Optuna's settings).
    Constraints need no setting: the samplers that take them (TPE, GP, NSGA-II) read each trial's
    violations, which the searcher sets on it (`Trial.set_constraint`) as it tells its outcome."""
    if isinstance(choice, str):
        choice = SamplerChoice(choice, optuna_startup(choice))
    startup = choice.startup
    with warnings.catch_warnings():  # `group` is experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if choice.sized and choice.name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                              group=True, constant_liar=True)
        samplers = {
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False),
            "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
            "grid": lambda: _TuneGridSampler(grid or {}, seed=seed),
        }
        return samplers[choice.name]()


class _TuneGridSampler(optuna.samplers.GridSampler):
    """GridSampler driven by ask/tell: Tune, not the sampler, decides when the search ends.

    Optuna's GridSampler calls `study.stop()` once the grid is exhausted, which is only allowed
    inside `study.optimize` and fails under ask/tell; vaetune caps num_samples at the grid size.
    It also counts a failed trial's point as visited, so the point of a trial that a stopped
    driver lost (told FAIL on --resume) would never run and another would run twice: here the
    points no trial started come first, then the points whose every trial failed.
    """

    def after_trial(self, study, trial, state, values) -> None:
        return None

    def _get_unvisited_grid_ids(self, study) -> list[int]:  # Optuna's hook, private in 5.x
        started, held = set(), set()
        for t in study.get_trials(deepcopy=False):
            if "grid_id" in t.system_attrs and self._same_search_space(t.system_attrs["search_space"]):
                started.add(t.system_attrs["grid_id"])
                if t.state != TrialState.FAIL:
                    held.add(t.system_attrs["grid_id"])
        every = set(range(self._n_min_trials))
        return sorted(every - started) or sorted(every - held)
