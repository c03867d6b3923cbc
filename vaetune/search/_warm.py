"""Warm start from an earlier search (`search.warm_start`, `vaetune search SPACE --warm-start RESULTS`):
the finished trials of an earlier search on the same data and space reach this search's Optuna
study as observations, at the epoch they reached, and are never trained again.

Checked before Ray starts, each mismatch one line naming the files, the key and both values:

1. the folder holds a search (search.json of kind search, space.yaml, optuna.db with its study);
2. it was ranked the same way: search.metric, mode, metrics, modes, constraints, and the epochs a
   trial runs (a trial's state there, completed or pruned, is its state here);
3. every key this space searches it searched too, of the same kind, with this range inside its
   range (these choices among its choices); a key it searched and this space fixes is dropped
   from the observations, which the log says;
4. every other data, model and train value is the same, but those that change nothing a trial
   measures (`UNMEASURED`: where the data is read and cached, the device, threads, how often a
   trial saves); the images themselves by the fingerprint its search.json recorded
   (`check_warm_data`, once the data is loaded).

Each observation is an `optuna.trial.create_trial` of the earlier trial's state: COMPLETE with its
values and constraint violations, PRUNED with its intermediate values by epoch; with this space's
distributions and user attrs naming where it came from (`IMPORTED_FROM`, `IMPORTED_TRIAL`). An
earlier trial that did not finish, or whose value lies outside a narrower range here, is left out
and counted. The searcher adds the observations when it creates the study, so a resumed search
never imports twice. They are not Tune trials: no row of summary.csv, never ranked or exported;
search.json (`WARM_KEY`) and the MLflow parent run name them.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.results import (
    KIND,
    OPTUNA_FILE,
    SEARCH,
    SEARCH_FILE,
    SPACE_FILE,
    optuna_url,
    read_json,
)
from vaetune.search._checks import inside
from vaetune.search._sampler import Imported
from vaetune.search._state import DATA_KEY, WARM_KEY
from vaetune.spec import Distribution, SearchPlan, SearchSpace, flatten, load_space

log = logging.getLogger(__name__)

IMPORTED_FROM = "imported_from"  # user attr of an imported trial: the results folder it was imported from
IMPORTED_TRIAL = "imported_trial"  # user attr of an imported trial: its trial there (Tune's id, else "#<number>")
# fixed values that change nothing a trial measures: they may differ between the two searches
UNMEASURED = ("data.source", "data.cache_dir", "train.device", "train.num_threads", "train.checkpoint_every",
              "train.grid_every", "train.grid_size")
SECTIONS = ("data", "model", "train")  # a trial's configuration; search, resources and tracking may differ
KEY = "search.warm_start"


@dataclass(frozen=True)
class WarmStart:
    """The observations a warm start imports, and what it left out."""

    source: Path  # the earlier search's results folder
    trials: tuple[Any, ...]  # optuna FrozenTrials, ready for Study.add_trials
    total: int  # the earlier study's trials, in every state
    data: dict[str, dict] = field(default_factory=dict)  # its search.json's data fingerprints
    left_out: dict[str, int] = field(default_factory=dict)  # why -> how many
    dropped: tuple[str, ...] = ()  # keys it searched and this search fixes

    @property
    def imported(self) -> Imported:
        from optuna.trial import TrialState

        complete = sum(t.state == TrialState.COMPLETE for t in self.trials)
        return Imported(complete=complete, pruned=len(self.trials) - complete)

    @property
    def ids(self) -> list[str]:
        """The imported trials, as the earlier search names them."""
        return [str(t.user_attrs[IMPORTED_TRIAL]) for t in self.trials]

    def words(self) -> str:
        """For the console's first line: `6 of 8 trials of results/a imported as observations (2 left
        out: 1 failed, 1 outside train.lr's range here)`."""
        left = sum(self.left_out.values())
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.left_out.items(), key=lambda kv: -kv[1]))
        return (f"{len(self.trials)} of {self.total} trials of {self.source} imported as observations, not "
                f"trained again" + (f" ({left} left out: {why})" if left else ""))

    def record(self) -> dict[str, Any]:
        """What search.json keeps of it."""
        return {WARM_KEY: {"from": str(self.source), "imported": self.ids, "left_out": dict(self.left_out),
                           **({"dropped": list(self.dropped)} if self.dropped else {})}}


