"""Nothing the user wrote is dropped or turned around in silence, and the small lines say what is
accepted: a mode against the metric registry's direction, points to evaluate that would never run,
keys nothing reads, a user's NAME.yaml beside a shipped space of that name, a name with non-ASCII
letters, a file name starting with '-', and `vaetune fid` given a results folder or vaetune's own
pictures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from vaetune.cli import main
from vaetune.metrics import registry
from vaetune.outputs import png_info
from vaetune.results import SEARCH_FILE
from vaetune.spec import SpecError, load_space
from vaetune.spec._shipped import shipped_spaces

GOOD = {
    "name": "demo",
    "data": {"source": "builtin:sprites", "image_size": 32, "count": 256},
    "model": {"arch": "conv", "latent_dim": {"choice": [4, 8, 16]}},
    "train": {"epochs": 2, "beta": {"loguniform": [0.001, 10]}},
    "search": {"num_samples": 4, "points_to_evaluate": [{"train.beta": 1.0, "model.latent_dim": 8}]},
}


def write(folder: Path, raw: dict, name: str = "space.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(raw))
    return path


def refusal(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(SpecError) as info:
        load_space(path, overrides or [])
    return str(info.value)


def test_a_mode_against_the_registry_s_direction_is_refused_unless_meant(tmp_path):
    assert registry.METRICS["val/psnr"].mode == "max"  # PSNR: higher is better
    path = write(tmp_path, GOOD)
    message = refusal(path, ["search.metric=val/psnr", "search.mode=min"])
    assert str(path) in message and "search.mode" in message
    assert "val/psnr is better higher (max)" in message and "min would rank its worst trial best" in message
    assert "search.mode_override: true" in message  # what to write to mean it
    meant = load_space(path, ["search.metric=val/psnr", "search.mode=min", "search.mode_override=true"])
    assert meant.default_config().search.mode == "min"
    # its own direction, or a descriptive metric (no better value), is taken as written
    assert load_space(path, ["search.metric=val/psnr", "search.mode=max"]).default_config().search.mode == "max"


def test_points_to_evaluate_beyond_the_trials_are_refused(tmp_path):
    raw = {**GOOD, "search": {"num_samples": 1, "points_to_evaluate": [{"train.beta": 1.0}, {"train.beta": 2.0}]}}
    message = refusal(write(tmp_path, raw))
    assert "search.num_samples" in message and "lists 2 points" in message
    assert "1 of them would never run" in message and "at least 2" in message
    raw["search"]["num_samples"] = 2
    assert len(load_space(write(tmp_path, raw)).default_config().search.points_to_evaluate) == 2


def test_keys_nothing_reads_are_named_with_what_would_read_them(tmp_path, caplog):
    raw = {**GOOD, "search": {**GOOD["search"], "scheduler": "fifo", "grace_period": 3}}
    space = load_space(write(tmp_path, raw))
    unused = space.unused()
    assert len(unused) == 1 and unused[0].startswith("search.grace_period (read only with search.scheduler: asha")
    assert "'fifo'" in unused[0]
    # the same key under ASHA is read: nothing said
    raw["search"]["scheduler"] = "asha"
    assert load_space(write(tmp_path, raw)).unused() == []


def test_a_users_file_of_a_shipped_space_s_name_runs_and_says_so(tmp_path, monkeypatch, caplog):
    assert "sprites" in shipped_spaces()
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {**GOOD, "name": "mine"}, name="sprites.yaml")
    caplog.set_level(logging.INFO, logger="vaetune.spec")
    space = load_space("sprites")
    assert space.default_config().name == "mine"  # the user's file, not the shipped one
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "./sprites.yaml, the file in the working folder" in said
    assert str(shipped_spaces()["sprites"]) in said  # where the shipped one is, to run that instead
    # a path always means the path; a name with no file of it here is the shipped space, said so
    (tmp_path / "sprites.yaml").unlink()
    caplog.clear()
    assert load_space("sprites").default_config().name != "mine"
    assert "the shipped space" in " ".join(r.getMessage() for r in caplog.records)


def test_a_name_with_non_ascii_letters_is_refused_naming_what_is_accepted(tmp_path):
    message = refusal(write(tmp_path, {**GOOD, "name": "pokémon"}))
    assert "ASCII letters A-Z and a-z" in message and "'é' is not one of them" in message


def test_a_dash_leading_file_name_is_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOOD, name="-space.yaml")
    with pytest.raises(SystemExit) as info:
        main(["search", "-space.yaml"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "-space.yaml starts with '-', so it was read as an option" in err and "write ./-space.yaml" in err


def _images(folder: Path, n: int, *, marked: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        img.save(folder / f"{i}.png", pnginfo=png_info() if marked else None)
    return folder


@pytest.mark.parametrize("kind", ["results folder", "folder in one", "marked pictures"])
def test_fid_refuses_a_results_folder_and_vaetune_s_pictures(tmp_path, capsys, kind):
    real = _images(tmp_path / "real", 4)
    if kind == "marked pictures":
        given = _images(tmp_path / "grids", 4, marked=True)
    else:
        results = _images(tmp_path / "results", 4)
        (results / SEARCH_FILE).write_text("{}")
        given = results if kind == "results folder" else _images(results / "trial_0" / "grids", 4)
    assert main(["fid", str(given), str(real)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    what = "is a picture vaetune drew" if kind == "marked pictures" else "a search's results folder"
    assert str(given) in err and what in err and "give a folder (or .zip) of images, one image a file" in err
