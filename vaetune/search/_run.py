"""Running a search: start (or join) Ray, load the data once, build or restore the Tuner, fit it.

Ray Tune's behaviour is tuned through environment variables; they are set in one place,
:func:`tune_environment`, which `run_search` calls before importing Ray.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import vaetune.search._faults as _faults
import vaetune.search._tuner as _tuner
from vaetune.errors import UserError, disk_full
from vaetune.fileio import is_remote
from vaetune.machine import cpu_count
from vaetune.results import (
    OPTUNA_FILE,
    SPACE_FILE,
    TRIALS_FILE,
    experiment_path,
    optuna_url,
    read_json,
)
from vaetune.search._checks import data_is_searched
from vaetune.search._portfolio import starting
from vaetune.spec import SearchPlan

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


class Stopped(KeyboardInterrupt):
    """A stop signal that came while Ray was starting (acted on once it is up, so it shuts down
    cleanly): exit 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP (`exit_code`, read by the CLI)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each stops a search as Ctrl-C does
_TERMINATED: list[int] = []  # the SIGTERM or SIGHUP that reached this search's driver


def terminated() -> int:
    """The exit code of the last search if SIGTERM (143) or SIGHUP (129) stopped it, else 0 (its
    command then exits 130 if it was interrupted)."""
    return 128 + _TERMINATED[-1] if _TERMINATED else 0


