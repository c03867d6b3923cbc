"""MLflow tracking of a search, from the driver only.

One writer avoids both of MLflow's concurrency traps on sqlite ("database is locked", and
trial processes racing to create the experiment): the trials never talk to MLflow; a Tune
callback in the driver logs for them. Each search is a parent run in an experiment named after
the search; each trial a nested child run named by what it tried (`β=0.0033 z=4 lr=2e-4`), with
its resolved hyperparameters, its metrics every epoch (step = epoch), its grids and final
checkpoint, and a status tag (completed, stopped by ASHA at epoch N, diverged, errored). When the
search ends, the parent run gets the best trial's metrics and parameters, a tag naming its run,
and `summary.csv`.

The store is where MLflow itself looks when nothing is set (`sqlite:///mlflow.db` in the working
folder for MLflow 3, artifacts in `mlruns/` beside it), or $MLFLOW_TRACKING_URI, so `mlflow ui`,
`mlflow server` and `mlflow.search_runs()` find the runs without flags. The experiment is marked
as one of model training (`mlflow.experimentKind`) and carries a saved view of each search (its
trials listed flat, best first by the search metric, with the searched parameters as columns),
which `vaetune ui` opens in the UI's model-training mode.

If the tracking server is unreachable, nothing fails: events are queued and retried before each
later event; whatever is still unsent at the end is written to `mlflow_pending.jsonl` in the
results folder, with a warning, and sent by `vaetune search SPACE --resume`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from vaetune.console import end_status, trial_label, trial_number
from vaetune.errors import UserError
from vaetune.results import (
    EPOCHS,
    PENDING_DIR,
    PENDING_FILE,
    RUN_ID,
    SUMMARY_FILE,
    TRACKING_FILE,
    TRIAL_ID,
    checkpoint_file,
    final_column,
    final_metrics,
    read_summary,
    read_tracking,
    write_tracking,
)
from vaetune.trainable import CHECKPOINT_SCORE

log = logging.getLogger(__name__)

ARTIFACTS_DIR = "mlruns"  # beside a local sqlite store, as MLflow's own client puts them
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"  # an experiment of model training, not of GenAI
EXPERIMENT_KIND = "custom_model_development"
VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # MLflow's UI: a saved view, opened by ?viewStateShareKey=
TAG_SEARCH = "vaetune.search"
TAG_TRIAL = "vaetune.trial_id"
TAG_STATUS = "vaetune.status"
TAG_ERROR = "vaetune.error"
TAG_BEST_RUN = "vaetune.best_run_id"  # on the parent run: the run of the best trial
TAG_BEST_TRIAL = "vaetune.best_trial"  # on the parent run: the best trial's run name
LOST_MESSAGE = ("started after the last experiment snapshot of a driver that was stopped; --resume could not "
                "continue it, and the searcher suggested a new trial in its place")
RETRY_AFTER_S = 15.0  # seconds between attempts to reach an MLflow that failed


def resolve_uri(configured: str | None) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else MLflow's own default store (MLflow 3:
    sqlite:///mlflow.db in the working folder), with a local path made absolute: the search's
    files record it, and later commands may run elsewhere."""
    import mlflow

    uri = configured or mlflow.get_tracking_uri()  # $MLFLOW_TRACKING_URI, else MLflow's default
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    if "://" not in uri:  # a file store: a folder
        return str(Path(uri).resolve())
    return uri


def default_artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: mlruns/ beside a local sqlite store (where MLflow's
    own client puts those of its default store); a server decides itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / ARTIFACTS_DIR).resolve().as_uri()
    return None


def view_key(search_name: str) -> str:
    """The id of a search's saved view in MLflow's UI (`?viewStateShareKey=` of its URL)."""
    return f"vaetune-{search_name}"


