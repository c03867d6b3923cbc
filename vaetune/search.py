"""`vaetune search`: assemble and run the Ray Tune search of one search-space file.

Optuna samples (TPE by default, told the truth about pruned trials), ASHA stops weak trials at
its rungs (counted in the trainable's own epochs), MLflow records everything from the driver,
and `results/<name>/` collects the Ray experiment, `summary.csv`, the Optuna study
(`optuna.db`) and `search.json`, which a `--resume`, `vaetune export` and `vaetune report` read.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.spec import SearchSpace, flatten, load_space

log = logging.getLogger(__name__)

SEARCH_FILE = "search.json"
SUMMARY_FILE = "summary.csv"
OPTUNA_FILE = "optuna.db"


def optuna_url(results: Path) -> str:
    """Where a search's Optuna study lives: sqlite in its results folder."""
    return f"sqlite:///{Path(results) / OPTUNA_FILE}"


def is_remote(storage: str) -> bool:
    return "://" in storage


def results_dir_for(storage: str, name: str) -> Path:
    """Local folder of a search's summary files: beside the Ray experiment for a local or shared
    path, under ./results for remote storage (s3://...)."""
    base = Path("results") if is_remote(storage) else Path(storage)
    return (base / name).resolve()


def experiment_path(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}" if is_remote(storage) else str(Path(storage).resolve() / name)


def storage_uri(storage: str, path: str | None) -> str:
    """A path Ray returns inside the storage filesystem, as something `vaetune export` can open:
    Ray drops the scheme of remote storage (s3://bucket/x comes back as bucket/x)."""
    if not path:
        return ""
    if is_remote(storage) and "://" not in path and not storage.startswith("file://"):
        return f"{storage.split('://', 1)[0]}://{path}"
    return path


def asha_rungs(grace: int, factor: float, max_t: int) -> list[int]:
    """Epochs at which ASHA compares trials: grace * factor^k below max_t."""
    rungs, t = [], float(grace)
    while t < max_t:
        rungs.append(int(round(t)))
        t *= factor
    return rungs


def _check_search(space: SearchSpace) -> None:
    s = space.default_config().search
    categorical = {k: d for k, d in space.params.items() if d.kind in ("choice", "grid")}
    gridded = [k for k, d in space.params.items() if d.kind == "grid"]
    if s.sampler == "grid" and len(categorical) != len(space.params):
        bad = next(k for k in space.params if k not in categorical)
        raise UserError(f"{space.source}: {bad}: got {space.params[bad].kind}; search.sampler grid needs every "
                        "searched key to be a choice or grid list")
    if gridded and s.sampler != "grid":
        raise UserError(f"{space.source}: {gridded[0]}: got a grid list with search.sampler {s.sampler!r}; "
                        "use sampler grid to try every value, or choice to let the sampler pick")
    if not space.params:
        raise UserError(f"{space.source}: nothing to search; give at least one key a distribution "
                        "(e.g. train.beta: {loguniform: [0.001, 10]}) or use vaetune train")


def _grid_size(space: SearchSpace) -> int:
    return math.prod(len(d.args) for d in space.params.values())


def _data_is_searched(space: SearchSpace) -> bool:
    return any(k.startswith("data.") and not k.startswith("data.augment.") for k in space.params)


def cmd_search(args) -> int:
    from vaetune.tracking import log_search_outcome

    space = load_space(args.space, args.overrides)
    _check_search(space)
    config = space.default_config()
    s = config.search
    results = results_dir_for(s.storage, config.name)
    state_file = results / SEARCH_FILE
    if state_file.exists() and not args.resume:
        raise UserError(f"{results}: a search named {config.name!r} already ran there; continue it with --resume, "
                        f"or change `name:` (or --set name=...) to start a new one")
    if args.resume and not state_file.exists():
        raise UserError(f"{results}: --resume given but no search named {config.name!r} was started there")
    results.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        _write_state(state_file, space, args, config)
    result_grid = run_search(space, results, address=args.address, resume=args.resume,
                             verbose=getattr(args, "tune_output", False) or getattr(args, "verbose", False))
    code = finish(space, results, result_grid)
    if code != 130:  # an interrupted search gets its outcome when it is resumed and ends
        log_search_outcome(results, config.search.metric, config.search.mode, list(space.params))
    return code


def _write_state(path: Path, space: SearchSpace, args, config) -> None:
    import yaml

    from vaetune import __version__

    (path.parent / "space.yaml").write_text(yaml.safe_dump(_space_raw(space), sort_keys=False))
    state = {
        "name": config.name, "space_file": str(Path(args.space).resolve()), "overrides": args.overrides,
        "storage": config.search.storage, "experiment_path": experiment_path(config.search.storage, config.name),
        "metric": config.search.metric, "mode": config.search.mode, "max_epochs": _max_epochs(config),
        "searched": list(space.params), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "vaetune_version": __version__,
    }
    path.write_text(json.dumps(state, indent=1))


