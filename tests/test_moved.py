"""Where a search folder's recorded paths are read after it was moved: `move_of` and `Move`, on
search.json files written here by hand (the paths below are worked out from them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaetune.results import Move, move_of


def _search(folder: Path, recorded: str, storage: str, name: str = "seq") -> Path:
    folder.mkdir(parents=True)
    (folder / "search.json").write_text(json.dumps({"name": name, "storage": storage, "experiment_path": recorded}))
    return folder


def test_a_project_moved_with_its_relative_storage_moves_every_path_under_it(tmp_path):
    # ran as /old/proj with storage "results": the experiment was /old/proj/results/seq
    move = move_of(_search(tmp_path / "new" / "proj" / "results" / "seq", "/old/proj/results/seq", "results"))
    assert move == Move("/old/proj", str(tmp_path / "new" / "proj"))
    assert move.path("/old/proj/.vaetune_cache") == f"{tmp_path}/new/proj/.vaetune_cache"
    assert move.uri("sqlite:////old/proj/mlflow.db") == f"sqlite:///{tmp_path}/new/proj/mlflow.db"
    assert move.path("/old/project2/x") == "/old/project2/x"  # a sibling whose name starts alike: not under it
    assert move.path("/data/images") == "/data/images"  # the user's data elsewhere stays where it is
    assert move.uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_a_search_folder_moved_alone_moves_only_its_own_paths(tmp_path):
    # an absolute storage (/srv/runs): nothing says where the project was, so only the search folder moves
    move = move_of(_search(tmp_path / "kept" / "seq", "/srv/runs/seq", "/srv/runs"))
    assert move == Move("/srv/runs/seq", str(tmp_path / "kept" / "seq"))
    assert move.path("/srv/runs/seq/run_trial_1/checkpoint_000002") == f"{tmp_path}/kept/seq/run_trial_1/checkpoint_000002"
    assert move.path("/srv/runs/mlflow.db") == "/srv/runs/mlflow.db"
    # relative storage, but the folder now sits under another storage name: the search folder alone
    move = move_of(_search(tmp_path / "archive" / "seq", "/old/proj/results/seq", "results"))
    assert move == Move("/old/proj/results/seq", str(tmp_path / "archive" / "seq"))


@pytest.mark.parametrize(("recorded", "storage"), [("", "results"), ("s3://bucket/results/seq", "s3://bucket/results")])
def test_no_move_without_a_recorded_local_experiment(tmp_path, recorded, storage):
    assert move_of(_search(tmp_path / "results" / "seq", recorded, storage)) is None


def test_no_move_where_the_search_ran(tmp_path):
    folder = tmp_path / "results" / "seq"
    assert move_of(_search(folder, str(folder), "results")) is None
    assert move_of(tmp_path / "nothing_here") is None
