"""What a gallery opens on: a search's or sweep's trials ranked by its metric, or one checkpoint.

Checked before any server starts (`open_gallery`): a folder that is not a search, a sweep or a
checkpoint folder, and a file that is not a vaetune checkpoint, are a UserError naming the path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.fileio import is_remote
from vaetune.metrics.registry import get
from vaetune.ranking import describe, rank, ranked_trials
from vaetune.results import (
    CHECKPOINT,
    CHECKPOINT_DIR,
    EPOCH,
    EPOCHS,
    SEARCH_FILE,
    STATUS,
    SWEEP,
    TRIAL_ID,
    TRIAL_PATH,
    SearchResults,
    checkpoint_folders,
    load_results,
    short_keys,
    trial_label,
)

CHECKPOINT_TARGET = "checkpoint"  # Gallery.kind of a checkpoint file; else the results' kind
# the metrics the trial table shows at the report's main epoch, beside the search metric
TABLE_METRICS = ("val/mse", "val/kl", "val/active_units", "eval/fid_sample", "eval/fid_sample_gmm")


@dataclass(frozen=True)
class Entry:
    """One model the gallery can show: a trial of the search, or the checkpoint file."""

    key: str  # the trial id, or the file's name
    label: str  # what the picker says: `#1 3f2a β=0.01 z=4`
    checkpoint: str  # its checkpoint (a folder or file, local or remote): the one export takes
    trial_path: str = ""  # its Ray trial folder ("" for a checkpoint file)
    history: Any = field(default=None, compare=False)  # its per-epoch results (DataFrame); None: not on this machine


@dataclass
class Gallery:
    source: Path  # what `vaetune gallery` was given
    kind: str  # "search", "sweep" or "checkpoint"
    entries: list[Entry]  # the models to choose from, best first
    table: Any = None  # DataFrame: every trial, best first (None for a checkpoint)
    epoch: int | None = None  # the report's main table epoch, where the table's values are
    results: SearchResults | None = None
    notes: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # table column -> printf format of its values

    @property
    def title(self) -> str:
        if self.results is None:
            return f"checkpoint {self.source.name}"
        return f"{self.kind} {self.results.name}: {len(self.table)} trials"

    def entry(self, key: str) -> Entry:
        return next(e for e in self.entries if e.key == key)


def open_gallery(path: str | Path) -> Gallery:
    """The gallery of a search's or sweep's results folder, or of a checkpoint (a file, or a
    folder holding checkpoint.pt); a UserError naming the path otherwise."""
    from vaetune.checkpoint import CHECKPOINT_FILE, load_checkpoint

    path = Path(path)
    accepted = "give a search's or sweep's results folder (results/<name>) or a vaetune checkpoint (.pt)"
    if not path.exists():
        raise UserError(f"RESULTS|CHECKPOINT: {path}: no such file or folder; {accepted}")
    if path.is_dir() and (path / SEARCH_FILE).exists():
        return _search_gallery(load_results(path))
    if path.is_dir() and not (path / CHECKPOINT_FILE).exists():
        raise UserError(f"RESULTS|CHECKPOINT: {path}: not a search or sweep folder (no {SEARCH_FILE}) nor a "
                        f"checkpoint folder (no {CHECKPOINT_FILE}); {accepted}")
    try:
        load_checkpoint(path)  # a file that is not a vaetune checkpoint is refused here, in one line
    except UserError as err:
        raise UserError(f"RESULTS|CHECKPOINT: {err}; {accepted}") from None
    entry = Entry(key=path.stem if path.is_file() else path.name, label=path.name, checkpoint=str(path.resolve()))
    return Gallery(source=path, kind=CHECKPOINT_TARGET, entries=[entry])


def _search_gallery(results: SearchResults) -> Gallery:
    from vaetune.report import kl_table

    table = kl_table(results)
    ranked = _ranked(results)
    measured = table.trials.set_index(TRIAL_ID) if table.trials is not None else None
    entries, rows = [], []
    names = short_keys(results.searched)
    metrics = [m for m in dict.fromkeys((results.metric, *TABLE_METRICS))
               if measured is not None and m in measured and measured[m].notna().any()]
    for place, (_, row) in enumerate(ranked.iterrows(), start=1):
        tid = str(row[TRIAL_ID])
        tried = {k: row[k] for k in results.searched if k in row and _present(row[k])}
        label = f"#{place} {tid} {trial_label(tried)}".strip()
        checkpoint = str(row.get(CHECKPOINT, "") or "")
        if checkpoint:
            entries.append(Entry(key=tid, label=label, checkpoint=checkpoint,
                                 trial_path=str(row.get(TRIAL_PATH, "") or ""),
                                 history=results.histories.get(tid)))
        at = measured.loc[tid] if measured is not None and tid in measured.index else None
        rows.append({"rank": place, "trial": tid, **{names[k]: row.get(k) for k in results.searched},
                     "status": row.get(STATUS), "epochs": row.get(EPOCHS),
                     **{_header(m, table.epoch): (at[m] if at is not None else math.nan) for m in metrics}})
    if not entries:
        raise UserError(f"RESULTS: {results.folder}: no trial kept a checkpoint (see its summary.csv); "
                        "nothing to show")
    import pandas as pd

    kind = SWEEP if results.sweep is not None else "search"
    held = (f" among the trials that hold {describe(results.constraints)} (those that break them follow)"
            if results.constraints else "")
    notes = [f"Ranked by {results.metric} ({results.mode}), best over each trial's epochs{held}, as vaetune export "
             f"picks; the metrics are at epoch {table.epoch}, that of the report's main table (empty: not measured "
             "there)."]
    formats = {_header(m, table.epoch): get(m).fmt.replace("{:", "%").replace("}", "") for m in metrics}
    return Gallery(source=results.folder, kind=kind, entries=entries, table=pd.DataFrame(rows), epoch=table.epoch,
                   results=results, notes=notes, formats=formats)


def _header(metric: str, epoch: int) -> str:
    return f"{get(metric).label} @ {epoch}"


def _ranked(results: SearchResults):
    """Every trial: the candidates best first, as `vaetune export` ranks them (vaetune.ranking), then
    the trials that break search.constraints by value, then those without a value, in their order."""
    import pandas as pd

    candidates = ranked_trials(results.summary, results.metric, results.mode)
    rest = results.summary.drop(index=candidates.index)
    scored = rank(rest, results.best_column(), results.mode)
    return pd.concat([candidates, scored, rest.drop(index=scored.index)])


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def kept_checkpoints(entry: Entry) -> list[tuple[int | None, str]]:
    """(epoch, checkpoint folder) of each checkpoint a trial still keeps, oldest first; the epoch is
    None where the trial's history does not say it. A trial whose folder is not on this machine
    (remote storage) or a checkpoint file: its one checkpoint."""
    if not entry.trial_path or is_remote(entry.trial_path) or not Path(entry.trial_path).is_dir():
        return [(None, entry.checkpoint)]
    epochs = {}
    h = entry.history
    if h is not None and CHECKPOINT_DIR in h:
        for _, rec in h[h[CHECKPOINT_DIR].notna()].iterrows():
            epochs[str(rec[CHECKPOINT_DIR])] = int(rec[EPOCH])
    found = [(epochs.get(f.name), str(f)) for f in checkpoint_folders(entry.trial_path)]
    return found or [(None, entry.checkpoint)]


def export_bytes(gallery: Gallery, key: str) -> bytes:
    """The checkpoint file `vaetune export` writes, of the trial `key` of a search's gallery; its
    source says how it was chosen: by the search metric (the best trial, as export picks it) or by
    hand in the gallery."""
    from vaetune.export import checkpoint_bytes, exported_checkpoint

    results = gallery.results
    if results is None:
        raise UserError("export: a gallery of one checkpoint has no trials; download the file itself")
    summary = results.summary
    row = summary[summary[TRIAL_ID].astype(str) == key].iloc[0]
    how = f"{results.mode} {results.best_column()}"
    place = [e.key for e in gallery.entries].index(key) + 1
    selected_by = how if place == 1 else f"chosen in vaetune gallery (#{place} by {how})"
    return checkpoint_bytes(exported_checkpoint(results.state, row, selected_by))