def _space_raw(space: SearchSpace) -> dict:
    """The space as a plain mapping again (base + distributions), for trials and space.yaml.
    The data cache folder is made absolute: Tune runs each trial in its own working folder."""
    import copy

    from vaetune.spec import _set_dotted

    raw = copy.deepcopy(space.base)
    for key, dist in space.params.items():
        _set_dotted(raw, key, {dist.kind: list(dist.args)})
    data = space.default_config().data
    if "://" not in data.cache_dir:
        _set_dotted(raw, "data.cache_dir", str(Path(data.cache_dir).resolve()))
    if "data.source" not in space.params and Path(data.source).exists():  # a local folder, zip or saved dataset
        _set_dotted(raw, "data.source", str(Path(data.source).resolve()))
    return raw


def _max_epochs(config) -> int:
    return min(config.search.max_t or config.train.epochs, config.train.epochs)


def run_search(space: SearchSpace, results: Path, *, address: str | None = None, resume: bool = False,
               verbose: bool = False):
    """Run (or resume) the Tuner; returns Ray's ResultGrid. `verbose`: Ray Tune's own status
    tables instead of vaetune's console."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table reporter, with our columns
    # snapshot the experiment often, so a killed driver loses at most a few seconds of trial progress
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    # the snapshot warning fires whenever trials checkpoint often, which small VAEs do by design
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import ray
    from ray import tune

    from vaetune._tune import (
        ConsoleCallback,
        MLflowSearchCallback,
        TruthfulOptunaSearch,
        make_sampler,
    )
    from vaetune.console import quiet_libraries
    from vaetune.tracking import resolve_uri
    from vaetune.trainable import run_trial

    config = space.default_config()
    s, res = config.search, config.resources
    max_epochs = _max_epochs(config)
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
        if not _data_is_searched(space):
            from vaetune.data import load_data

            data = load_data(config.data)  # decoded (or read from cache) once, shared via the object store
            log.info("data: %d images %s from %s", len(data.images), tuple(data.images.shape[1:]), config.data.source)
        rungs = asha_rungs(s.grace_period, s.reduction_factor, max_epochs) if s.scheduler == "asha" else []
        console = None if verbose else ConsoleCallback.for_space(space, max_epochs=max_epochs, rungs=rungs)
        trainable = tune.with_parameters(run_trial, space_raw=_space_raw(space), source=space.source, data=data,
                                         eval_epochs=rungs)
        trainable = tune.with_resources(trainable, {"cpu": res.cpu, "gpu": res.gpu})
        exp_path = experiment_path(s.storage, config.name)
        if resume and _tuner_exists(exp_path):
            tuner = tune.Tuner.restore(exp_path, trainable, resume_unfinished=True, resume_errored=False,
                                       restart_errored=False, param_space=_param_space(space))
        else:
            if resume:  # nothing Tune can restore: every trial the study holds as RUNNING was the stopped driver's
                _fail_lost_optuna_trials(results, config.name)
            tuner = tune.Tuner(trainable, param_space=_param_space(space),
                               tune_config=_tune_config(space, results, max_epochs, TruthfulOptunaSearch, make_sampler),
                               run_config=_run_config(space, results, max_epochs, MLflowSearchCallback, resolve_uri,
                                                      console))
        return tuner.fit()
    finally:
        if started_here:
            ray.shutdown()


def _fail_lost_optuna_trials(results: Path, study_name: str) -> None:
    import optuna

    from vaetune._tune import fail_lost_trials

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
    an experiment interrupted before its first trial; that one simply starts again)."""
    from ray import tune

    if not tune.Tuner.can_restore(exp_path):
        return False
    if "://" in exp_path:
        return True
    states = sorted(Path(exp_path).glob("experiment_state-*.json"))
    try:
        return bool(states) and bool(json.loads(states[-1].read_text()).get("trial_data"))
    except (OSError, json.JSONDecodeError):
        return True


def _param_space(space: SearchSpace) -> dict[str, Any]:
    # grid lists are enumerated by Optuna's GridSampler; to Tune they are categorical
    from ray import tune

    return {k: (tune.choice(list(d.args)) if d.kind == "grid" else d.to_tune()) for k, d in space.params.items()}


