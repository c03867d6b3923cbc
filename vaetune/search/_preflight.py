"""Checks a search makes before Ray starts or a file is written, beyond the space itself.

The machine's resources (a GPU asked for where there is none), the Ray cluster an --address
names (and, once joined, whether any of its nodes can run a trial), the folders the search
writes and the room on their disks (vaetune.search._storage), the MLflow store (opened here,
vaetune.tracking.open_store), the data (loaded here, once, for every trial), and for --resume
what changed since the search started: the space, and the data (its fingerprint). Each failure is a `UserError` naming the key or argument,
the bad value and the fix, so a mistake costs seconds and leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vaetune.errors import UserError
from vaetune.fileio import is_remote
from vaetune.machine import cpu_count, gpu_count
from vaetune.outputs import check_writable, output_folder
from vaetune.results import SEARCH_FILE, SPACE_FILE
from vaetune.search._checks import data_is_searched
from vaetune.search._state import DATA_KEY
from vaetune.search._storage import check_ray_temp_room, check_remote_storage, check_storage_room
from vaetune.search._warm import check_warm_data
from vaetune.spec import Config, SearchPlan, SearchSpace, SpecError

_ADDRESS = re.compile(r"(?:ray://)?(?P<host>[^:/\s]+):(?P<port>\d{1,5})")
RAY_ADDRESS = "RAY_ADDRESS"  # Ray's variable: ray.init joins the cluster it names (`ray job submit` sets it)
UNIX_SOCKET_MAX = 107 if sys.platform.startswith("linux") else 103  # bytes of an AF_UNIX path, as Ray checks them
# what Ray adds to its temporary folder for its longest socket path (a 7-digit pid at most)
RAY_SOCKET_TAIL = "/ray/session_2026-12-01_23-36-15_177628_4194304/sockets/plasma_store"
_CONNECT_TIMEOUT_S = 5.0
GROWABLE = "search.num_samples"  # the one setting a resumed search may change (upwards)


def preflight(plan: SearchPlan, results: Path, *, address: str | None, resume: bool, named: str = "--address",
              warm=None):
    """Everything that can be checked before Ray starts; returns the data every trial shares
    (None when the trials load their own because data.* keys are searched) and the fingerprint
    of each source the trials read (`DATA_KEY` of search.json). `address` is the cluster to join
    and `named` what gave it (see `ray_address`); `warm` a warm start, whose images must be these."""
    from vaetune.tracking import open_store, resolve_uri

    config = plan.config
    check_grid(plan)
    check_address(address, named)
    if address is None:
        check_local_resources(config)
        check_ray_temp_dir()
    check_folders(config, results, resume=resume)
    check_remote_storage(config.search.storage)
    check_tracking(config.tracking.uri)
    data, fingerprints = load_shared_data(plan)
    check_warm_data(warm, plan.space.source, fingerprints)
    check_storage_room(plan, results, data, resume=resume)
    if resume:
        check_same_data(results, fingerprints)
    what = "tracking.uri" if config.tracking.uri else "$MLFLOW_TRACKING_URI" if os.environ.get(
        "MLFLOW_TRACKING_URI") else "the MLflow store (tracking.uri null: ./mlflow.db)"
    open_store(resolve_uri(config.tracking.uri), what, config.tracking.experiment or config.name)
    return data, fingerprints


def check_grid(plan: SearchPlan) -> None:
    """A grid search runs every point: fewer trials than points would leave some out unasked."""
    if not plan.grid:
        return
    space, config, points = plan.space, plan.config, plan.grid_points
    if config.search.num_samples < points:
        sizes = " x ".join(f"{len(d.args)} {k}" for k, d in space.params.items())
        raise SpecError(space.source, "search.num_samples", config.search.num_samples,
                        f"the grid has {points} points ({sizes}) and sampler grid tries each once; set "
                        f"search.num_samples: {points}, or use choice lists and sampler auto to try a sample of them")


# ---------------------------------------------------------------------------------------------
# Ray: the address, and the resources a trial asks for


def ray_address(address: str | None) -> tuple[str | None, str]:
    """The Ray cluster a search joins and what named it: --address, else $RAY_ADDRESS (which
    ray.init itself reads; a driver started by `ray job submit` has it), else (None, ""): a Ray
    of the search's own on this machine, whatever another Ray left behind here."""
    if address:
        return address, "--address"
    env = os.environ.get(RAY_ADDRESS, "")
    return (env, f"${RAY_ADDRESS}") if env else (None, "")


