"""A search folder read where it is now, after it was moved or copied since the search ran.

A search records absolute paths: search.json its experiment folder, summary.csv each trial's
folder and checkpoint, tracking.json an MLflow sqlite file. When the folder (alone, or with the
project whose relative `search.storage` held it) now lives elsewhere, those paths are read under
the new place: export and report open the files that moved with it, never the old place (which
may be gone, or be someone else's).
`vaetune search --resume` refuses a moved folder: Ray Tune's saved experiment (its searcher, the
MLflow callback) names the old place and would write there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePath

from vaetune.fileio import is_remote
from vaetune.results._layout import SEARCH_FILE

SQLITE = "sqlite:///"


@dataclass(frozen=True)
class Move:
    """Paths under `old` (the project, or the search folder alone) now live under `new`."""

    old: str
    new: str

    def path(self, path: str) -> str:
        if path == self.old or path.startswith(self.old.rstrip("/") + "/"):
            return self.new + path[len(self.old):]
        return path

    def uri(self, uri: str) -> str:
        """A tracking URI: a sqlite file under `old` moves; a server or another file does not."""
        return SQLITE + self.path(uri[len(SQLITE):]) if uri.startswith(SQLITE) else uri


def move_of(folder: str | Path) -> Move | None:
    """How the search folder `folder` moved since its search started; None when it is where the
    search ran it, when its trials are on remote storage, or when search.json does not say."""
    folder = Path(folder).resolve()
    try:
        state = json.loads((folder / SEARCH_FILE).read_text())
    except (OSError, UnicodeDecodeError, ValueError):  # missing or damaged: its reader says so
        return None
    if not isinstance(state, dict):
        return None
    recorded, storage, name = state.get("experiment_path"), state.get("storage"), state.get("name")
    if not isinstance(recorded, str) or not recorded or is_remote(recorded) or recorded == str(folder):
        return None
    old, new = PurePath(recorded), PurePath(folder)
    if isinstance(storage, str) and isinstance(name, str) and not is_remote(storage) and not PurePath(storage).is_absolute():
        tail = PurePath(storage, name).parts  # the project held the storage folder: it moved with it
        if (".." not in tail and old.parts[-len(tail):] == tail and new.parts[-len(tail):] == tail
                and min(len(old.parts), len(new.parts)) > len(tail) + 1):  # a project, not the root folder
            return Move(str(PurePath(*old.parts[:-len(tail)])), str(PurePath(*new.parts[:-len(tail)])))
    return Move(recorded, str(folder))