def _tune_config(space: SearchSpace, results: Path, max_epochs: int, searcher_cls, make_sampler):
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    config = space.default_config()
    s = config.search
    multi = s.sampler == "nsga2"
    metric = s.metrics if multi else s.metric
    mode = (s.modes or [s.mode] * len(s.metrics)) if multi else s.mode
    grid = {k: list(d.args) for k, d in space.params.items()} if s.sampler == "grid" else None
    storage = optuna.storages.RDBStorage(optuna_url(results))
    searcher = searcher_cls(metric=metric, mode=mode, sampler=make_sampler(s.sampler, s.seed, grid),
                            points_to_evaluate=_full_points(space) or None,
                            storage=storage, study_name=config.name, max_epochs=max_epochs)
    searcher = ConcurrencyLimiter(searcher, max_concurrent=s.max_concurrent)
    if s.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", metric=s.metric, mode=s.mode, max_t=max_epochs,
                                  grace_period=min(s.grace_period, max_epochs), reduction_factor=s.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    num_samples = min(s.num_samples, _grid_size(space)) if s.sampler == "grid" else s.num_samples
    return tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=num_samples, reuse_actors=True)


def _full_points(space: SearchSpace) -> list[dict[str, Any]]:
    """Points to evaluate with every searched key: a key a point leaves out takes its default."""
    defaults = {k: d.default() for k, d in space.params.items()}
    return [{**defaults, **p} for p in space.default_config().search.points_to_evaluate]


def _run_config(space: SearchSpace, results: Path, max_epochs: int, callback_cls, resolve_uri, console=None):
    from ray import tune

    config = space.default_config()
    s = config.search
    uri = resolve_uri(config.tracking.uri)
    callback = callback_cls(
        uri=uri, experiment=config.tracking.experiment or config.name, search_name=config.name,
        results_dir=results, max_epochs=max_epochs, parent_params=_parent_params(space),
        resolve_params=_Resolver(space), space_file=results / "space.yaml", metric=s.metric, mode=s.mode,
        searched=list(space.params))
    metric_columns = {"epoch": "epoch", s.metric: s.metric}
    for extra in ("val/psnr", "val/kl"):
        metric_columns.setdefault(extra, extra)
    reporter = tune.CLIReporter(metric_columns=metric_columns, parameter_columns=list(space.params),
                                max_report_frequency=15, metric=s.metric, mode=s.mode, sort_by_metric=True,
                                max_progress_rows=30, max_error_rows=10)
    storage = s.storage if is_remote(s.storage) else str(Path(s.storage).resolve())
    return tune.RunConfig(
        name=config.name, storage_path=storage, callbacks=[callback, *([console] if console else [])],
        progress_reporter=reporter, verbose=0 if console else 1,
        failure_config=tune.FailureConfig(max_failures=s.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=s.keep_checkpoints, checkpoint_score_attribute=s.metric,
                                                checkpoint_score_order=s.mode),
    )


