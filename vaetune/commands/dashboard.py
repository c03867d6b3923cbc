"""`vaetune dashboard RESULTS`: Optuna Dashboard on 127.0.0.1 for a search's Optuna study.

The study (`RESULTS/optuna.db`, named after the search) holds every trial as the sampler saw it:
pruned trials with their intermediate values, so the dashboard's history, parameter
importances, intermediate-value and parallel-coordinate plots show the search as Optuna ran it.
Optuna Dashboard is an optional extra: `pip install 'vaetune[dashboard]'`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands) -> None:
    what = "start Optuna Dashboard on 127.0.0.1 for a search's study"
    p = commands.add_parser("dashboard", help=what, description=what)
    p.add_argument("results", help="results/<name> folder of a search (finished or running)")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(run=run)


def open_dashboard(results: Path, port: int):
    """A WSGI server of Optuna Dashboard for the study of the search in `results`, listening on
    127.0.0.1:`port` (not yet serving), and the address of the study's page.

    Args:
        results: the search's results folder.
        port: the port to listen on.
    """
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from vaetune.commands._serve import check_port
    from vaetune.errors import UserError
    from vaetune.results import OPTUNA_FILE, SEARCH_FILE, optuna_url, read_json

    if not (results / SEARCH_FILE).exists():
        raise UserError(f"{results}: not a vaetune search folder (no {SEARCH_FILE}); "
                        "pass results/<name>")
    if not (results / OPTUNA_FILE).exists():
        raise UserError(f"{results}: the search has no Optuna study ({OPTUNA_FILE}) yet; it is "
                        "created when the search starts its first trial")
    try:
        import optuna
        import optuna_dashboard
    except ImportError:
        raise UserError("vaetune dashboard needs Optuna Dashboard: "
                        "pip install 'vaetune[dashboard]'") from None
    check_port(port)
    name = read_json(results / SEARCH_FILE)["name"]
    storage = optuna.storages.RDBStorage(optuna_url(results))
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        raise UserError(f"{results / OPTUNA_FILE}: no study named {name!r} in it") from None

    class Server(ThreadingMixIn, WSGIServer):  # a page loads its data in parallel requests
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:  # not a line per request on the console
            pass

    try:
        server = make_server("127.0.0.1", port, optuna_dashboard.wsgi(storage), server_class=Server,
                             handler_class=QuietHandler)
    except OSError:  # taken between the check and now: the check says why
        check_port(port)
        raise
    return server, f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"


def run(args: argparse.Namespace) -> int:
    server, url = open_dashboard(Path(args.results), args.port)
    print(f"Optuna Dashboard for {Path(args.results).resolve()}\n  {url}\n(Ctrl-C stops it)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