def check_address(address: str | None, named: str = "--address") -> None:
    """The address is auto, HOST:PORT or ray://HOST:PORT, and something answers there."""
    if address is None or address == "auto":
        return
    fix = (f"; unset {RAY_ADDRESS} to run the search on this machine, or give --address"
           if named != "--address" else "")
    m = _ADDRESS.fullmatch(address)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise UserError(f"{named}: got {address!r}; accepted: auto, HOST:PORT (e.g. 10.0.0.5:6379) or "
                        f"ray://HOST:PORT{fix}")
    try:
        socket.create_connection((m["host"], int(m["port"])), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(f"{named}: nothing answers at {m['host']}:{m['port']} ({exc.strerror or exc}); start the "
                        f"cluster (ray start --head, or ray up cluster.yaml) or check the address{fix}") from None


def ray_temp_dir() -> tuple[str, str]:
    """The folder a Ray started here puts its sessions (and their sockets) under, and the variable
    that chose it: Ray's own rule ($RAY_TMPDIR, else $TMPDIR on Linux, else /tmp)."""
    for name in ("RAY_TMPDIR", *(("TMPDIR",) if sys.platform.startswith("linux") else ())):
        if name in os.environ:
            return os.environ[name], f"${name}"
    return "/tmp", ""


def check_ray_temp_dir() -> None:
    """Ray's sockets fit in a Unix socket path under the temporary folder another tool may have set."""
    folder, named = ray_temp_dir()
    longest = len(os.fsencode(folder.rstrip("/"))) + len(RAY_SOCKET_TAIL)
    if named and longest > UNIX_SOCKET_MAX:
        raise UserError(f"{named}: got {folder} ({len(folder)} characters); Ray's sockets under it would be up to "
                        f"{longest} bytes long, beyond the {UNIX_SOCKET_MAX} a Unix socket path allows; set "
                        "RAY_TMPDIR to a short folder (e.g. RAY_TMPDIR=/tmp) for the search")
    check_writable(folder, named or "Ray's temporary folder (/tmp)")
    check_ray_temp_room(folder, named)


def check_local_resources(config: Config) -> None:
    """A trial's resources.cpu/gpu and train.device exist on this machine (the Ray Tune starts here)."""
    r, device = config.resources, config.train.device
    cpus = cpu_count()
    if r.cpu > cpus:
        raise UserError(f"resources.cpu: got {r.cpu:g} per trial, but this machine has {cpus} CPUs; ask for at "
                        f"most {cpus}, or join a larger cluster with --address")
    if not r.gpu and device != "cuda":
        return
    gpus = gpu_count()
    if gpus == 0 and r.gpu:
        raise UserError(f"resources.gpu: got {r.gpu:g} per trial, but this machine has no GPU; set resources.gpu: 0 "
                        "(trials train on the CPU), or join a cluster with GPUs with --address")
    if gpus == 0:
        raise UserError("train.device: got 'cuda', but this machine has no CUDA device; use auto or cpu")
    if r.gpu > gpus:
        raise UserError(f"resources.gpu: got {r.gpu:g} per trial, but this machine has {gpus} GPU(s); ask for at "
                        f"most {gpus} (0.5 lets two trials share one)")


def check_cluster_resources(config: Config, address: str) -> None:
    """Once joined: some node of the cluster, or a node type its autoscaler can add, fits one trial.

    Ray would otherwise queue the trials for ever, printing that no node type can fulfil them."""
    import ray

    r = config.resources
    need = {"CPU": r.cpu, "GPU": r.gpu}
    shapes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")] + autoscaler_node_types()
    if any(all(shape.get(k, 0) >= v for k, v in need.items() if v) for shape in shapes):
        return
    biggest = max(shapes, key=lambda s: (s.get("GPU", 0), s.get("CPU", 0)), default={})
    raise UserError(f"resources: a trial asks for {r.cpu:g} CPU and {r.gpu:g} GPU, but no node of the cluster at "
                    f"{address} has that, nor a node type its autoscaler can add (the largest has "
                    f"{biggest.get('CPU', 0):g} CPU, {biggest.get('GPU', 0):g} GPU); lower resources.cpu/"
                    "resources.gpu, or add such nodes to the cluster")


def autoscaler_node_types() -> list[dict[str, float]]:
    """Resources of the node types the cluster's autoscaler may start, from the cluster launcher's
    bootstrap file on the head node, where the driver runs (docs/cluster.md). Ray keeps them in
    its GCS too, but offers no public way to read them there."""
    import yaml

    try:
        types = (yaml.safe_load(Path("~/ray_bootstrap_config.yaml").expanduser().read_text()) or {}).get(
            "available_node_types", {})
    except (OSError, yaml.YAMLError):  # none (a cluster not started by the launcher), or unreadable
        return []
    return [dict(t.get("resources") or {}) for t in types.values() if isinstance(t, dict) and t.get("max_workers", 1) != 0]


# ---------------------------------------------------------------------------------------------
# Files: the folders written, the tracking store, the data read


def check_folders(config: Config, results: Path, *, resume: bool) -> None:
    """The results folder is new, empty or this search's; storage and cache can be written."""
    s, d = config.search, config.data
    if not is_remote(s.storage):
        check_writable(s.storage, "search.storage")
    if not resume:
        output_folder(results, what=f"the results folder of {config.name!r}",
                      ours=lambda folder: (folder / SEARCH_FILE).exists())
    if not is_remote(d.cache_dir):
        check_writable(d.cache_dir, "data.cache_dir")


def check_tracking(configured: str | None) -> None:
    """MLflow can use the tracking URI. A server that is down is not a mistake (tracking is
    queued and retried); a URI MLflow cannot use at all, or a sqlite store in a folder that
    cannot be written, is."""
    what = "tracking.uri" if configured else "$MLFLOW_TRACKING_URI"
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        check_writable("mlruns", "tracking.uri (null: a sqlite store in ./mlruns)")
        return
    if urlparse(uri).scheme.split("+")[0] == "sqlite":
        path = uri.split("://", 1)[1][1:] if "://" in uri else ""
        if path in ("", ":memory:") or "mode=memory" in uri:
            raise UserError(f"{what}: got {uri!r}, an in-memory database: it keeps nothing once the search ends; "
                            "give a file, e.g. sqlite:///mlflow.db, or an MLflow server http://HOST:PORT")
        check_writable(Path(path).parent, what)
        return
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri)  # builds the store for the URI's scheme; contacts no server
    except Exception as exc:
        first = " ".join(str(exc).split())[:200]
        raise UserError(f"{what}: got {uri!r}, which MLflow cannot use ({type(exc).__name__}: {first}); accepted: "
                        "http(s)://HOST:PORT of an MLflow server, sqlite:///PATH, or a database URI") from None


