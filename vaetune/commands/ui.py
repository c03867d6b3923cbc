"""`vaetune ui`: MLflow's UI on 127.0.0.1 for vaetune's store, opening on the last search's trials.

A shortcut: `mlflow ui` in the same folder shows the same store (vaetune writes where MLflow
looks by default). This one also prints the address of the last search's saved view (its trials
by the search metric) and serves artifacts from where vaetune puts them.
"""

from __future__ import annotations

import argparse


def register(commands) -> None:
    what = "start the MLflow UI on 127.0.0.1, on the last search's trials"
    p = commands.add_parser("ui", help=what, description=what)
    p.add_argument("--uri", default=None, help="tracking URI (default: $MLFLOW_TRACKING_URI, "
                   "else MLflow's own default, ./mlflow.db)")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vaetune.commands._serve import check_port, serve
    from vaetune.errors import UserError
    from vaetune.tracking import (
        check_server,
        check_store,
        latest_search,
        resolve_uri,
        ui_command,
        view_url,
    )

    check_port(args.port)
    uri = resolve_uri(args.uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise UserError(f"{uri}: no MLflow store there yet; run a search first or pass --uri")
    check_server(uri, "--uri" if args.uri else "$MLFLOW_TRACKING_URI")
    check_store(uri, "--uri" if args.uri else "$MLFLOW_TRACKING_URI")
    base = f"http://127.0.0.1:{args.port}"
    latest = latest_search(uri)
    print(f"MLflow UI for {uri}")
    if latest is not None:
        experiment_id, search = latest
        print(f"  {view_url(base, experiment_id, search)}  (search {search}: its trials)")
    print(f"  {base}  (all experiments)\n(Ctrl-C stops it)", flush=True)
    cmd, env = ui_command(uri, args.port)
    return serve(cmd, env, "the MLflow UI")
