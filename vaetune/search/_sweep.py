"""An equal-budget sweep: one key of a configuration tried at several values, each value with
several seeds, every trial trained to the full `train.epochs`.

A sweep is a search space like any other (so `vaetune.commands.search.run_space` runs it with
the same checks, state, Tuner, MLflow logging, resume and summary): the configuration to study
with every key fixed, the swept key as `{grid: values}`, `train.seed` as `{grid: [0, ..,
seeds-1]}`, `search.sampler: grid` and `search.scheduler: fifo` (nothing stops early). The
configuration is a finished search's best trial (its searched values applied to the search's
space.yaml) or a space file's default (each searched key at its default, the first point to
evaluate over them). Seeds change the initialisation, the batch order and the sampling; the
data split follows `data.split_seed`, which the sweep leaves alone.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.ranking import best_trial, describe, feasible_rows
from vaetune.results import FEASIBLE, KIND, SEARCH_FILE, SWEEP, SWEEP_STATE, load_results, read_json
from vaetune.spec import (
    BETA,
    SEARCHABLE_SECTIONS,
    SEED,
    Config,
    SearchSpace,
    SpecError,
    flatten,
    load_space,
    set_dotted,
    space_from_dict,
    validate_config,
)

DEFAULT_SEEDS = 3
# the default values of train.beta: DEFAULT_POINTS log-spaced over DEFAULT_DECADES decades centred
# on the configuration's beta (half a decade apart)
DEFAULT_POINTS, DEFAULT_DECADES = 7, 3
# keys a sweep cannot vary: the seeds are --seeds, and the budget is what every row shares
FIXED_KEYS = {SEED: "the seeds are given by --seeds",
              "train.epochs": "every trial of a sweep trains the same epochs; set them with --set train.epochs=N"}


@dataclass
class Sweep:
    """A planned sweep: the grid space to run and what search.json records of it."""

    space: SearchSpace
    key: str
    values: list[Any]
    seeds: int
    source: str  # the results folder or space file it started from
    trial_id: str | None  # the best trial of that search; None from a space file

    def state(self) -> dict[str, Any]:
        """search.json's extra entries: the folder holds a sweep, and of what."""
        return {KIND: SWEEP, SWEEP_STATE: {"key": self.key, "values": self.values, "seeds": self.seeds,
                                           "source": self.source, "trial_id": self.trial_id}}


def default_values(beta: float) -> list[float]:
    """DEFAULT_POINTS values of beta, log-spaced over DEFAULT_DECADES decades centred on `beta`
    (three significant digits)."""
    half = DEFAULT_DECADES / 2
    steps = [-half + DEFAULT_DECADES * i / (DEFAULT_POINTS - 1) for i in range(DEFAULT_POINTS)]
    return [float(f"{beta * 10 ** e:.3g}") for e in steps]


def plan_sweep(source: str | Path, *, key: str | None = None, values: list[Any] | None = None,
               seeds: int | None = None, overrides: list[str] | None = None) -> Sweep:
    """Check a sweep's inputs and build its grid space; nothing runs and nothing is written.

    Args:
        source: a finished search's results folder (the sweep starts from its best trial) or a
            search-space file (from its default configuration).
        key: the dotted key to vary (under data, model or train); None: train.beta.
        values: the values of `key`; None: log-spaced around the configuration's value
            (train.beta only, see `default_values`).
        seeds: seeds per value (train.seed 0 .. seeds-1); None: DEFAULT_SEEDS.
        overrides: `--set key=value` fixed values applied over the configuration.

    Raises:
        UserError: one line naming the argument, the bad value and what is accepted.
    """
    key = key or BETA
    seeds = DEFAULT_SEEDS if seeds is None else seeds
    if seeds < 1:
        raise UserError(f"--seeds: got {seeds}; give 1 or more")
    config, origin, trial_id = _start(source)
    raw = config.model_dump(mode="json")
    raw["name"] = f"{config.name}-sweep-{key.rsplit('.', 1)[-1]}"
    raw["search"].update(sampler="grid", scheduler="fifo", points_to_evaluate=[], metrics=[], modes=[],
                         max_t=None, warm_start=None)
    label = f"{origin} (sweep)"
    fixed = space_from_dict(raw, label, overrides)
    if fixed.params:
        bad = next(iter(fixed.params))
        raise UserError(f"--set {bad}: got a distribution; a sweep varies only --key, so give a fixed value")
    base = fixed.default_config()
    values = _check_values(base, key, values)
    raw = copy.deepcopy(fixed.base)
    set_dotted(raw, key, {"grid": values})
    set_dotted(raw, SEED, {"grid": list(range(seeds))})
    raw["search"]["num_samples"] = len(values) * seeds
    return Sweep(space_from_dict(raw, label), key, values, seeds, origin, trial_id)


