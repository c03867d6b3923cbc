"""`vaetune ui`: the MLflow UI on 127.0.0.1 for the store vaetune's searches write to."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for vaetune's store",
                            description="Serve the MLflow UI on 127.0.0.1 for the store vaetune's searches use.")
    p.add_argument("--uri", default=None, help="tracking URI (default: the same store searches use)")
    p.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (1-65535, free)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from vaetune.errors import Failure, UserError
    from vaetune.tracking import default_artifact_root, resolve_uri

    if not 0 < args.port < 65536:
        raise UserError(f"--port: got {args.port}; give a port in 1-65535")
    uri = resolve_uri(args.uri)
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise UserError(f"{uri}: no MLflow store there yet; run a search first or pass --uri")
    with socket.socket() as sock:  # mlflow's server would fail after a long start, its reason buried in its log
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is free
        try:
            sock.bind(("127.0.0.1", args.port))
        except OSError as exc:
            raise UserError(f"--port: 127.0.0.1:{args.port} is not free ({exc.strerror}); pick another with "
                            "--port") from None
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    root = default_artifact_root(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    print(f"MLflow UI for {uri}\n  http://127.0.0.1:{args.port}\n(Ctrl-C stops it)", flush=True)
    try:
        code = subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
    if code not in (0, -2, 130):  # not a Ctrl-C (mlflow printed its reason above)
        raise Failure(f"the MLflow UI exited with code {code}")
    return 0
