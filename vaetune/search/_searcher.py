"""Ray Tune pieces that need Ray at import time: the searcher over the search's Optuna study, the
search algorithm whose trials a resume may raise, and the driver's callbacks (the trial ledger,
MLflow, the console). Only Ray's public interfaces are used: a `Searcher` of vaetune's own
drives the study through Optuna's ask/tell (vaetune.search._study holds the Optuna side).

Only the search's Tuner assembly imports this module, when a search runs, so `vaetune --help`
stays fast.
"""

from __future__ import annotations

import logging
import math
import pickle
import warnings
from pathlib import Path

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import TrialState
from ray.tune import Callback
from ray.tune.search import Searcher, SearchGenerator

from vaetune.metrics.registry import EPOCH
from vaetune.ranking import Bounds, constraint_names, violations
from vaetune.results import (
    DIVERGENCE,
    DRIVER_FILES,
    SEARCH_FILE,
    TRIALS_FILE,
    error_summary,
    read_json,
    write_json,
)
from vaetune.search._console import SearchConsole
from vaetune.search._faults import on_trial_error
from vaetune.search._study import TUNE_TRIAL, fail_lost_trials
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
        self.results_dir = str(results)

    def restore_from_dir(self, dirpath: str) -> None:
        """`dirpath` is Tune's staging folder on the driver. To restore, Tune copies every .json and
        .pkl file of the results folder there, and each experiment snapshot copies that folder
        back over the results folder: vaetune's own files, which its driver keeps current in the
        results folder, would be put back as they were when the search stopped. Their staged
        copies go; the results folder keeps the live ones."""
        for name in DRIVER_FILES:
            (Path(dirpath) / name).unlink(missing_ok=True)
        super().restore_from_dir(dirpath)
        planned = read_json(Path(self.results_dir) / SEARCH_FILE).get("trials")
        if isinstance(planned, int) and planned > self.total_samples:
            log.info("trials planned: %d -> %d", self.total_samples, planned)
            # the searcher never ends a search itself (it returns no FINISHED): raising the count goes on
            self.set_state({**self.get_state(), "total_samples": planned, "finished": False})