def load_shared_data(plan: SearchPlan) -> tuple[Any, dict[str, dict]]:
    """The data every trial trains on, decoded (or read from the cache) once, here, so that a bad
    source fails before Ray starts; None when data.* keys are searched and each trial loads its
    own: then every source a trial may read is opened and listed here. With it, each source's
    fingerprint and image count ({source: {"fingerprint", "images"}}), which --resume compares."""
    from vaetune.data import load_data, open_source
    from vaetune.data.load import check_batch_fits, check_fits_in_memory

    space, config = plan.space, plan.config
    if not data_is_searched(space):
        data = load_data(config.data)
        check_batch_fits(space.source, _candidates(space, "train.batch_size", config.train.batch_size), data)
        return data, {str(config.data.source): {"fingerprint": data.fingerprint, "images": len(data.images)}}
    biggest = max(_candidates(space, "data.image_size", config.data.image_size))
    fingerprints = {}
    for source in _candidates(space, "data.source", config.data.source):
        cfg = config.data.model_copy(update={"source": source, "image_size": biggest})
        opened = open_source(source, cfg)
        # lists (or loads) the source: a missing or unreadable one fails here
        fingerprints[str(source)] = {"fingerprint": opened.fingerprint(), "images": opened.count()}
        if opened.count() == 0:
            raise UserError(f"data.source: {source!r} holds no image files")
        check_fits_in_memory(cfg, opened.count())
    return None, fingerprints


def check_same_data(results: Path, fingerprints: dict[str, dict]) -> None:
    """--resume: the images each source holds are the ones the search started on (the fingerprint
    search.json recorded), so that new trials are never ranked beside old ones on other data."""
    from vaetune.results import read_json

    before = read_json(results / SEARCH_FILE).get(DATA_KEY) or {}
    for source, was in before.items():
        now = fingerprints.get(source)
        if now is None or now.get("fingerprint") == was.get("fingerprint"):
            continue
        counts = f"{was.get('images')} -> {now.get('images')} images"
        raise UserError(f"--resume: the images of data.source {source} changed since the search started ({counts}; "
                        f"fingerprint {str(was.get('fingerprint'))[:12]} -> {str(now.get('fingerprint'))[:12]}): "
                        "trials trained on them would be ranked beside trials trained on the old ones; put the "
                        f"images back as they were, or start a new search on the new ones with --set name=...")


def _candidates(space: SearchSpace, key: str, fixed: Any) -> list[Any]:
    if key not in space.params:
        return [fixed]
    return space.params[key].candidates()


# ---------------------------------------------------------------------------------------------
# --resume: what changed since the search started


@dataclass(frozen=True)
class Change:
    key: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.key}: {_shown(self.before)} -> {_shown(self.after)}"

    @property
    def applicable(self) -> bool:
        """More trials: the one change a resumed search applies."""
        return self.grows(GROWABLE)

    def grows(self, key: str) -> bool:
        """`key`, an integer, made larger: a change a resumed run can apply by doing more."""
        return (self.key == key and isinstance(self.before, int) and isinstance(self.after, int)
                and not isinstance(self.before, bool) and self.after > self.before)


def changes_between(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Each dotted key whose value differs between two flat mappings (a key only one has included)."""
    return [Change(k, before.get(k), after.get(k)) for k in sorted(before.keys() | after.keys())
            if before.get(k) != after.get(k)]


def resume_changes(results: Path, plan: SearchPlan) -> list[Change]:
    """What differs between the space a search started with (its space.yaml) and the one given
    to --resume (file and --set): every fixed value and each searched key's distribution."""
    from vaetune.search._tuner import parent_params
    from vaetune.spec import load_space

    stored_file = results / SPACE_FILE
    if not stored_file.exists():  # a search started before space.yaml was kept: nothing to compare
        return []
    return changes_between(_described(parent_params(SearchPlan.of(load_space(stored_file)))),
                           _described(parent_params(plan)))


def _described(params: dict[str, Any]) -> dict[str, Any]:
    prefix = "search_space."
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in params.items()}


def _shown(value: Any) -> str:
    return "(not set)" if value is None else str(value)