def warm_start(plan: SearchPlan, results: Path) -> WarmStart | None:
    """The earlier search that `search.warm_start` names, checked against `plan` (the module's rules
    1-4 but the images), and its finished trials as observations; None without a warm start.

    Raises:
        UserError: one line naming the file, the key, both values and what a warm start accepts.
    """
    named = plan.config.search.warm_start
    if not named:
        return None
    space, folder = plan.space, Path(named)
    if plan.grid:  # the grid runs every point, an imported one too: it would train it again
        raise UserError(f"{space.source}: {KEY}: got {folder}; a grid search runs every point of its grid, so it "
                        "would train the imported trials again: warm-start a search of choice lists (sampler auto)")
    state = _earlier_state(space, folder, results)
    earlier = load_space(folder / SPACE_FILE)
    _check_objective(plan, folder, state)
    _check_keys(space, earlier, folder)
    _check_fixed(plan, earlier, folder)
    dropped = tuple(k for k in earlier.params if k not in space.params)
    if dropped:
        log.warning("%s: %s searched by the earlier search and fixed here: the observations leave out their values",
                    KEY, ", ".join(dropped))
    trials, total, left_out = _observations(space, folder, state["name"])
    return WarmStart(folder, tuple(trials), total, dict(state.get(DATA_KEY) or {}), left_out, dropped)


def check_warm_data(warm: WarmStart | None, source: str, fingerprints: dict[str, dict]) -> None:
    """The images this search trains on (`fingerprints`, vaetune.search.preflight's) are those the
    earlier search trained on: observations of other data would steer the sampler wrong.

    Raises:
        UserError: naming data.source, both fingerprints and image counts.
    """
    if warm is None:
        return
    where = warm.source / SEARCH_FILE
    if not warm.data:
        raise UserError(f"{source}: {KEY}: {where} records no data fingerprint (an earlier vaetune wrote it), so "
                        "whether its trials saw these images cannot be checked; start without a warm start")
    if len(fingerprints) == len(warm.data) == 1:  # one source each: the same images, wherever they are now
        (name, now), was = next(iter(fingerprints.items())), next(iter(warm.data.values()))
        pairs = [(name, now, was)]
    else:  # data.source searched: each source by its name
        pairs = [(name, now, warm.data.get(name) or {}) for name, now in fingerprints.items()]
    for name, now, was in pairs:
        if now.get("fingerprint") != was.get("fingerprint"):
            raise UserError(f"{source}: data.source: got {name} (fingerprint {str(now.get('fingerprint'))[:12]}, "
                            f"{now.get('images')} images); the earlier search of {KEY} ({where}) trained on "
                            f"fingerprint {str(was.get('fingerprint'))[:12]} ({was.get('images')} images); a warm "
                            "start imports trials trained on the same images: point data.source at them, or start "
                            "without a warm start")


def _refuse(space: SearchSpace, key: str, here: Any, there: Any, where: Path, accepted: str) -> UserError:
    return UserError(f"{space.source}: {key}: got {here}; the earlier search of {KEY} ({where}) has {there}; "
                     f"{accepted}")


def _not_a_search(space: SearchSpace, folder: Path, why: str) -> UserError:
    return UserError(f"{space.source}: {KEY}: got {folder}; {why}: give the results folder of an earlier search "
                     "on the same data (results/NAME)")


def _earlier_state(space: SearchSpace, folder: Path, results: Path) -> dict[str, Any]:
    """search.json of the earlier search, once the folder is known to hold a search."""
    if not folder.is_dir():
        raise _not_a_search(space, folder, "no such folder")
    if folder.resolve() == Path(results).resolve():
        raise _not_a_search(space, folder, "that is this search's own results folder")
    if not (folder / SEARCH_FILE).is_file():
        raise _not_a_search(space, folder, f"not the results folder of a search (no {SEARCH_FILE} there)")
    state = read_json(folder / SEARCH_FILE)
    if state.get(KIND, SEARCH) != SEARCH or not state.get("name"):
        what = f"kind {state.get(KIND)!r}" if state.get(KIND, SEARCH) != SEARCH else "no name"
        raise _not_a_search(space, folder, f"its {SEARCH_FILE} is not a search's ({what})")
    for name, what in ((SPACE_FILE, "the space it searched"), (OPTUNA_FILE, "its Optuna study: it started no trial")):
        if not (folder / name).is_file():
            raise _not_a_search(space, folder, f"no {name} there ({what})")
    return state


