"""Tuner assembly: the search space, searcher, scheduler, callbacks and storage that Ray Tune runs.

Every function here takes the search's plan (its space, fixed configuration, epochs, rungs and
trials) and returns Ray/Optuna objects; nothing runs. `vaetune.search._run` starts Ray and fits the Tuner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.fileio import is_remote
from vaetune.metrics.registry import EPOCH, VAL_KL, VAL_PSNR
from vaetune.results import optuna_url
from vaetune.search._sampler import SamplerChoice
from vaetune.spec import SearchPlan, SearchSpace, flatten


def param_space(space: SearchSpace) -> dict[str, Any]:
    """The searched keys as Tune distributions; grid lists are enumerated by the grid sampler
    (vaetune.search._study), so to Tune they are categorical. The searcher suggests every key
    from its own Optuna distributions (`Distribution.to_optuna`)."""
    from ray import tune

    return {k: (tune.choice(list(d.args)) if d.kind == "grid" else d.to_tune()) for k, d in space.params.items()}


def tune_config(plan: SearchPlan, results: Path, choice: SamplerChoice, observations: list | None = None,
                portfolio: tuple[dict[str, Any], ...] = ()):
    """Searcher (Optuna, told the truth about pruned trials, capped to max_concurrent; a warm start's
    `observations` added to its new study, the `portfolio` points enqueued after the space's own)
    and scheduler."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    from vaetune.search._searcher import PlannedSearch, StudySearcher
    from vaetune.search._study import make_sampler

    space, config = plan.space, plan.config
    s = config.search
    top = plan.max_epochs
    metric, mode = (list(s.metrics), list(s.modes)) if s.metrics else (s.metric, s.mode)
    grid = {k: list(d.args) for k, d in space.params.items()} if choice.name == "grid" else None
    searcher = StudySearcher(
        metric=metric, mode=mode, space={k: d.to_optuna() for k, d in space.params.items()},
        sampler=make_sampler(choice, s.seed, grid), points_to_evaluate=full_points(plan) + list(portfolio),
        storage=optuna.storages.RDBStorage(optuna_url(results)), study_name=config.name, max_epochs=top,
        constraints=s.bounds(), observations=observations)
    searcher = PlannedSearch(ConcurrencyLimiter(searcher, max_concurrent=s.max_concurrent), results)
    if s.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr=EPOCH, metric=s.metric, mode=s.mode, max_t=top,
                                  grace_period=plan.grace, reduction_factor=s.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    return tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=plan.trials,
                           reuse_actors=True)


def full_points(plan: SearchPlan) -> list[dict[str, Any]]:
    """Points to evaluate with every searched key: a key a point leaves out takes its default."""
    defaults = {k: d.default() for k, d in plan.space.params.items()}
    return [{**defaults, **p} for p in plan.config.search.points_to_evaluate]


def run_config(plan: SearchPlan, results: Path, choice: SamplerChoice, *, space_file: Path, console: bool = True,
               warm=None):
    """Storage, checkpoints, failure retries, the MLflow callback and the progress output: vaetune's
    console (`console`), or Ray Tune's own status tables. `warm`: a warm start's observations
    (vaetune.search._warm), named on the console's first line and on the MLflow parent run."""
    from ray import tune

    from vaetune.results import CHECKPOINT_SCORE
    from vaetune.search._searcher import ConsoleCallback, MLflowSearchCallback, TrialLedger
    from vaetune.search._snapshot import SnapshotKeeper
    from vaetune.tracking import imported_tags, resolve_uri

    space, config = plan.space, plan.config
    s = config.search
    callback = MLflowSearchCallback(
        uri=resolve_uri(config.tracking.uri), experiment=config.tracking.experiment or config.name,
        search_name=config.name, results_dir=results, max_epochs=plan.max_epochs,
        parent_params=parent_params(plan), resolve_params=Resolver(plan), space_file=space_file,
        metric=s.metric, mode=s.mode, searched=plan.searched,
        parent_tags=imported_tags(str(warm.source), warm.ids) if warm is not None else None)
    storage = s.storage if is_remote(s.storage) else str(Path(s.storage).resolve())
    callbacks = [TrialLedger(results), callback]
    if not is_remote(storage):
        callbacks.append(SnapshotKeeper(Path(storage) / config.name))
    if console:
        sampler = choice.describe() + (f"; {warm.words()}" if warm is not None else "")
        callbacks.append(ConsoleCallback.for_plan(plan, sampler=sampler))
    metric_columns = {EPOCH: EPOCH, s.metric: s.metric}
    for extra in (VAL_PSNR, VAL_KL):
        metric_columns.setdefault(extra, extra)
    reporter = tune.CLIReporter(metric_columns=metric_columns, parameter_columns=list(space.params),
                                max_report_frequency=15, metric=s.metric, mode=s.mode, sort_by_metric=True,
                                max_progress_rows=30, max_error_rows=10)
    return tune.RunConfig(
        name=config.name, storage_path=storage, callbacks=callbacks,
        progress_reporter=reporter, verbose=0 if console else 1, failure_config=tune.FailureConfig(max_failures=s.max_failures),
        # each kept epoch's checkpoint (scored +inf by the trial) plus the best keep_checkpoints by the metric
        checkpoint_config=tune.CheckpointConfig(num_to_keep=s.keep_checkpoints + len(plan.kept_epochs),
                                                checkpoint_score_attribute=CHECKPOINT_SCORE,
                                                checkpoint_score_order="max"),
    )


def trainable(plan: SearchPlan, data):
    """The trainable with its fixed arguments (the plan, the shared data, the driver's folder) and
    resources."""
    from ray import tune

    from vaetune.search._trainable import run_trial

    fn = tune.with_parameters(run_trial, plan=plan, data=data, driver_cwd=str(Path.cwd()))
    return tune.with_resources(fn, {"cpu": plan.config.resources.cpu, "gpu": plan.config.resources.gpu})


class Resolver:
    """Picklable: a trial's searched values -> all its resolved hyperparameters (dotted keys)."""

    def __init__(self, plan: SearchPlan):
        self.plan = plan

    def __call__(self, params: dict) -> dict:
        try:
            return flatten(self.plan.trial_config(params))
        except UserError:
            return dict(params)


def parent_params(plan: SearchPlan) -> dict[str, Any]:
    """The parent run's params: every fixed value, and each searched key's distribution."""
    space = plan.space
    out = {k: v for k, v in flatten(plan.config).items() if k not in space.params}
    out.update({f"search_space.{k}": f"{d.kind}{list(d.args)}" for k, d in space.params.items()})
    return out