def _start(source: str | Path) -> tuple[Config, str, str | None]:
    """(the configuration to sweep around, where it came from, the best trial's id or None)."""
    path = Path(source)
    if path.is_dir():
        results = load_results(path)
        if results.space is None:
            raise UserError(f"{results.folder}: no space.yaml; the best trial's configuration cannot be rebuilt")
        held = feasible_rows(results.summary)
        if held.empty and len(results.summary):
            raise UserError(f"{results.folder}: no trial held the search's constraints ({describe(results.constraints)}); "
                            f"a sweep starts from the best trial that does (see the {FEASIBLE} column of summary.csv), "
                            "or give it a search-space file")
        best = best_trial(results.summary, results.metric, results.mode)
        if best is None:
            raise UserError(f"{results.folder}: no trial reported {results.metric}; a sweep starts from the "
                            "best trial of a finished search")
        values = {k: _plain(best[k]) for k in results.searched if k in best and best[k] == best[k]}
        return results.space.resolve(values), str(results.folder), str(best["trial_id"])
    return load_space(path).default_config(), str(path.resolve()), None


def _plain(v: Any) -> Any:
    """A summary cell as a Python value (pandas gives numpy scalars)."""
    return v.item() if hasattr(v, "item") else v


def _check_values(config: Config, key: str, values: list[Any] | None) -> list[Any]:
    leaves = flatten(config)
    if key.split(".")[0] not in SEARCHABLE_SECTIONS or key not in leaves:
        raise UserError(f"--key: got {key!r}; give a key under {', '.join(SEARCHABLE_SECTIONS)} such as "
                        f"{BETA} or model.latent_dim")
    if key in FIXED_KEYS:
        raise UserError(f"--key: got {key!r}; {FIXED_KEYS[key]}")
    if key == BETA and config.train.objective == "capacity":
        raise UserError(f"--key: got {BETA!r}, but under train.objective capacity β is not in the loss; "
                        "sweep --key train.capacity_max, or --set train.objective=elbo")
    current = leaves[key]
    if values is None:
        if key != BETA:
            raise UserError(f"--values: required for --key {key} (default values exist for {BETA} only)")
        if not current > 0:
            raise UserError(f"--values: the configuration's {BETA} is {current}; give the values to try")
        values = default_values(current)
    if not values:
        raise UserError("--values: got none; give a comma-separated list such as 0.01,0.1,1")
    repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if repeated is not None:
        raise UserError(f"--values: {repeated!r} is given twice; each value is one row")
    if all(_is_number(v) for v in values) and current is not None and not _is_number(current):
        raise UserError(f"--key {key}: is {current!r} in the configuration, not a number, but --values are numbers")
    raw = config.model_dump(mode="json")
    for v in values:
        trial = copy.deepcopy(raw)
        set_dotted(trial, key, v)
        try:
            validate_config(trial, "--values")
        except SpecError as err:
            where = "" if err.key == key else f" makes {err.key} {err.value!r} invalid:"
            raise UserError(f"--values: got {v!r} for {key};{where} {err.accepted}") from None
    return list(values)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_resume(sweep: Sweep, results: Path) -> None:
    """A resumed sweep must be the one that ran there: same key, values and seeds."""
    ran = read_json(results / SEARCH_FILE).get(SWEEP_STATE)
    if ran is None:
        return  # nothing ran yet: run_space says so
    planned = sweep.state()[SWEEP_STATE]
    for field in ("key", "values", "seeds"):
        if ran.get(field) != planned[field]:
            raise UserError(f"--resume: {results} ran a sweep with {field} {ran.get(field)!r}, not "
                            f"{planned[field]!r}; give the same arguments, or --set name=... for a new sweep")