def _check_objective(plan: SearchPlan, folder: Path, state: dict[str, Any]) -> None:
    """Rule 2: the imported values and states mean here what they meant there."""
    s = plan.config.search
    same = "the imported values are those of the earlier search's objective"
    for key, here, there, accepted in (
        ("search.metric", s.metric, state.get("metric"), f"{same}: rank by the same metric"),
        ("search.mode", s.mode, state.get("mode"), f"{same}: rank in the same direction"),
        ("search.metrics", s.metrics, state.get("metrics", []), f"{same}: search the same objectives"),
        ("search.modes", s.modes, state.get("modes", []), f"{same}: in the same directions"),
        ("search.constraints", s.bounds(), state.get("constraints", {}), "the imported violations are those of "
         "the earlier search's constraints: hold trials to the same ones"),
        ("train.epochs (capped by search.max_t)", plan.max_epochs, state.get("max_epochs"), "an imported trial "
         "completed or was pruned against the earlier search's epochs: run as many"),
    ):
        if here != there:
            raise _refuse(plan.space, key, here, there, folder / SEARCH_FILE, accepted)


def _described(d: Distribution) -> str:
    return f"{d.kind} {list(d.args)}"


def _within(new: Distribution, old: Distribution) -> bool:
    """Whether every value `new` can draw, `old` could draw: the same kind (a choice and a grid list
    are both Optuna's categorical), a range inside its range, choices among its choices."""
    categorical = ("choice", "grid")
    if new.kind in categorical and old.kind in categorical:
        return all(inside(old, v) for v in new.args)
    if new.kind != old.kind or (new.kind == "quniform" and new.args[2] != old.args[2]):
        return False
    return old.args[0] <= new.args[0] and new.args[1] <= old.args[1]


def _check_keys(space: SearchSpace, earlier: SearchSpace, folder: Path) -> None:
    """Rule 3: a subset of the earlier search's keys, each range inside its range."""
    where = folder / SPACE_FILE
    for key, dist in space.params.items():
        old = earlier.params.get(key)
        if old is None:
            fixed = flatten(earlier.default_config()).get(key)
            raise _refuse(space, key, _described(dist), f"it fixed at {fixed!r}", where, "a warm-started search "
                          "searches only keys the earlier search searched (it may fix some of them)")
        if not _within(dist, old):
            raise _refuse(space, key, _described(dist), _described(old), where, "a warm-started key has the earlier "
                          "key's kind, with a range inside the earlier range (choices among the earlier choices)")


def _check_fixed(plan: SearchPlan, earlier: SearchSpace, folder: Path) -> None:
    """Rule 4 but the images: every other data, model and train value is the earlier search's."""
    here, there = flatten(plan.config), flatten(earlier.default_config())
    keys = sorted(k for k in here.keys() | there.keys() if k.split(".")[0] in SECTIONS and k not in UNMEASURED
                  and k not in plan.space.params and k not in earlier.params)
    differ = [k for k in keys if here.get(k) != there.get(k)]
    if differ:
        more = f" (and {', '.join(differ[1:])})" if differ[1:] else ""
        raise _refuse(plan.space, differ[0], repr(here.get(differ[0])), repr(there.get(differ[0])) + more,
                      folder / SPACE_FILE, "a warm start imports trials of the same fixed configuration (only "
                      f"{', '.join(UNMEASURED)} may differ, and keys the earlier search searched may be fixed)")


def _observations(space: SearchSpace, folder: Path, study_name: str) -> tuple[list, int, dict[str, int]]:
    """The earlier study's finished trials as this space's observations, their count, and why the
    others were left out."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from vaetune.search._study import TUNE_TRIAL

    try:
        study = optuna.load_study(study_name=study_name, storage=optuna_url(folder))
    except KeyError:
        raise _not_a_search(space, folder, f"its {OPTUNA_FILE} holds no study named {study_name!r}") from None
    distributions = {k: d.to_optuna() for k, d in space.params.items()}
    earlier = study.get_trials(deepcopy=False)
    trials, left_out = [], Counter()
    for t in earlier:
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            left_out["failed" if t.state == TrialState.FAIL else "unfinished"] += 1
            continue
        outside = next((k for k, d in space.params.items() if k not in t.params or not inside(d, t.params[k])), None)
        if outside is not None:
            left_out[f"outside {outside}'s range here"] += 1
            continue
        origin = {IMPORTED_FROM: t.user_attrs.get(IMPORTED_FROM, str(folder)),
                  IMPORTED_TRIAL: t.user_attrs.get(IMPORTED_TRIAL) or t.user_attrs.get(TUNE_TRIAL) or f"#{t.number}"}
        try:
            trials.append(create_trial(state=t.state, values=t.values, params={k: t.params[k] for k in distributions},
                                       distributions=distributions, intermediate_values=dict(t.intermediate_values),
                                       constraints=dict(t.constraints) or None, user_attrs=origin))
        except ValueError:  # a value Optuna's distribution here does not hold (e.g. off a narrower step grid)
            left_out["not held by Optuna's distributions here"] += 1
    return trials, len(earlier), dict(left_out)