class _Resolver:
    """Picklable: a trial's searched values -> all its resolved hyperparameters (dotted keys)."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, params: dict) -> dict:
        try:
            return flatten(self.space.resolve(params))
        except UserError:
            return dict(params)


def _parent_params(space: SearchSpace) -> dict[str, Any]:
    fixed = flatten(space.default_config())
    out = {k: v for k, v in fixed.items() if k not in space.params}
    out.update({f"search_space.{k}": f"{d.kind}{list(d.args)}" for k, d in space.params.items()})
    return out


# ---------------------------------------------------------------------------------------------
# After the search


def trial_rows(result_grid, space: SearchSpace, results: Path) -> list[dict[str, Any]]:
    """One row per trial: params, final and best metrics, status, epochs, wall time, run ids."""
    config = space.default_config()
    metric, mode, max_epochs = config.search.metric, config.search.mode, _max_epochs(config)
    tracking = json.loads((results / "tracking.json").read_text()) if (results / "tracking.json").exists() else {}
    runs = tracking.get("trial_runs", {})
    # Tune's own trial records keep the config of an errored trial after a restore; results may not
    trials = {t.trial_id: t for t in getattr(getattr(result_grid, "_experiment_analysis", None), "trials", [])}
    rows = []
    for r in result_grid:
        last = r.metrics or {}
        trial_id = str(last.get("trial_id") or _trial_id_from_path(r.path))
        history = r.metrics_dataframe
        row: dict[str, Any] = {"trial_id": trial_id}
        config_of = r.config or getattr(trials.get(trial_id), "config", None) or {}
        row.update({k: config_of.get(k) for k in space.params})
        epochs = int(last.get("epoch", 0) or 0)
        trial = trials.get(trial_id)
        if r.error is not None:
            status = "errored"
        elif trial is not None and trial.status not in ("TERMINATED", "ERROR"):
            status = "unfinished"
        elif epochs >= max_epochs:
            status = "completed"
        else:
            status = "stopped"
        row.update(status=status, epochs=epochs, wall_time_s=round(float(last.get("time_total_s", 0.0)), 2))
        row["error"] = _first_line(r.error) if r.error is not None else ""
        for key in sorted(k for k in last if "/" in k and isinstance(last[k], (int, float))):
            row[f"final/{key}"] = last[key]
        best_value = None
        if history is not None and metric in history:
            col = history[metric].dropna()
            if len(col):
                best_value = float(col.min() if mode == "min" else col.max())
        row[f"best/{metric}"] = best_value
        best_ckpt = None
        try:
            ckpt = r.get_best_checkpoint(metric, mode) if r.best_checkpoints else None
            best_ckpt = ckpt.path if ckpt else None
        except Exception:  # no checkpoint scored on this metric (e.g. errored before one)
            best_ckpt = r.checkpoint.path if r.checkpoint else None
        row["checkpoint"] = storage_uri(config.search.storage, best_ckpt)
        row["trial_path"] = storage_uri(config.search.storage, r.path)
        row["mlflow_run_id"] = runs.get(trial_id, "")
        rows.append(row)
    return rows


def _trial_id_from_path(path: str | None) -> str:
    """Tune names trial folders <trainable>_<trial id>_<n>_<params>_<date>."""
    parts = Path(path or "").name.split("_")
    return parts[2] if len(parts) > 3 and parts[0] == "run" else "?"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    for line in reversed(text):
        if "Error" in line or "Exception" in line:
            return line.strip()[:500]
    return (text[-1] if text else type(err).__name__)[:500]


def finish(space: SearchSpace, results: Path, result_grid) -> int:
    """Write summary.csv and print the outcome; 130 when the search was interrupted."""
    import pandas as pd

    rows = trial_rows(result_grid, space, results)
    frame = pd.DataFrame(rows)
    if rows:
        frame.to_csv(results / SUMMARY_FILE, index=False)
    config = space.default_config()
    metric, mode = config.search.metric, config.search.mode
    unfinished = _unfinished(result_grid) + max(0, _planned_trials(space) - len(rows))
    if rows:
        print(f"\n{len(frame)} trials: " + ", ".join(f"{n} {s}" for s, n in frame["status"].value_counts().items()))
    if unfinished:
        print(f"search interrupted with {unfinished} trials to go; continue with: "
              f"vaetune search {space.source} --resume")
    col = f"best/{metric}"
    scored = frame[frame[col].notna()] if col in frame else frame.iloc[0:0]
    if scored.empty:
        if not unfinished:
            print(f"no trial reported {metric}; see {results / SUMMARY_FILE} for errors")
        return 130 if unfinished else 1
    best = scored.sort_values(col, ascending=(mode == "min")).iloc[0]
    params = ", ".join(f"{k}={_fmt(best[k])}" for k in space.params)
    print(f"best trial {best['trial_id']}{' so far' if unfinished else ''}: {metric} = {best[col]:.5g}  ({params})")
    print(f"  checkpoint: {best['checkpoint']}")
    run_id = best["mlflow_run_id"] if isinstance(best["mlflow_run_id"], str) and best["mlflow_run_id"] else None
    print(f"  MLflow run: {run_id or 'not recorded yet (MLflow unreachable; sent on --resume)'}")
    print(f"summary: {results / SUMMARY_FILE}\nexport:  vaetune export {results}")
    return 130 if unfinished else 0


def _planned_trials(space: SearchSpace) -> int:
    s = space.default_config().search
    return min(s.num_samples, _grid_size(space)) if s.sampler == "grid" else s.num_samples


def _unfinished(result_grid) -> int:
    try:
        from ray.tune.experiment import Trial

        return sum(1 for t in result_grid._experiment_analysis.trials if t.status not in (Trial.TERMINATED, Trial.ERROR))
    except Exception:
        return 0


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def load_search(results: str | Path) -> tuple[dict, Any]:
    """search.json and summary.csv (as a DataFrame) of a finished search folder."""
    import pandas as pd

    results = Path(results)
    state_file, summary = results / SEARCH_FILE, results / SUMMARY_FILE
    if not state_file.exists():
        raise UserError(f"{results}: not a vaetune search folder (no {SEARCH_FILE}); pass results/<name>")
    if not summary.exists():
        raise UserError(f"{results}: the search has no {SUMMARY_FILE} yet; finish it with vaetune search --resume")
    return json.loads(state_file.read_text()), pd.read_csv(summary)