def view_url(base: str, experiment_id: str, search_name: str) -> str:
    """The address of a search's saved view on an MLflow UI at `base`. MLflow 3.17's UI shows an
    experiment as its GenAI/Model training switch says (GenAI until a browser is switched), not
    by the experiment's kind: the address switches it to model training."""
    return (f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&viewStateShareKey={view_key(search_name)}")


def search_view(search_name: str, metric: str, mode: str, searched: list[str]) -> str:
    """The saved view of a search, as MLflow's UI stores one in an experiment tag: the search's
    trials (a filter, so they are listed flat rather than folded under the search's run), best
    first by the search metric, with the metric, the searched parameters and the status."""
    def column(kind: str, key: str) -> str:
        return f"{kind}.`{key}`"

    state = {
        "searchFilter": f"tags.`{TAG_SEARCH}` = '{search_name}' and tags.`{TAG_TRIAL}` != ''",
        "orderByKey": column("metrics", metric), "orderByAsc": mode == "min",
        "selectedColumns": [column("metrics", metric), *(column("params", k) for k in searched),
                            column("tags", TAG_STATUS)],
    }
    now = int(time.time() * 1000)
    return json.dumps({"name": f"vaetune: trials of {search_name} by {metric}", "createdAt": now,
                       "updatedAt": now, "state": json.dumps(state)})


def numeric_metrics(result: dict) -> dict[str, float]:
    """The finite numeric metrics of a Tune result that MLflow should record."""
    # Tune's bookkeeping, and the score Tune keeps checkpoints by
    skip = {"timestamp", "pid", "time_since_restore", "iterations_since_restore", "done", CHECKPOINT_SCORE}
    out = {}
    for k, v in result.items():
        if k in skip or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


class _SearchTracker:
    """Driver-side MLflow logging of a search (mixed into a ray.tune.Callback in vaetune._tune).

    Every Tune event becomes a small JSON-able event, applied to MLflow at once; if MLflow fails
    (server down), the event is queued and the queue is retried, in order, before each later
    event. Applying an event is idempotent (a trial's run is created once, found by its id in
    `tracking.json`), so a half-applied event can be applied again. Artifacts of queued events
    are copied under `mlflow_pending/` first, because Tune may delete old checkpoints.
    """

    def __init__(self, *, uri: str, experiment: str, search_name: str, results_dir: Path, max_epochs: int,
                 parent_params: dict[str, Any], resolve_params=dict, space_file: Path | None = None,
                 metric: str = "val/elbo", mode: str = "min", searched: list[str] | None = None):
        self.uri, self.experiment, self.search_name = uri, experiment, search_name
        self.results_dir, self.max_epochs = Path(results_dir), max_epochs
        self.metric, self.mode, self.searched = metric, mode, list(searched or [])
        # resolve_params: a trial's searched values -> every resolved hyperparameter (dotted keys)
        self.parent_params, self.resolve_params, self.space_file = parent_params, resolve_params, space_file
        self.client = None
        self.pending: list[dict] = []
        self.warned = False
        self.retry_at = 0.0  # after a failure, queued events wait this long before the next try
        self.last_checkpoint: dict[str, Any] = {}
        self.state = {"uri": uri, "experiment": experiment, "parent_run_id": None, "trial_runs": {}, "run_names": {}}
        self.resumed = False  # a previous driver of this search left tracking state behind
        self.lost_checked = False

    # -- Tune callback hooks ----------------------------------------------------------------------
    def setup(self, **info):
        # MLflow's HTTP client fails fast under the search's environment (vaetune.search._run);
        # the queue retries instead
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        from mlflow.tracking import MlflowClient

        path = self.results_dir / TRACKING_FILE
        pending_file = self.results_dir / PENDING_FILE
        self.resumed = path.exists() or pending_file.exists()
        if path.exists():
            self.state.update(json.loads(path.read_text()))
            if self.state["uri"] != self.uri:  # e.g. started before the default store moved
                log.info("resuming in the MLflow store the search started in: %s", self.state["uri"])
                self.uri = self.state["uri"]
        self.client = MlflowClient(tracking_uri=self.uri)
        if pending_file.exists():  # events a previous run could not send
            self.pending = [json.loads(line) for line in pending_file.read_text().splitlines() if line.strip()]
            pending_file.unlink()
            log.info("sending %d queued MLflow events from the previous run", len(self.pending))
        self._emit({"kind": "search_start"})

    def on_step_begin(self, iteration, trials, **info):
        # the first step of a resumed search sees exactly the trials Tune restored: a trial the
        # killed driver started after its last experiment snapshot is not among them, and its
        # run would stay RUNNING for ever (the searcher suggests a new trial in its place)
        if self.resumed and not self.lost_checked:
            self.lost_checked = True
            self._emit({"kind": "lost_trials", "known": sorted(t.trial_id for t in trials)})

    def on_trial_start(self, iteration, trials, trial, **info):
        params = dict(trial.config)
        searched = {k: params[k] for k in self.searched if k in params} or params
        self._emit({"kind": "trial_start", "trial": trial.trial_id, "searched": params,
                    "name": trial_label(searched), "number": trial_number(trial),
                    "params": {k: str(v) for k, v in self.resolve_params(params).items()}})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        self._emit({"kind": "metrics", "trial": trial.trial_id, "step": step,
                    "time": int(time.time() * 1000), "metrics": numeric_metrics(result)})

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.last_checkpoint[trial.trial_id] = checkpoint
        with checkpoint.as_directory() as folder:
            grids = Path(folder) / "grids"
            for png in sorted(grids.glob("*.png")) if grids.is_dir() else []:
                self._emit({"kind": "artifact", "trial": trial.trial_id, "path": str(png), "dir": "grids"})

    def on_trial_complete(self, iteration, trials, trial, **info):
        epochs = int((trial.last_result or {}).get("epoch", 0))
        ckpt = self.last_checkpoint.get(trial.trial_id) or getattr(trial, "checkpoint", None)
        if ckpt is not None:
            with ckpt.as_directory() as folder:
                path = checkpoint_file(folder)
                if path.exists():
                    self._emit({"kind": "artifact", "trial": trial.trial_id, "path": str(path), "dir": "checkpoint"})
        self._emit({"kind": "trial_end", "trial": trial.trial_id, "status": end_status(epochs, self.max_epochs),
                    "run_status": "FINISHED"})

    def on_trial_error(self, iteration, trials, trial, **info):
        error = error_summary(trial)
        error_file = getattr(trial, "error_file", None)
        if error_file and Path(error_file).exists():  # the full traceback
            self._emit({"kind": "artifact", "trial": trial.trial_id, "path": str(error_file), "dir": "error"})
        self._emit({"kind": "trial_end", "trial": trial.trial_id, "status": end_status(0, self.max_epochs, error),
                    "error": error[:4000], "run_status": "FAILED"})

    def on_experiment_end(self, trials, **info):
        self._flush(force=True)
        self._emit({"kind": "search_end"})
        if self.pending:
            self._save_pending()

    # -- events ---------------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        self._flush()
        if self.pending:
            self._queue(event)
            return
        try:
            self._apply(event)
        except Exception as exc:  # an unreachable or failing server must never stop a search
            self._queue(event)
            self.retry_at = time.monotonic() + RETRY_AFTER_S
            if not self.warned:
                log.warning("MLflow at %s failed (%s: %s); training goes on, tracking is queued and retried",
                            self.uri, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
                self.warned = True

    def _flush(self, force: bool = False) -> None:
        if self.pending and not force and time.monotonic() < self.retry_at:
            return
        while self.pending:
            try:
                self._apply(self.pending[0])
            except Exception:
                self.retry_at = time.monotonic() + RETRY_AFTER_S
                return
            self.pending.pop(0)
            if not self.pending and self.warned:
                log.warning("MLflow at %s is reachable again; queued tracking sent", self.uri)
                self.warned = False

    def _queue(self, event: dict) -> None:
        if event["kind"] == "artifact":  # keep a copy: Tune may delete the checkpoint meanwhile
            keep = self.results_dir / PENDING_DIR / event["trial"] / event["dir"]
            keep.mkdir(parents=True, exist_ok=True)
            target = keep / Path(event["path"]).name
            if Path(event["path"]).exists() and Path(event["path"]) != target:
                shutil.copy2(event["path"], target)
            event = {**event, "path": str(target)}
        self.pending.append(event)

    def _save_pending(self) -> None:
        path = self.results_dir / PENDING_FILE
        with path.open("a") as f:
            for event in self.pending:
                f.write(json.dumps(event) + "\n")
        log.warning("MLflow at %s stayed unreachable: %d tracking events kept in %s; they are sent when "
                    "the search is resumed (vaetune search SPACE --resume)", self.uri, len(self.pending), path)
        self.pending = []

    def _apply(self, event: dict) -> None:
        getattr(self, "_apply_" + event["kind"])(event)

    def _apply_search_start(self, event: dict) -> None:
        exp_id = self._experiment_id()
        self.client.set_experiment_tag(exp_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
        self.client.set_experiment_tag(exp_id, VIEW_TAG_PREFIX + view_key(self.search_name),
                                       search_view(self.search_name, self.metric, self.mode, self.searched))
        parent = self.state.get("parent_run_id")
        if parent:
            self.client.update_run(parent, status="RUNNING")
            return
        run = self.client.create_run(exp_id, run_name=self.search_name, tags={TAG_SEARCH: self.search_name})
        self.state["parent_run_id"] = run.info.run_id
        self._save_state()
        self._log_params(run.info.run_id, {k: str(v) for k, v in self.parent_params.items()})
        if self.space_file is not None and Path(self.space_file).exists():
            self.client.log_artifact(run.info.run_id, str(self.space_file))

    def _apply_trial_start(self, event: dict) -> None:
        runs = self.state["trial_runs"]
        if event["trial"] in runs:  # a restored or retried trial continues its run
            self.client.update_run(runs[event["trial"]], status="RUNNING")
            return
        parent = self.client.get_run(self.state["parent_run_id"])
        # MLflow is the record: a driver killed between creating the run and writing
        # tracking.json must not leave the resumed trial a second run
        found = self.client.search_runs(
            [parent.info.experiment_id], max_results=1,
            filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`{TAG_TRIAL}` = '{event['trial']}'")
        if found:
            runs[event["trial"]] = found[0].info.run_id
            self._save_state()
            self.client.update_run(found[0].info.run_id, status="RUNNING")
            self._log_params(found[0].info.run_id, event["params"])  # same values again: allowed
            return
        run = self.client.create_run(parent.info.experiment_id, run_name=self._run_name(event), tags={
            "mlflow.parentRunId": parent.info.run_id, TAG_SEARCH: self.search_name, TAG_TRIAL: event["trial"],
            TAG_STATUS: "running", "vaetune.searched": json.dumps(event["searched"], default=str)})
        runs[event["trial"]] = run.info.run_id
        self._save_state()
        self._log_params(run.info.run_id, event["params"])

    def _apply_metrics(self, event: dict) -> None:
        from mlflow.entities import Metric

        run_id = self.state["trial_runs"][event["trial"]]
        metrics = [Metric(k, v, event["time"], event["step"]) for k, v in event["metrics"].items()]
        for i in range(0, len(metrics), 500):
            self.client.log_batch(run_id, metrics=metrics[i:i + 500])

    def _apply_artifact(self, event: dict) -> None:
        if Path(event["path"]).exists():
            self.client.log_artifact(self.state["trial_runs"][event["trial"]], event["path"], event["dir"])

    def _apply_trial_end(self, event: dict) -> None:
        run_id = self.state["trial_runs"][event["trial"]]
        self.client.set_tag(run_id, TAG_STATUS, event["status"])
        if event.get("error"):
            self.client.set_tag(run_id, TAG_ERROR, event["error"])
        self.client.set_terminated(run_id, event["run_status"])

    def _apply_lost_trials(self, event: dict) -> None:
        parent = self.state.get("parent_run_id")
        if not parent:
            return
        exp_id = self.client.get_run(parent).info.experiment_id
        known, lost, token = set(event["known"]), [], None
        while True:
            page = self.client.search_runs(
                [exp_id], max_results=1000, page_token=token,
                filter_string=f"tags.`mlflow.parentRunId` = '{parent}' and attributes.status = 'RUNNING'")
            lost += [r for r in page if r.data.tags.get(TAG_TRIAL) not in known]
            token = page.token
            if not token:
                break
        for run in lost:
            self.client.set_tag(run.info.run_id, TAG_STATUS, "lost")
            self.client.set_tag(run.info.run_id, TAG_ERROR, LOST_MESSAGE)
            self.client.set_terminated(run.info.run_id, "KILLED")
        if lost:
            log.warning("%d trial(s) started after the stopped driver's last experiment snapshot (%s) cannot be "
                        "continued; their MLflow runs are marked KILLED (tag %s=lost) and the searcher suggests "
                        "new trials in their place", len(lost),
                        ", ".join(r.data.tags.get(TAG_TRIAL, r.info.run_id) for r in lost), TAG_STATUS)

    def _apply_search_end(self, event: dict) -> None:
        self.client.set_terminated(self.state["parent_run_id"], "FINISHED")

    # -- helpers ------------------------------------------------------------------------------
    def _run_name(self, event: dict) -> str:
        """What the trial tried; with its number where another trial of the search tried the same."""
        names = self.state.setdefault("run_names", {})
        name = event.get("name") or event["trial"]
        if name in names.values():
            name = f"{name} #{event.get('number') or len(names) + 1}"
        names[event["trial"]] = name
        return name

    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(self.experiment, artifact_location=default_artifact_root(self.uri))
        except Exception:  # created meanwhile by another search: use theirs
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return exp.experiment_id

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def _save_state(self) -> None:
        write_tracking(self.results_dir, self.state)


def error_summary(trial) -> str:
    """The last line of a trial's error (the exception and its message), for tags and tables."""
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
        for line in reversed(lines):
            if not line.startswith(" ") and ("Error" in line or "Exception" in line):
                return line.strip()
        return lines[-1].strip() if lines else "error"
    return "error"


def ui_command(uri: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The `mlflow server` command line serving a store's UI on 127.0.0.1, and its environment."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(port)]
    root = default_artifact_root(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    # MLflow's server jobs (GenAI judges, prompt optimisation) are several processes vaetune's
    # runs have no use for
    return cmd, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}


def latest_search(uri: str) -> tuple[str, str] | None:
    """(experiment id, search name) of the search that started last in a store, or None."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string=f"tags.`{TAG_SEARCH}` != ''",
                              order_by=["attributes.start_time DESC"], max_results=1) if experiments else []
    if not runs:
        return None
    return runs[0].info.experiment_id, runs[0].data.tags[TAG_SEARCH]


def log_search_outcome(results: Path, metric: str, mode: str, searched: list[str]) -> str | None:
    """The end of a search, on its MLflow parent run: the best trial's metrics (final values, and
    `best/<metric>`) and searched parameters, a tag with its run id, and summary.csv as an
    artifact. Returns the best trial's run id, or None. MLflow failing only warns."""
    from vaetune.export import pick_best

    results = Path(results)
    summary_file = results / SUMMARY_FILE
    state = read_tracking(results)
    if not state or not summary_file.exists():
        return None
    parent = state.get("parent_run_id")
    if not parent:
        return None
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=state["uri"])
        client.log_artifact(parent, str(summary_file))
        try:
            best, col = pick_best(read_summary(results), metric, mode)
        except UserError:  # no trial scored: nothing to point at
            return None
        run_id = str(best.get(RUN_ID) or "")
        now = int(time.time() * 1000)
        values = {m: best[final_column(m)] for m in final_metrics(best.index)}
        values[col] = best[col]
        metrics = [Metric(k, float(v), now, int(best[EPOCHS])) for k, v in values.items()
                   if isinstance(v, (int, float)) and math.isfinite(v)]
        client.log_batch(parent, metrics=metrics)
        if run_id:
            client.set_tag(parent, TAG_BEST_RUN, run_id)
            client.set_tag(parent, TAG_BEST_TRIAL, state.get("run_names", {}).get(best[TRIAL_ID], best[TRIAL_ID]))
        try:  # the same keys as the trials' own parameters, so the search's row lines up with theirs
            client.log_batch(parent, params=[Param(k, str(best[k])) for k in searched if k in best.index])
        except Exception as exc:  # a resumed search that found a better trial: parameters are immutable
            log.warning("the search's MLflow run keeps the parameters of its earlier best trial (%s); "
                        "tag %s names the best run", str(exc).splitlines()[0][:200], TAG_BEST_RUN)
        return run_id or None
    except Exception as exc:  # the files are written; a tracking outage must not fail the search
        log.warning("logging the outcome to MLflow run %s at %s failed (%s: %s)", parent, state["uri"],
                    type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
        return None
