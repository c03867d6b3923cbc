"""The last whole copy of Tune's experiment snapshot (vaetune.search._snapshot): a snapshot file
truncated by a full disk is put back from the copy before --resume, and a truncated snapshot
never replaces the copy. Files on disk, named as Ray Tune names them; the end-to-end case (a
tmpfs that fills mid-search, then --resume) is tests/test_faults.py."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from vaetune.errors import UserError
from vaetune.search._snapshot import SNAPSHOT_DIR, SnapshotKeeper, repair_snapshot, snapshot_files


def write_session(folder, session: str, trials: int) -> dict[str, bytes]:
    """The three files Tune rewrites each snapshot, for `session`; returns their bytes by name."""
    files = {
        f"experiment_state-{session}.json": json.dumps({"trial_data": [[f"t{i}", {}] for i in range(trials)]}).encode(),
        f"search_gen_state-{session}.json": pickle.dumps({"counter": trials}),  # a pickle, as Tune writes it
        f"searcher-state-{session}.pkl": pickle.dumps({"trials": list(range(trials))}),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


class Renamed:
    """A class to pickle, then rename in the pickle: as a class an upgrade removed."""


def touch_later(path) -> None:
    """Move the file's time on, as a rewrite does (coarse file-system clocks would hide it)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_snapshot_truncated_by_a_full_disk_is_put_back_from_the_kept_copy(tmp_path):
    good = write_session(tmp_path, "2026-01-01_10-00-00", trials=2)
    SnapshotKeeper(tmp_path).keep()
    state = tmp_path / "experiment_state-2026-01-01_10-00-00.json"
    state.write_bytes(b"")  # what a full disk left
    repair_snapshot(tmp_path, tmp_path)
    assert {p.name: p.read_bytes() for p in snapshot_files(tmp_path)} == good


def test_a_truncated_snapshot_never_replaces_the_kept_copy(tmp_path):
    keeper = SnapshotKeeper(tmp_path)
    good = write_session(tmp_path, "2026-01-01_10-00-00", trials=2)
    keeper.keep()
    state = tmp_path / "experiment_state-2026-01-01_10-00-00.json"
    state.write_bytes(json.dumps({"trial_data": [["t0", {}], ["t1", {}], ["t2", {}]]}).encode()[:20])
    touch_later(state)
    keeper.keep()
    kept = tmp_path / SNAPSHOT_DIR
    assert {p.name: p.read_bytes() for p in snapshot_files(kept)} == good
    # a later whole snapshot does replace it
    newer = write_session(tmp_path, "2026-01-01_10-00-00", trials=3)
    touch_later(state)
    keeper.keep()
    assert {p.name: p.read_bytes() for p in snapshot_files(kept)} == newer
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(SNAPSHOT_DIR)) == [SNAPSHOT_DIR]


def test_a_later_sessions_broken_files_give_way_to_the_earlier_kept_copy(tmp_path):
    good = write_session(tmp_path, "2026-01-01_10-00-00", trials=2)
    SnapshotKeeper(tmp_path).keep()
    write_session(tmp_path, "2026-01-02_09-00-00", trials=3)
    (tmp_path / "searcher-state-2026-01-02_09-00-00.pkl").write_bytes(b"\x80\x04\x95")  # cut short
    repair_snapshot(tmp_path, tmp_path)
    assert {p.name: p.read_bytes() for p in snapshot_files(tmp_path)} == good


def test_a_whole_snapshot_is_left_alone(tmp_path):
    write_session(tmp_path, "2026-01-01_10-00-00", trials=2)
    SnapshotKeeper(tmp_path).keep()
    newer = write_session(tmp_path, "2026-01-01_10-00-00", trials=5)  # newer than the copy, and whole
    repair_snapshot(tmp_path, tmp_path)
    assert {p.name: p.read_bytes() for p in snapshot_files(tmp_path)} == newer


def test_a_broken_snapshot_without_a_copy_is_refused_in_one_line(tmp_path):
    write_session(tmp_path, "2026-01-01_10-00-00", trials=2)
    (tmp_path / "experiment_state-2026-01-01_10-00-00.json").write_bytes(b"")
    results = tmp_path / "results" / "f"
    with pytest.raises(UserError) as raised:
        repair_snapshot(tmp_path, results)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{results}: --resume cannot continue this search")
    assert "experiment_state-2026-01-01_10-00-00.json" in message
    assert "search_gen_state" not in message  # only what is broken is named


def test_a_pickle_naming_a_class_that_is_gone_is_not_taken_for_a_cut_file(tmp_path):
    """Its bytes are whole: Tune's restore names the class (one line, tests/test_search.py), and
    neither a kept copy nor a "disk filled" refusal stands in for it."""
    write_session(tmp_path, "2026-01-01_10-00-00", trials=2)
    SnapshotKeeper(tmp_path).keep()
    searcher = tmp_path / "searcher-state-2026-01-01_10-00-00.pkl"
    upgraded = pickle.dumps({"sampler": Renamed()}).replace(b"Renamed", b"Renamex")
    with pytest.raises(AttributeError):
        pickle.loads(upgraded)
    searcher.write_bytes(upgraded)
    repair_snapshot(tmp_path, tmp_path)
    assert searcher.read_bytes() == upgraded
    (tmp_path / SNAPSHOT_DIR / searcher.name).unlink()  # and with no copy at all: no refusal either
    repair_snapshot(tmp_path, tmp_path)
    assert searcher.read_bytes() == upgraded
