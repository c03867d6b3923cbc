"""`vaetune ui`: the MLflow UI on 127.0.0.1 for the store vaetune's searches write to."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for vaetune's store",
                            description="Serve the MLflow UI on 127.0.0.1 for the store vaetune's searches use.")
    p.add_argument("--uri", default=None, help="tracking URI (default: the same store searches use)")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import subprocess
    import sys
    from pathlib import Path

    from vaetune.errors import UserError
    from vaetune.tracking import default_artifact_root, resolve_uri

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
