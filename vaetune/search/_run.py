"""Running a search: start (or join) Ray, load the data once, build or restore the Tuner, fit it.

Ray Tune's behaviour is tuned through environment variables; they are set in one place,
:func:`tune_environment`, which `run_search` calls before importing Ray.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from vaetune.results import OPTUNA_FILE, SPACE_FILE, experiment_path, is_remote, optuna_url
from vaetune.search import _tuner
from vaetune.search._checks import data_is_searched
from vaetune.search._state import space_raw
from vaetune.spec import Config, SearchSpace

log = logging.getLogger(__name__)

# Ray Tune and MLflow settings a search runs with (a value the user exported wins)
TUNE_ENVIRONMENT = {
    "RAY_AIR_NEW_OUTPUT": "0",  # the classic table reporter, with our columns
    # snapshot the experiment often, so a killed driver loses at most a few seconds of trial progress
    "TUNE_GLOBAL_CHECKPOINT_S": "2",
    # the snapshot warning fires whenever trials checkpoint often, which small VAEs do by design
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # the driver's event loop must not wait on an unreachable MLflow: the tracker queues and retries
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def tune_environment() -> None:
    """Set the environment a search runs with (see TUNE_ENVIRONMENT); the only place that does."""
    for key, value in TUNE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def run_search(space: SearchSpace, config: Config, results: Path, *, address: str | None = None,
               resume: bool = False, verbose: bool = False):
    """Run (or resume) the search whose state is in `results`; returns Ray's ResultGrid.
    `verbose`: Ray Tune's own status tables and trial output instead of vaetune's console."""
    tune_environment()
    import ray
    from ray import tune

    from vaetune.console import quiet_libraries

    s, res = config.search, config.resources
    if not verbose:
        quiet_libraries()
    started_here = not ray.is_initialized()
    if started_here:
        # without --verbose what trials print stays in Ray's worker logs (session_latest/logs), off the console
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=verbose,
                 **({} if address else {"num_cpus": max(int(res.cpu * s.max_concurrent), os.cpu_count() or 1)}))
    try:
        _warn_unshared_storage(s.storage)
        data = None
        if not data_is_searched(space):
            from vaetune.data import load_data

            data = load_data(config.data)  # decoded (or read from cache) once, shared via the object store
            log.info("data: %d images %s from %s", len(data.images), tuple(data.images.shape[1:]), config.data.source)
        trainable = _tuner.trainable(space, config, space_raw(space, config), data)
        exp_path = experiment_path(s.storage, config.name)
        if resume and _tuner_exists(exp_path):
            tuner = tune.Tuner.restore(exp_path, trainable, resume_unfinished=True, resume_errored=False,
                                       restart_errored=False, param_space=_tuner.param_space(space))
        else:
            if resume:  # nothing Tune can restore: every trial the study holds as RUNNING was the stopped driver's
                _fail_lost_optuna_trials(results, config.name)
            tuner = tune.Tuner(trainable, param_space=_tuner.param_space(space),
                               tune_config=_tuner.tune_config(space, config, results),
                               run_config=_tuner.run_config(space, config, results, space_file=results / SPACE_FILE,
                                                            console=not verbose))
        return tuner.fit()
    finally:
        if started_here:
            ray.shutdown()


def _fail_lost_optuna_trials(results: Path, study_name: str) -> None:
    import optuna

    from vaetune.search._searcher import fail_lost_trials

    if not (results / OPTUNA_FILE).exists():
        return
    try:
        study = optuna.load_study(study_name=study_name, storage=optuna_url(results))
    except KeyError:  # the driver stopped before the study was created
        return
    fail_lost_trials(study)


def _warn_unshared_storage(storage: str) -> None:
    """Trials write checkpoints from their own node: on a cluster of several nodes a plain path
    must be one shared mount (NFS/EFS) at the same path everywhere, else use s3://."""
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]
    if not is_remote(storage) and len(alive) > 1:
        log.warning("search.storage %s is a plain path and the cluster has %d nodes: it must be shared storage "
                    "mounted at that path on every node (NFS/EFS), or use --set search.storage=s3://BUCKET/PREFIX",
                    Path(storage).resolve(), len(alive))


def _tuner_exists(exp_path: str) -> bool:
    """A Tune experiment to restore: one that got as far as creating a trial (Tune cannot restore
    an experiment interrupted before its first trial; that one simply starts again). The trial
    list is read from Tune's experiment snapshot file, whose layout the tests pin."""
    from ray import tune

    if not tune.Tuner.can_restore(exp_path):
        return False
    if is_remote(exp_path):
        return True
    states = sorted(Path(exp_path).glob("experiment_state-*.json"))
    try:
        return bool(states) and bool(json.loads(states[-1].read_text()).get("trial_data"))
    except (OSError, json.JSONDecodeError):
        return True
