"""A search's record of itself in its results folder: search.json (what ran) and space.yaml
(the space as it ran), written once when a search starts and read by --resume, report and export."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from vaetune.fileio import is_remote
from vaetune.results import (
    KIND,
    SEARCH,
    SEARCH_FILE,
    SPACE_FILE,
    experiment_path,
    read_json,
    write_json,
)
from vaetune.search._portfolio import OFF, SHIPPED
from vaetune.spec import SearchPlan, SearchSpace, set_dotted

DATA_KEY = "data"  # search.json: {source: {fingerprint, images}} of the data the search started on
WARM_KEY = "warm_start"  # search.json: {from, imported: [earlier trial ids], left_out: {why: count}}


def plan_search(space: SearchSpace) -> SearchPlan:
    """The plan of a search about to start, on the driver: the space with its local paths made
    absolute (Tune runs each trial in its own working folder), planned once. A searched
    data.source stays as written; a trial reads it against the driver's folder (the trainable)."""
    config = space.default_config()
    base = copy.deepcopy(space.base)
    if not is_remote(config.data.cache_dir):
        set_dotted(base, "data.cache_dir", str(Path(config.data.cache_dir).resolve()))
    if "data.source" not in space.params and Path(config.data.source).exists():  # a local folder, zip or saved dataset
        set_dotted(base, "data.source", str(Path(config.data.source).resolve()))
    if config.search.warm_start:  # space.yaml records where the observations came from, wherever it is read
        set_dotted(base, "search.warm_start", str(Path(config.search.warm_start).resolve()))
    if config.search.portfolio not in (SHIPPED, OFF):  # a portfolio file of the user's, read where it is
        set_dotted(base, "search.portfolio", str(Path(config.search.portfolio).resolve()))
    return SearchPlan.of(space.model_copy(update={"base": base}))


def space_raw(space: SearchSpace) -> dict[str, Any]:
    """The space as a plain mapping again (base + distributions), as space.yaml holds it."""
    raw = copy.deepcopy(space.base)
    for key, dist in space.params.items():
        set_dotted(raw, key, {dist.kind: list(dist.args)})
    return raw


def write_state(results: Path, plan: SearchPlan, *, space_file: str, overrides: list[str],
                extra: dict[str, Any] | None = None, data: dict[str, dict] | None = None) -> dict[str, Any]:
    """Write space.yaml and search.json for a new search; returns the state. `data`: each source's
    fingerprint and image count (vaetune.search.preflight), which --resume compares."""
    import yaml

    from vaetune import __version__
    from vaetune.fileio import atomic_write_text

    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(results / SPACE_FILE, yaml.safe_dump(space_raw(plan.space), sort_keys=False))
    config = plan.config
    s = config.search
    state = {
        "name": config.name, KIND: SEARCH, "space_file": str(Path(space_file).resolve()),
        "overrides": list(overrides), "storage": s.storage, "experiment_path": experiment_path(s.storage, config.name),
        "metric": s.metric, "mode": s.mode, **({"metrics": s.metrics, "modes": s.modes} if s.metrics else {}),
        **({"constraints": s.bounds()} if s.constraints else {}),
        "max_epochs": plan.max_epochs, "searched": plan.searched, "trials": plan.trials,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "vaetune_version": __version__,
        **({DATA_KEY: data} if data else {}), **(extra or {}),
    }
    write_json(results / SEARCH_FILE, state)
    return state


def read_state(results: Path) -> dict[str, Any]:
    return read_json(results / SEARCH_FILE)


def grow_state(results: Path, plan: SearchPlan) -> int:
    """A resumed search given more trials: space.yaml and search.json say so (the searcher reads
    the number back when Tune restores it); returns the trials planned before."""
    import yaml

    from vaetune.fileio import atomic_write_text

    state = read_state(results)
    before = state.get("trials", 0)
    atomic_write_text(results / SPACE_FILE, yaml.safe_dump(space_raw(plan.space), sort_keys=False))
    write_json(results / SEARCH_FILE, {**state, "trials": plan.trials})
    return before
