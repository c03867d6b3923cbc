"""Where MLflow keeps a search: the store's URI, artifact root, tags, the UI's saved view of a
search, and the command that serves the UI; the store opened before a search starts (a database
that cannot be opened is one line at once, not MLflow's minutes of retries; two first searches
take turns to create it) and an experiment deleted in the UI restored."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import unquote, urlparse

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
TAG_PARETO = "vaetune.pareto"  # on a trial's run of a multi-objective search: "true" on the Pareto front
TAG_FEASIBLE = "vaetune.feasible"  # on a trial's run of a search with constraints: "true" when it held them
TAG_WARM_START = "vaetune.warm_start"  # on the parent run of a warm-started search: the earlier results folder
TAG_IMPORTED = "vaetune.imported"  # on that run: the earlier trials imported as observations, as it names them
TAG_VALUE_MAX = 8000  # MLflow's limit on the characters of a tag's value
LOST_MESSAGE = ("started after the last experiment snapshot of a driver that was stopped; --resume could not "
                "continue it, and the searcher suggested a new trial in its place")
RETRY_AFTER_S = 15.0  # seconds between attempts to reach an MLflow that failed


def imported_tags(source: str, trials: list[str]) -> dict[str, str]:
    """The parent run's tags of a warm-started search: where its observations came from, and which
    trials (all of them, or as many as a tag holds, then how many in all: search.json lists them)."""
    listed = ", ".join(trials)
    if len(listed) > TAG_VALUE_MAX:
        tail = f" ... ({len(trials)} in all)"
        listed = listed[:TAG_VALUE_MAX - len(tail)].rsplit(", ", 1)[0] + tail
    return {TAG_WARM_START: source, TAG_IMPORTED: listed}


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


SERVER_TIMEOUT_S = 5.0  # how long a command that needs an MLflow server now waits for its first answer


def check_server(uri: str, what: str) -> None:
    """For an http(s) store: something answers there within SERVER_TIMEOUT_S (MLflow's own client
    retries a refused connection for minutes). Any HTTP answer counts; other stores pass.

    Raises:
        UserError: naming `what`, the URI and why nothing answered.
    """
    import urllib.error
    import urllib.request

    from vaetune.errors import UserError

    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT_S).close()  # noqa: S310 - http(s)
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        reason = getattr(reason, "strerror", None) or str(reason)
        raise UserError(f"{what}: nothing answers at {uri} ({reason}); start the MLflow server there "
                        "(mlflow server --host 127.0.0.1 --port PORT), or pass the store itself "
                        "(sqlite:///PATH)") from None


STORE_WAIT_S = 300.0  # another search creating or migrating the store: how long a search waits for it


def check_store(uri: str, what: str) -> None:
    """A database store (sqlite:///PATH, postgresql://...) opens and can be read, tried once:
    MLflow itself retries a store it cannot open for minutes before it fails. A server (http) or
    a file store is MLflow's to try.

    Raises:
        UserError: naming `what`, the URI, why it did not open and what to check.
    """
    from vaetune.errors import UserError

    if uri.startswith(("http://", "https://")) or "://" not in uri or uri.startswith("file:"):
        return
    path = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
    if path is not None and path.is_dir():
        raise UserError(f"{what}: got {uri!r}, but {path} is a folder; give the path of a database file, e.g. "
                        f"sqlite:///{path / 'mlflow.db'}")
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(uri)
        try:
            sqlalchemy.inspect(engine).get_table_names()  # what MLflow retries: connect, then read
        finally:
            engine.dispose()
    except ImportError as exc:
        raise UserError(f"{what}: got {uri!r}, but its database driver is not installed ({exc}); install it, or "
                        "use sqlite:///PATH") from None
    except Exception as exc:
        first = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        check = "that it is an MLflow database (sqlite) you may write" if path is not None else (
            "that the database server runs there and the user may log in")
        raise UserError(f"{what}: MLflow cannot open the store {uri} ({first}); check {check}, or give another "
                        "tracking URI") from None


def open_store(uri: str, what: str, experiment: str) -> None:
    """Before a search starts: the store at `uri` opens (`check_store`); its tables are created or
    migrated by one process at a time, so that two searches started together in a fresh project
    both run (the other waits up to STORE_WAIT_S); an experiment named `experiment` that was
    deleted (MLflow's UI, `mlflow experiments delete`) is restored, with a warning saying so.
    A server is not contacted here: one that is down only queues tracking (vaetune.tracking).

    Raises:
        UserError: naming `what` and the URI, when the store cannot be used.
    """
    from vaetune.errors import UserError
    from vaetune.results import hold

    check_store(uri, what)
    if uri.startswith(("http://", "https://")):
        return
    from mlflow.tracking import MlflowClient

    path = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
    mlflow_log = logging.getLogger("mlflow")
    level = mlflow_log.level
    mlflow_log.setLevel(max(level, logging.WARNING))  # not its INFO lines on creating the tables
    try:
        with hold(path, "a search creating the MLflow store", wait_s=STORE_WAIT_S) if path else nullcontext():
            active_experiment(MlflowClient(tracking_uri=uri), experiment, uri, create=False)
    except UserError:
        raise
    except Exception as exc:
        first = " ".join(str(exc).split())[:200]
        raise UserError(f"{what}: MLflow cannot use the store {uri} ({type(exc).__name__}: {first}); check it, or "
                        "give another tracking URI") from None
    finally:
        mlflow_log.setLevel(level)


def active_experiment(client, name: str, uri: str, *, create: bool = True) -> str | None:
    """The id of the experiment `name` in a store, ready for runs: restored (with a warning) when it
    was deleted, created when there is none and `create` (None then when not)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None and exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
        log.warning("MLflow experiment %r in %s had been deleted (in MLflow's UI, or mlflow experiments delete); "
                    "restored it, with its earlier runs, to track this search (set tracking.experiment to track "
                    "it in another)", name, uri)
    if exp is not None or not create:
        return exp.experiment_id if exp is not None else None
    try:
        return client.create_experiment(name, artifact_location=default_artifact_root(uri))
    except Exception:  # created meanwhile by another search: use theirs
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def left_behind(artifact_uri: str, move) -> str | None:
    """An MLflow artifact location (an experiment's or a run's) that stayed where a moved project
    was: MLflow records it as an absolute path, so a store moved with the project still names the
    old place. None when there was no move (`move` None), or the location lies elsewhere."""
    if move is None or not artifact_uri:
        return None
    path = unquote(urlparse(artifact_uri).path) if artifact_uri.startswith("file:") else artifact_uri
    if "://" in path:  # a server's or a bucket's
        return None
    return path if move.path(path) != path else None


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


