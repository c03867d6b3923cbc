"""MLflow tracking of a search, from the driver only.

One writer avoids both of MLflow's concurrency traps on sqlite ("database is locked", and
trial processes racing to create the experiment): the trials never talk to MLflow; a Tune
callback in the driver logs for them. Each search is a parent run in an experiment named after
the search; each trial a nested child run with its resolved hyperparameters, its metrics every
epoch (step = epoch), its grids and final checkpoint, and a status tag.

If the tracking server is unreachable, nothing fails: calls are queued, retried at the next
event, and at the end whatever could not be sent is written to `mlflow_pending.jsonl` in the
results folder with a warning (`vaetune` replays it on `--resume`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vaetune.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_STORE = "mlruns"
TAG_SEARCH = "vaetune.search"
TAG_TRIAL = "vaetune.trial_id"
TAG_STATUS = "vaetune.status"
TAG_ERROR = "vaetune.error"
PENDING_FILE = "mlflow_pending.jsonl"


def resolve_uri(configured: str | None) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else a sqlite store under ./mlruns (offline)."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = Path(DEFAULT_STORE).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def default_artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a local sqlite store; a server decides itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return None


class _Client:
    """MlflowClient calls that never raise: failures are queued and retried in order."""

    def __init__(self, uri: str, results_dir: Path):
        # Fail fast instead of MLflow's minutes of HTTP retries, so training never waits on it.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        self.pending: list[tuple[str, list, dict]] = []
        self.pending_file = results_dir / PENDING_FILE
        self.warned = False

    def call(self, method: str, *args, **kwargs) -> Any:
        self.flush()
        if self.pending:  # still down: keep order, queue behind the others
            self.pending.append((method, list(args), kwargs))
            return None
        return self._try(method, args, kwargs)

    def _try(self, method: str, args, kwargs) -> Any:
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except Exception as exc:  # an unreachable or failing server must not stop training
            if not self.warned:
                log.warning("MLflow at %s failed (%s: %s); queueing tracking calls and retrying",
                            self.uri, type(exc).__name__, str(exc).splitlines()[0][:200])
                self.warned = True
            self.pending.append((method, list(args), kwargs))
            return None

    def flush(self) -> None:
        while self.pending:
            method, args, kwargs = self.pending[0]
            try:
                getattr(self.client, method)(*args, **kwargs)
            except Exception:
                return
            self.pending.pop(0)
            if not self.pending:
                log.warning("MLflow at %s is reachable again; queued calls sent", self.uri)
                self.warned = False

    def save_pending(self) -> None:
        self.flush()
        if not self.pending:
            return
        with self.pending_file.open("a") as f:
            for method, args, kwargs in self.pending:
                f.write(json.dumps({"method": method, "args": args, "kwargs": kwargs}, default=_jsonable) + "\n")
        log.warning("MLflow at %s stayed unreachable: %d tracking calls written to %s; they are sent "
                    "when the search is resumed with --resume", self.uri, len(self.pending), self.pending_file)
        self.pending.clear()

    def replay_file(self) -> None:
        if not self.pending_file.exists():
            return
        lines = self.pending_file.read_text().splitlines()
        self.pending_file.unlink()
        for line in lines:
            entry = json.loads(line)
            self.pending.append((entry["method"], entry["args"], _unjson(entry["kwargs"])))
        self.flush()
        if self.pending:
            self.save_pending()


def _jsonable(obj):
    from mlflow.entities import Metric, Param, RunTag

    if isinstance(obj, Metric):
        return {"__metric__": [obj.key, obj.value, obj.timestamp, obj.step]}
    if isinstance(obj, Param):
        return {"__param__": [obj.key, obj.value]}
    if isinstance(obj, RunTag):
        return {"__tag__": [obj.key, obj.value]}
    return str(obj)


def _unjson(obj):
    from mlflow.entities import Metric, Param, RunTag

    if isinstance(obj, dict):
        if "__metric__" in obj:
            return Metric(*obj["__metric__"])
        if "__param__" in obj:
            return Param(*obj["__param__"])
        if "__tag__" in obj:
            return RunTag(*obj["__tag__"])
        return {k: _unjson(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unjson(v) for v in obj]
    return obj


def numeric_metrics(result: dict) -> dict[str, float]:
    """The finite numeric metrics of a Tune result that MLflow should record."""
    skip = {"timestamp", "pid", "time_since_restore", "iterations_since_restore", "done"}
    out = {}
    for k, v in result.items():
        if k in skip or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if math.isfinite(v):
            out[k] = float(v)
    return out


def make_callback(**kwargs):
    """The Tune callback, built lazily so importing this module does not import Ray."""
    from ray.tune import Callback

    class MLflowSearchCallback(_SearchTracker, Callback):
        pass

    return MLflowSearchCallback(**kwargs)


class _SearchTracker:
    """Driver-side MLflow logging of a search (mixed into a ray.tune.Callback)."""

    def __init__(self, *, uri: str, experiment: str, search_name: str, results_dir: Path, max_epochs: int,
                 parent_params: dict[str, Any], resolve_params=dict, space_file: Path | None = None):
        self.uri, self.experiment, self.search_name = uri, experiment, search_name
        self.results_dir, self.max_epochs = Path(results_dir), max_epochs
        # resolve_params: a trial's searched values -> every resolved hyperparameter (dotted keys)
        self.parent_params, self.resolve_params, self.space_file = parent_params, resolve_params, space_file
        self.run_ids: dict[str, str] = {}
        self.last_checkpoint: dict[str, Any] = {}
        self.client: _Client | None = None
        self.parent_run_id: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def setup(self, **info):
        self.client = _Client(self.uri, self.results_dir)
        self.client.replay_file()
        state = self._state()
        self.parent_run_id = state.get("parent_run_id")
        self.run_ids = state.get("trial_runs", {})
        if self.parent_run_id is None:
            exp_id = self._experiment_id()
            run = self.client.call("create_run", exp_id, run_name=self.search_name,
                                   tags={TAG_SEARCH: self.search_name, "mlflow.runName": self.search_name})
            self.parent_run_id = run.info.run_id if run else None
            if self.parent_run_id:
                self._log_params(self.parent_run_id, self.parent_params)
                if self.space_file is not None:
                    self.client.call("log_artifact", self.parent_run_id, str(self.space_file))
            self._save_state()
        elif self.parent_run_id:
            self.client.call("update_run", self.parent_run_id, status="RUNNING")

    def _experiment_id(self) -> str | None:
        exp = self.client.call("get_experiment_by_name", self.experiment)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.client.create_experiment(self.experiment, artifact_location=default_artifact_root(self.uri))
        except Exception:  # created meanwhile by someone else, or the server is down
            exp = self.client.call("get_experiment_by_name", self.experiment)
            return exp.experiment_id if exp else None

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id in self.run_ids:  # a restored or retried trial continues its run
            self.client.call("update_run", self.run_ids[trial.trial_id], status="RUNNING")
            return
        if not self.parent_run_id:
            return
        exp_id = self.client.call("get_run", self.parent_run_id)
        exp_id = exp_id.info.experiment_id if exp_id else None
        run = self.client.call("create_run", exp_id, run_name=trial.trial_id, tags={
            "mlflow.parentRunId": self.parent_run_id, TAG_SEARCH: self.search_name, TAG_TRIAL: trial.trial_id,
            TAG_STATUS: "running", "mlflow.runName": trial.trial_id})
        if run is None:
            return
        self.run_ids[trial.trial_id] = run.info.run_id
        self._save_state()
        params = dict(trial.config)
        self._log_params(run.info.run_id, self.resolve_params(params))
        self.client.call("set_tag", run.info.run_id, "vaetune.searched", json.dumps(params, default=str))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if not run_id:
            return
        from mlflow.entities import Metric

        step = int(result.get("epoch", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in numeric_metrics(result).items()]
        for i in range(0, len(metrics), 500):
            self.client.call("log_batch", run_id, metrics=metrics[i:i + 500])

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        run_id = self.run_ids.get(trial.trial_id)
        self.last_checkpoint[trial.trial_id] = checkpoint
        if not run_id:
            return
        with checkpoint.as_directory() as folder:
            grids = Path(folder) / "grids"
            for png in sorted(grids.glob("*.png")) if grids.is_dir() else []:
                self.client.call("log_artifact", run_id, str(png), "grids")

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if not run_id:
            return
        epochs = int((trial.last_result or {}).get("epoch", 0))
        status = "completed" if epochs >= self.max_epochs else "stopped by ASHA"
        self._log_final_checkpoint(trial, run_id)
        self.client.call("set_tag", run_id, TAG_STATUS, status)
        self.client.call("set_terminated", run_id, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if not run_id:
            return
        self.client.call("set_tag", run_id, TAG_STATUS, "errored")
        self.client.call("set_tag", run_id, TAG_ERROR, error_summary(trial)[:4000])
        self.client.call("set_terminated", run_id, "FAILED")

    def on_experiment_end(self, trials, **info):
        if self.parent_run_id:
            self.client.call("set_terminated", self.parent_run_id, "FINISHED")
        self.client.save_pending()

    # -- helpers ------------------------------------------------------------------------------
    def _log_final_checkpoint(self, trial, run_id: str) -> None:
        ckpt = self.last_checkpoint.get(trial.trial_id) or getattr(trial, "checkpoint", None)
        if ckpt is None:
            return
        with ckpt.as_directory() as folder:
            path = Path(folder) / "checkpoint.pt"
            if path.exists():
                self.client.call("log_artifact", run_id, str(path), "checkpoint")

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.call("log_batch", run_id, params=items[i:i + 100])

    def _state(self) -> dict:
        path = self.results_dir / "tracking.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _save_state(self) -> None:
        path = self.results_dir / "tracking.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"uri": self.uri, "experiment": self.experiment,
                                   "parent_run_id": self.parent_run_id, "trial_runs": self.run_ids}, indent=1))
        os.replace(tmp, path)


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


def cmd_ui(args) -> int:
    """`vaetune ui`: the MLflow UI on 127.0.0.1 for vaetune's store."""
    uri = resolve_uri(args.uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise UserError(f"{uri}: no MLflow store there yet; run a search first or pass --uri")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    root = default_artifact_root(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    print(f"MLflow UI for {uri}\n  http://127.0.0.1:{args.port}\n(Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
