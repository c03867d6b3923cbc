"""Reading and writing the results folder's files, and finding the checkpoint folders of its trials."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from vaetune.checkpoint import CHECKPOINT_FILE, GRIDS_DIR
from vaetune.errors import UserError
from vaetune.fileio import atomic_write_text, is_remote
from vaetune.results._layout import (
    CHECKPOINT,
    CHECKPOINT_DIR,
    CHECKPOINT_FOLDERS,
    EPOCH,
    ERRORED,
    RESULT_FILE,
    SEARCH_FILE,
    STATUS,
    SUMMARY_FILE,
    TEXT_COLUMNS,
    TRACKING_FILE,
    TRIAL_ID,
    TRIAL_PATH,
)
from vaetune.results._lock import refuse_if_held
from vaetune.results._moved import move_of

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (TRIAL_ID, STATUS)  # in every summary.csv vaetune writes, whatever became of the trials


# ---------------------------------------------------------------------------------------------
# Reading and writing the folder's files


def read_json(path: Path) -> dict:
    """A JSON object vaetune wrote ({} when the file is missing); a damaged one is a UserError naming it."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise damaged(path, f"not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise damaged(path, f"a JSON {type(data).__name__}, where vaetune writes an object")
    return data


def damaged(path: Path, why: str, space_file: str | None = None) -> UserError:
    """The one line for a file of a results folder that was edited, truncated or emptied by hand."""
    fix = {SUMMARY_FILE: "restore it from a copy, or rebuild it from the trials' own results with "
                         f"`vaetune search {space_file or 'SPACE'} --resume`",
           SEARCH_FILE: "restore it from a copy (it is written once, when the search starts), or run the "
                        "search again under a new name"}.get(path.name, "restore it from a copy")
    return UserError(f"{path}: damaged: {why}; {fix}")


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, default=str))


def read_tracking(folder: str | Path) -> dict:
    """tracking.json ({} when the search logged nothing to MLflow); its sqlite store read where it
    is now when the folder moved with it (`move_of`)."""
    state = read_json(Path(folder) / TRACKING_FILE)
    move = move_of(folder)
    if move is not None and isinstance(state.get("uri"), str):
        state["uri"] = move.uri(state["uri"])
    return state


def write_tracking(folder: str | Path, state: dict) -> None:
    write_json(Path(folder) / TRACKING_FILE, state)


def write_summary(folder: str | Path, rows: list[dict[str, Any]]) -> Path | None:
    """summary.csv from one dict per trial; None (and nothing written) when there are no rows."""
    import pandas as pd

    if not rows:
        return None
    path = Path(folder) / SUMMARY_FILE
    atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
    return path


def read_summary(folder: str | Path, space_file: str | None = None):
    """summary.csv as a DataFrame: text columns as strings ("" when empty), the trials' folders and
    checkpoints where they are now when the folder moved (`move_of`); a damaged one is a UserError
    (`space_file`, the space the search ran, goes into its fix)."""
    import pandas as pd

    path = Path(folder) / SUMMARY_FILE
    try:
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise damaged(path, f"not a readable table ({' '.join(str(exc).split())[:120]})", space_file) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame]
    if not missing and CHECKPOINT not in frame and (frame[STATUS] != ERRORED).any():
        missing = [CHECKPOINT]  # written with every trial that ran
    if missing:
        raise damaged(path, f"it lacks the column{'s' * (len(missing) > 1)} {', '.join(missing)}", space_file)
    for col in TEXT_COLUMNS:
        if col in frame:
            frame[col] = frame[col].fillna("")
    move = move_of(folder)
    for col in (CHECKPOINT, TRIAL_PATH) if move is not None else ():
        if col in frame:
            frame[col] = frame[col].map(move.path)
    return frame


def load_search(folder: str | Path) -> tuple[dict, Any]:
    """search.json and summary.csv of a search folder; a UserError naming what is missing."""
    folder = Path(folder)
    refuse_if_held(folder, "a search")  # its files are being written
    if not (folder / SEARCH_FILE).exists():
        raise UserError(f"{folder}: not a vaetune search folder (no {SEARCH_FILE}); pass results/<name>")
    if not (folder / SUMMARY_FILE).exists():
        raise UserError(f"{folder}: the search has no {SUMMARY_FILE} yet; finish it with vaetune search --resume")
    state = read_json(folder / SEARCH_FILE)
    missing = [k for k in ("name", "metric", "mode") if not state.get(k)]
    if missing:
        raise damaged(folder / SEARCH_FILE, f"it lacks {', '.join(missing)}")
    return state, read_summary(folder, state.get("space_file"))


def read_history(trial_path: str):
    """A trial's metrics per epoch from its Ray `result.json` (one JSON object per line), with the
    folder name of the checkpoint reported at that epoch (CHECKPOINT_DIR, None without one).

    A restored trial may report an epoch twice; the later report wins. Remote trial folders
    (s3://...) and trials without results give None.
    """
    import pandas as pd

    if not trial_path or is_remote(trial_path):
        return None
    path = Path(trial_path) / RESULT_FILE
    if not path.exists():
        return None
    records = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        records.append({k: v for k, v in rec.items() if _is_number(v) or (k == CHECKPOINT_DIR and v)})
    if not records:
        return None
    frame = pd.DataFrame(records)
    if EPOCH not in frame:
        return None
    return frame.drop_duplicates(EPOCH, keep="last").sort_values(EPOCH).reset_index(drop=True)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------------------------
# Checkpoint folders of a trial


def checkpoint_file(folder: str | Path) -> Path:
    """The checkpoint file inside a trial checkpoint folder."""
    return Path(folder) / CHECKPOINT_FILE


def checkpoint_at(trial_path: str, history, epoch: int) -> str:
    """The local checkpoint folder a trial reported at `epoch` (from its history), or "" when it
    reported none there or Tune has since deleted it."""
    if history is None or CHECKPOINT_DIR not in history or not trial_path or is_remote(trial_path):
        return ""
    names = history.loc[history[EPOCH] == epoch, CHECKPOINT_DIR].dropna()
    if names.empty:
        return ""
    folder = Path(trial_path) / str(names.iloc[-1])
    return str(folder) if checkpoint_file(folder).exists() else ""


def checkpoint_folders(folder: str | Path) -> list[Path]:
    """The checkpoint folders holding a checkpoint file in a local Ray trial folder or a `vaetune
    train --out` folder, oldest first (both name them so that they sort in epoch order)."""
    return sorted(p.parent for p in Path(folder).glob(f"{CHECKPOINT_FOLDERS}/{CHECKPOINT_FILE}"))


def latest_checkpoint_of(trial_path: str) -> str:
    """A local trial folder's newest checkpoint folder (Tune never deletes a trial's latest), or ""."""
    if not trial_path or is_remote(trial_path):
        return ""
    found = checkpoint_folders(trial_path)
    return str(found[-1]) if found else ""


def last_grids(checkpoint: str) -> dict[str, bytes]:
    """The last reconstruction and sample grids training saved in a local checkpoint folder."""
    if not checkpoint or is_remote(checkpoint):
        return {}
    folder = Path(checkpoint)
    folder = folder.parent if folder.is_file() else folder
    out = {}
    for kind in ("recon", "samples"):
        found = sorted((folder / GRIDS_DIR).glob(f"{kind}_epoch*.png"))
        if found:
            out[kind] = found[-1].read_bytes()
    return out


