"""The last whole copy of Ray Tune's experiment snapshot, so that a disk that fills while Tune
rewrites it cannot cost the search its --resume.

Tune rewrites three files of the experiment folder in place every few seconds: its trial list
(experiment_state-SESSION.json), the search generator's state (search_gen_state-SESSION.json) and
the searcher's (searcher-state-SESSION.pkl). A full disk truncates whichever is being written (an
empty experiment_state was seen), and Tune then cannot restore the experiment at all. While a
search runs on local storage, `SnapshotKeeper` copies each snapshot that reads back whole into
SNAPSHOT_DIR of the experiment folder, the copy replacing the previous one only once it is
complete; before --resume, `repair_snapshot` puts that copy back in place of files that no longer
read back. Trials that moved on after the copy are the ones Tune's own snapshot period already
loses on a killed driver (vaetune.tracking closes and replaces them).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path

from ray.tune import Callback

from vaetune.errors import UserError

log = logging.getLogger(__name__)

SNAPSHOT_DIR = ".snapshot"  # the last whole snapshot, inside the experiment folder
PATTERNS = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl")


def _newest(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern))
    return found[-1] if found else None


def _whole(path: Path) -> bool:
    """The file reads back: the trial list as JSON, the other two as pickles (search_gen_state's
    .json holds a pickle). A pickle naming a class this vaetune no longer has is whole: its bytes
    are all there, and Tune's restore names the class (vaetune.search._run's refusal)."""
    try:
        data = path.read_bytes()
        if path.name.startswith("experiment_state-"):
            json.loads(data)
        else:
            pickle.loads(data)
    except (AttributeError, ImportError):  # a class it names is gone: written whole by another vaetune
        return True
    except Exception:  # empty, or cut short
        return False
    return True


def snapshot_files(folder: Path) -> list[Path]:
    """The newest session's snapshot files in `folder` (those that exist)."""
    return [p for p in (_newest(folder, pattern) for pattern in PATTERNS) if p is not None]


class SnapshotKeeper(Callback):
    """Copies Tune's experiment snapshot into SNAPSHOT_DIR each time it changes and reads back whole."""

    def __init__(self, experiment: str | Path):
        self.folder = Path(experiment)
        self.seen: tuple | None = None

    def on_step_end(self, iteration, trials, **info):  # right after the step's snapshot, if it made one
        self.keep()

    def on_experiment_end(self, trials, **info):
        self.keep()

    def keep(self) -> None:
        files = snapshot_files(self.folder)
        try:
            stamp = tuple((p.name, st.st_mtime_ns, st.st_size) for p, st in ((p, p.stat()) for p in files))
        except OSError:  # rewritten while looked at: the next step sees it
            return
        if not files or stamp == self.seen or not all(_whole(p) for p in files):
            return
        new, kept, old = (self.folder / f"{SNAPSHOT_DIR}{tail}" for tail in (".new", "", ".old"))
        shutil.rmtree(new, ignore_errors=True)
        try:
            new.mkdir()
            for path in files:
                shutil.copy2(path, new / path.name)
        except OSError:  # a full disk: the previous copy stays
            shutil.rmtree(new, ignore_errors=True)
            return
        shutil.rmtree(old, ignore_errors=True)
        if kept.exists():
            os.replace(kept, old)
        os.replace(new, kept)
        shutil.rmtree(old, ignore_errors=True)
        self.seen = stamp


def repair_snapshot(experiment: str | Path, results: Path) -> None:
    """Put the kept copy back where the newest snapshot files no longer read back whole; with
    no whole copy to put back, a UserError: the search cannot continue, its trials stay readable."""
    folder = Path(experiment)
    broken = [p for p in snapshot_files(folder) if not _whole(p)]
    if not broken:
        return
    for name in ("", ".old"):  # .old: the keeper stopped between its two renames
        kept = folder / f"{SNAPSHOT_DIR}{name}"
        copies = snapshot_files(kept) if kept.is_dir() else []
        if copies and all(_whole(p) for p in copies):
            for path in snapshot_files(folder):  # a newer session's files would shadow the copy's
                path.unlink()
            for path in copies:
                shutil.copy2(path, folder / path.name)
            log.warning("Ray Tune's saved state (%s) did not read back (a disk that filled while it was written); "
                        "the search continues from its last whole copy", ", ".join(p.name for p in broken))
            return
    names = ", ".join(p.name for p in broken)
    raise UserError(f"{results}: --resume cannot continue this search: Ray Tune's saved state ({names}) does not "
                    "read back (a disk that filled while it was written) and no whole copy of it is kept; its "
                    f"finished trials stay readable (vaetune report, vaetune export {results}); to search on, start "
                    "a new search with another name (--set name=NEW)")
