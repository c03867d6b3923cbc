"""The driver-side MLflow writer of a search: every Tune event as a small, idempotent event,
applied at once or queued while MLflow is unreachable (see vaetune.tracking)."""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

from vaetune.checkpoint import GRIDS_DIR
from vaetune.metrics.registry import EPOCH, VAL_ELBO
from vaetune.results import (
    CHECKPOINT_SCORE,
    DIVERGED,
    DIVERGENCE,
    PENDING_DIR,
    PENDING_FILE,
    TRACKING_FILE,
    checkpoint_file,
    end_status,
    error_summary,
    read_tracking,
    trial_label,
    trial_number,
    write_tracking,
)
from vaetune.tracking._store import (
    EXPERIMENT_KIND,
    LOST_MESSAGE,
    RETRY_AFTER_S,
    TAG_ERROR,
    TAG_EXPERIMENT_KIND,
    TAG_SEARCH,
    TAG_STATUS,
    TAG_TRIAL,
    VIEW_TAG_PREFIX,
    active_experiment,
    search_view,
    view_key,
)

log = logging.getLogger(__name__)


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


class SearchTracker:
    """Driver-side MLflow logging of a search (mixed into a ray.tune.Callback in vaetune.search._searcher).

    Every Tune event becomes a small JSON-able event, applied to MLflow at once; if MLflow fails
    (server down), the event is queued and the queue is retried, in order, before each later
    event. Applying an event is idempotent (a trial's run is created once, found by its id in
    `tracking.json`), so a half-applied event can be applied again. Artifacts of queued events
    are copied under `mlflow_pending/` first, because Tune may delete old checkpoints.
    """

    def __init__(self, *, uri: str, experiment: str, search_name: str, results_dir: Path, max_epochs: int,
                 parent_params: dict[str, Any], resolve_params=dict, space_file: Path | None = None,
                 metric: str = VAL_ELBO, mode: str = "min", searched: list[str] | None = None,
                 parent_tags: dict[str, str] | None = None):
        self.uri, self.experiment, self.search_name = uri, experiment, search_name
        self.results_dir, self.max_epochs = Path(results_dir), max_epochs
        self.metric, self.mode, self.searched = metric, mode, list(searched or [])
        # resolve_params: a trial's searched values -> every resolved hyperparameter (dotted keys)
        self.parent_params, self.resolve_params, self.space_file = parent_params, resolve_params, space_file
        self.parent_tags = dict(parent_tags or {})  # the parent run's own (a warm start's, vaetune.search._warm)
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
            self.state.update(read_tracking(self.results_dir))  # its sqlite store where it is now, if it moved
            if self.state["uri"] != self.uri:  # e.g. started before the default store moved
                log.info("resuming in the MLflow store the search started in: %s", self.state["uri"])
                self.uri = self.state["uri"]
        if self.uri.startswith("sqlite:///"):  # sqlite creates the database, not its folder
            Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
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
        if result.get(DIVERGENCE):  # no epoch of metrics: the run ends diverged in on_trial_complete
            return
        step = int(result.get(EPOCH, result.get("training_iteration", 0)))
        self._emit({"kind": "metrics", "trial": trial.trial_id, "step": step,
                    "time": int(time.time() * 1000), "metrics": numeric_metrics(result)})

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.last_checkpoint[trial.trial_id] = checkpoint
        with checkpoint.as_directory() as folder:
            grids = Path(folder) / GRIDS_DIR
            for png in sorted(grids.glob("*.png")) if grids.is_dir() else []:
                self._emit({"kind": "artifact", "trial": trial.trial_id, "path": str(png), "dir": GRIDS_DIR})

    def on_trial_complete(self, iteration, trials, trial, **info):
        epochs = int((trial.last_result or {}).get(EPOCH, 0))
        ckpt = self.last_checkpoint.get(trial.trial_id) or getattr(trial, "checkpoint", None)
        if ckpt is not None:
            with ckpt.as_directory() as folder:
                path = checkpoint_file(folder)
                if path.exists():
                    self._emit({"kind": "artifact", "trial": trial.trial_id, "path": str(path), "dir": "checkpoint"})
        diverged = (trial.last_result or {}).get(DIVERGENCE)
        if diverged:
            self._emit({"kind": "trial_end", "trial": trial.trial_id, "status": DIVERGED, "error": str(diverged)[:4000],
                        "run_status": "FAILED"})
            return
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
            if self.client.get_run(parent).info.lifecycle_stage == "deleted":  # in MLflow's UI
                self.client.restore_run(parent)
                log.warning("the MLflow run of search %s had been deleted; restored it to go on tracking the "
                            "search there", self.search_name)
            self.client.update_run(parent, status="RUNNING")
            return
        run = self.client.create_run(exp_id, run_name=self.search_name,
                                     # getattr: a tracker an earlier vaetune pickled has none
                                     tags={TAG_SEARCH: self.search_name, **getattr(self, "parent_tags", {})})
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
        return active_experiment(self.client, self.experiment, self.uri)

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def _save_state(self) -> None:
        write_tracking(self.results_dir, self.state)
