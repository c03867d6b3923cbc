"""The gallery's page seen from outside: the command that serves it on 127.0.0.1, the variable
that names what it shows, and where it keeps the pictures it showed (what tests read back)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = Path(__file__).with_name("_app.py")  # the page's Streamlit script
TARGET_ENV = "VAETUNE_GALLERY"  # the environment variable naming what the page shows
SHOWN = "gallery_shown"  # the page's session state: picture name -> the PNG (or GIF) it showed and offers

SERVER_OPTIONS = {
    "server.address": "127.0.0.1",
    "server.headless": "true",  # no browser opened, no e-mail prompt on a first run
    "server.fileWatcherType": "none",  # the page is an installed file: nothing to watch
    "browser.gatherUsageStats": "false",  # offline, and nothing sent anywhere
    "client.toolbarMode": "viewer",  # no developer menu (rerun on save, clear cache) for a user
    "client.showErrorDetails": "none",  # the page says its own errors in one line; never a traceback
}


def server_command(target: str | Path, port: int) -> tuple[list[str], dict[str, str]]:
    """(command, environment) that serve the gallery of `target` on 127.0.0.1:`port`."""
    options = [f"--{k}={v}" for k, v in {**SERVER_OPTIONS, "server.port": str(port)}.items()]
    env = {**os.environ, TARGET_ENV: str(Path(target).resolve())}
    return [sys.executable, "-m", "streamlit", "run", str(APP), *options], env