class StudySearcher(Searcher):
    """Ray Tune's searcher over the search's Optuna study, told what really happened to each trial.

    A trial that ends before `max_epochs` (stopped by ASHA) reaches Optuna as PRUNED, its
    intermediate values reported per epoch; a trial that errored, diverged or ended on a
    non-finite value as FAIL; only a trial that ran every epoch as COMPLETE, with its value (its
    values: several objectives, which take no intermediate values) and the violation of each
    constraint. Intermediate values are reported against the trainable's own `epoch` counter,
    which, unlike `training_iteration`, survives restores.

    The study is created, or loaded when it exists (a resumed search's live database), from the
    storage, and driven through Optuna's ask/tell interface only; the searcher's own state (which
    Optuna trial each Tune trial is, which were told, and the sampler) is saved with Tune's
    experiment snapshot.
    The starting points are enqueued when the study is created, so they run first, once; so are the
    observations of a warm start added (finished trials of an earlier search, vaetune.search._warm),
    so a resumed search never imports them twice. They are no Tune trials: Tune never hears of them.
    """

    def __init__(self, metric: str | list[str], mode: str | list[str], *, space: dict[str, BaseDistribution],
                 sampler: optuna.samplers.BaseSampler, max_epochs: int, storage: BaseStorage | None = None,
                 study_name: str = "vaetune", points_to_evaluate: list[dict] | None = None,
                 constraints: Bounds | None = None, time_attr: str = EPOCH,
                 observations: list[optuna.trial.FrozenTrial] | None = None):
        super().__init__(metric=metric, mode=mode)
        self.space, self.sampler, self.study_name = dict(space), sampler, study_name
        self.storage = storage if storage is not None else optuna.storages.InMemoryStorage()
        self.points = list(points_to_evaluate or [])
        self.observations = list(observations or [])  # imported once, into a new study
        self.max_epochs, self.time_attr, self.constraints = max_epochs, time_attr, dict(constraints or {})
        self.numbers: dict[str, int] = {}  # Tune trial id -> its Optuna trial's number
        self.told: set[str] = set()  # trials whose outcome the study has
        self.reported: dict[str, set[int]] = {}  # trial -> epochs already reported to the study
        self._study: optuna.Study | None = None
        self._trials: dict[str, optuna.Trial] = {}  # Tune trial id -> its Optuna trial, once needed

    @property
    def metrics(self) -> list[str]:
        return self.metric if isinstance(self.metric, list) else [self.metric]

    @property
    def study(self) -> optuna.Study:
        """The search's study, opened on first use (its readers name its values by the metrics)."""
        if self._study is None:
            modes = self.mode if isinstance(self.mode, list) else [self.mode]
            study = optuna.create_study(storage=self.storage, sampler=self.sampler, study_name=self.study_name,
                                        pruner=optuna.pruners.NopPruner(), load_if_exists=True,
                                        directions=["minimize" if m == "min" else "maximize" for m in modes])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.metrics)
            if not study.get_trials(deepcopy=False):  # a new study (a resumed one has them already)
                study.add_trials(self.observations)
                for point in self.points:
                    study.enqueue_trial(point)
            self.observations = []  # in the study now: Tune's snapshots of the searcher need not carry them
            self._study = study
        return self._study

    def __getstate__(self) -> dict:
        # the study lives in its storage: Tune's pickled Tuner carries the searcher without it
        return {**self.__dict__, "_study": None, "_trials": {}}

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the space is the searcher's own (Optuna distributions of vaetune's space)

    def suggest(self, trial_id: str) -> dict:
        if trial_id not in self.numbers:
            trial = self.study.ask(self.space)
            trial.set_user_attr(TUNE_TRIAL, trial_id)
            self.numbers[trial_id], self._trials[trial_id] = trial.number, trial
        return dict(self.trial(trial_id).params)

    def trial(self, trial_id: str) -> optuna.Trial:
        """The Optuna trial of a Tune trial (one restored from a snapshot: rebuilt from its number)."""
        if trial_id not in self._trials:
            study_id = self.storage.get_study_id_from_name(self.study.study_name)
            storage_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, self.numbers[trial_id])
            self._trials[trial_id] = optuna.Trial(self.study, storage_id)
        return self._trials[trial_id]

    def save(self, checkpoint_path: str) -> None:
        """The trials the searcher knows, and its sampler as it is now (pickled, as Optuna saves a
        sampler to resume a study): a resumed search draws what the search would have drawn next."""
        state = {"trials": self.numbers, "told": sorted(self.told), "sampler": self.sampler}
        Path(checkpoint_path).write_bytes(pickle.dumps(state))

    def restore(self, checkpoint_path: str) -> None:
        """The searcher's state is from the experiment snapshot Tune restores; the study is a live
        database that a stopped driver kept writing to after that snapshot. Reconcile the two."""
        state = pickle.loads(Path(checkpoint_path).read_bytes())
        self.numbers, self.told, self.sampler = dict(state["trials"]), set(state["told"]), state["sampler"]
        self._study, self._trials = None, {}  # opened again, with the restored sampler
        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        for trial_id, number in self.numbers.items():
            trial = by_number.get(number)
            # an outcome that reached the study after the snapshot: Tune runs the trial again from
            # the last checkpoint the snapshot knew, and the study keeps the outcome it has
            if trial is None or trial.state.is_finished():
                self.told.add(trial_id)
            self.reported[trial_id] = set(trial.intermediate_values) if trial else set()
        fail_lost_trials(self.study, held=set(self.numbers.values()))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.numbers and trial_id not in self.told:
            self._report(trial_id, result)

    def _report(self, trial_id: str, result: dict) -> None:
        if len(self.metrics) > 1:
            return  # Optuna takes no intermediate values for multi-objective studies
        value, step = result.get(self.metric), int(result.get(self.time_attr, 0))
        reported = self.reported.setdefault(trial_id, set())
        if value is None or not math.isfinite(value) or step in reported:
            return
        self.trial(trial_id).report(float(value), step)
        reported.add(step)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.numbers or trial_id in self.told:
            return
        result = result or {}
        # Tune hands the last result (often the one ASHA stopped on) only to this method
        if result and not error:
            self._report(trial_id, result)
        values = [result.get(m) for m in self.metrics]
        finite = all(v is not None and math.isfinite(v) for v in values)
        diverged = bool(result.get(DIVERGENCE)) or any(v is not None and not math.isfinite(v) for v in values)
        epochs = int(result.get(self.time_attr, 0))
        if error or diverged or (not finite and epochs >= self.max_epochs):
            state, told = TrialState.FAIL, None
        elif epochs < self.max_epochs:  # stopped early: an objective not measured at its rung is no failure
            state, told = TrialState.PRUNED, None
        else:
            state, told = TrialState.COMPLETE, values if len(values) > 1 else values[0]
        if self.constraints and not error:  # the samplers read them as the trial is told
            names = constraint_names(self.constraints)
            for name, violation in zip(names, violations(result, self.constraints), strict=True):
                self.trial(trial_id).set_constraint(name, violation)
        # skip_if_finished: a resumed search's study (a live database) may already hold this
        # trial's outcome, recorded after the experiment snapshot that Tune restored
        self.study.tell(self.numbers[trial_id], told, state=state, skip_if_finished=True)
        self.told.add(trial_id)