@contextlib.contextmanager
def _deferred_stop() -> Iterator[list[int]]:
    """Ctrl-C or SIGTERM while Ray starts: recorded, not raised (a KeyboardInterrupt inside
    ray.init leaves a half-started Ray that crashes the interpreter at exit); the caller acts on
    the recorded signal once Ray is up."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in before:
        signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _term_as_interrupt(signum, frame) -> None:
    """SIGTERM (kill, a job scheduler) and SIGHUP (a closing terminal) do what Ctrl-C does: Ray Tune
    stops the trials and saves the state, and `vaetune search --resume` continues. Without it Ray's
    own handler aborts the driver with a native stack dump (SIGTERM), or the driver dies at once
    (SIGHUP)."""
    _TERMINATED.append(signum)
    handler = signal.getsignal(signal.SIGINT)  # Ray Tune's while it fits, else Python's KeyboardInterrupt
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def run_search(plan: SearchPlan, results: Path, *, address: str | None = None,
               resume: bool = False, verbose: bool = False, data=None,
               before_fit: Callable[[], None] | None = None, named: str = "--address", command: str = "vaetune search",
               warm=None, start=None):
    """Run (or resume) the search whose state is in `results`; returns Ray's ResultGrid.

    Args:
        plan: the search's plan (vaetune.search.plan_search): its space, fixed configuration,
            epochs and trials.
        results: the search's results folder.
        address: a Ray cluster to join (auto or HOST:PORT), given by `named` (--address or
            $RAY_ADDRESS); None starts a Ray of its own on this machine (never one that another
            Ray left in RAY_ADDRESS or /tmp/ray names).
        resume: continue the search recorded in `results`.
        verbose: Ray Tune's own status tables and trial output instead of vaetune's console.
        data: the data every trial shares, already loaded (vaetune.search.preflight); None loads
            it here unless data.* keys are searched (then each trial loads its own).
        before_fit: called once Ray is up and the joined cluster can run a trial, before any
            trial starts (the command writes the search's state there, so a start refused
            earlier leaves nothing behind).
        command: the command that runs the search, for the resume hint of a search whose Ray
            died (vaetune.search._faults).
        warm: a new search's warm start (vaetune.search.warm_start): observations its study
            starts with.
        start: a new search's sampler and portfolio points (vaetune.search._portfolio.starting),
            when the command worked them out already; None: worked out here.
    """
    tune_environment()
    import ray
    from ray import tune

    from vaetune.search._preflight import check_cluster_resources
    from vaetune.search._quiet import quiet_libraries
    from vaetune.search._snapshot import repair_snapshot

    space, config = plan.space, plan.config
    s, res = config.search, config.resources
    if not verbose:
        quiet_libraries()
    started_here = not ray.is_initialized()
    _TERMINATED.clear()
    _faults.reset()
    _faults.watch_ray_logs()
    received: list[int] = []
    if started_here:
        # without --verbose what trials print stays in Ray's worker logs (session_latest/logs), off the console
        with _deferred_stop() as received:
            try:
                ray.init(address=address or "local", include_dashboard=False, configure_logging=False, log_to_driver=verbose,
                         **({} if address else {"num_cpus": max(int(res.cpu * s.max_concurrent), cpu_count())}))
            except ConnectionError as exc:  # --address auto with no cluster running here
                raise UserError(f"{named}: got {address!r}, but no Ray cluster answers "
                                f"({' '.join(str(exc).split())[:200]}); start one (ray start --head) or give "
                                "HOST:PORT") from None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    if threading.current_thread() is threading.main_thread():
        for sig in previous:  # after ray.init, which installs Ray's own
            signal.signal(sig, _term_as_interrupt)
    try:
        if received:
            _TERMINATED.extend(sig for sig in received if sig != signal.SIGINT)
            raise Stopped(received[-1])
        if address:
            check_cluster_resources(config, address)
        _warn_unshared_storage(s.storage)
        if data is None and not data_is_searched(space):
            from vaetune.data import load_data

            data = load_data(config.data)  # decoded (or read from cache) once, shared via the object store
        if data is not None:
            log.info("data: %d images %s from %s", len(data.images), tuple(data.images.shape[1:]), config.data.source)
        if before_fit is not None:
            before_fit()
        trainable = _tuner.trainable(plan, data)
        exp_path = experiment_path(s.storage, config.name)
        if resume and not is_remote(exp_path):
            repair_snapshot(exp_path, results)
        if resume and _tuner_exists(exp_path):
            tuner = _restore(exp_path, trainable, _tuner.param_space(space), results,
                             resume_errored=_errored_for_want_of_space(results))
        else:
            if resume:  # nothing Tune can restore: every trial the study holds as RUNNING was the stopped driver's
                _fail_lost_optuna_trials(results, config.name)
            # the searcher's sampler and the portfolio points it starts with, as the console names them
            choice, begin = start if start is not None else starting(plan, warm)
            tuner = tune.Tuner(trainable, param_space=_tuner.param_space(space),
                               tune_config=_tuner.tune_config(plan, results, choice,
                                                              list(warm.trials) if warm is not None else None,
                                                              begin.points),
                               run_config=_tuner.run_config(plan, results, choice, space_file=results / SPACE_FILE,
                                                            console=not verbose, warm=warm))
        with _faults.watch_raylet(command, quiet=not verbose) if started_here else contextlib.nullcontext():
            return tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
        if threading.current_thread() is threading.main_thread():
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _errored_for_want_of_space(results: Path) -> bool:
    """Whether every trial that errored did so for want of space (trials.json keeps each trial's
    error): then --resume, after space was freed, resumes them from their last checkpoint."""
    errored = [t for t in read_json(results / TRIALS_FILE).values() if t.get("state") == "error"]
    return bool(errored) and all(disk_full(t.get("error", "")) for t in errored)


def _fail_lost_optuna_trials(results: Path, study_name: str) -> None:
    import optuna

    from vaetune.search._study import fail_lost_trials

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


def _restore(exp_path: str, trainable, param_space: dict, results: Path, *, resume_errored: bool):
    """Tune's saved experiment, to continue; one saved by a vaetune whose search classes this one
    no longer has (the pickled searcher names them) is refused in one line: it cannot continue,
    and its finished trials stay readable."""
    from ray import tune

    try:
        return tune.Tuner.restore(exp_path, trainable, resume_unfinished=True, resume_errored=resume_errored,
                                  restart_errored=False, param_space=param_space)
    except (AttributeError, ImportError) as exc:
        raise UserError(f"{results}: --resume cannot continue this search: its state was saved by an earlier "
                        f"vaetune ({exc}); its finished trials stay readable (vaetune report, vaetune export "
                        f"{results}); to search on, start a new search with another name (--set name=NEW)") from None


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
