"""`vaetune ui`: the MLflow UI for vaetune's own store, on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from mlflow.tracking import MlflowClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_serves_the_default_store_on_localhost(tmp_path):
    store = tmp_path / "mlruns"
    store.mkdir()
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    exp = client.create_experiment("demo-search")
    client.create_run(exp, run_name="parent")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "vaetune.cli", "ui", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline() + proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first and "mlflow.db" in first
        deadline = time.time() + 180
        while True:  # the UI's own REST API answers with the store's experiments
            try:
                body = urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=demo-search",
                    timeout=5).read().decode()
                break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, "the UI did not start"
                time.sleep(1)
        assert '"name": "demo-search"' in body or '"name":"demo-search"' in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_ui_without_a_store_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "vaetune.cli", "ui"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "no MLflow store there yet" in proc.stderr and "Traceback" not in proc.stderr
