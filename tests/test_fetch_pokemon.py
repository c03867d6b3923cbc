"""`vaetune data fetch pokemon` from a local dataset saved with `datasets` (offline)."""

from __future__ import annotations

import io
import json

import datasets
import pytest
from PIL import Image

from vaetune.errors import UserError
from vaetune.fetch import fetch_pokemon


def png(mode: str, color) -> dict:
    buf = io.BytesIO()
    Image.new(mode, (40, 40), color).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


@pytest.fixture
def saved_dataset(tmp_path):
    ds = datasets.Dataset.from_dict({
        "image": [png("RGBA", (255, 0, 0, 0)), png("RGB", (0, 255, 0)), png("RGBA", (0, 0, 255, 128)),
                  png("RGB", (9, 9, 9))],
        "text": ["a red one", "a green one", "a blue one", "a dark one"],
    }).cast_column("image", datasets.Image())
    path = tmp_path / "pokemon_saved"
    ds.save_to_disk(str(path))
    return path


def test_fetch_pokemon_local(saved_dataset, tmp_path):
    out = tmp_path / "pokemon"
    report = fetch_pokemon(out, dataset=str(saved_dataset), limit=3, progress=False)
    assert report.ok and report.downloaded == 3
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
    with Image.open(out / "00000.png") as im:
        assert im.mode == "RGBA" and im.getpixel((0, 0)) == (255, 0, 0, 0)  # transparency kept
    with Image.open(out / "00001.png") as im:
        assert im.mode == "RGB"
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["count"] == 3 and meta["image_column"] == "image"
    assert meta["files"][2] == {"file": "00002.png", "text": "a blue one"}

    again = fetch_pokemon(out, dataset=str(saved_dataset), progress=False)
    assert again.skipped == 3 and again.downloaded == 1


def test_fetch_pokemon_dataset_dict_and_errors(saved_dataset, tmp_path):
    ds = datasets.load_from_disk(str(saved_dataset))
    dd_path = tmp_path / "dd"
    datasets.DatasetDict({"train": ds}).save_to_disk(str(dd_path))
    assert fetch_pokemon(tmp_path / "o", dataset=str(dd_path), progress=False).downloaded == 4

    text_only = tmp_path / "text_only"
    datasets.Dataset.from_dict({"text": ["x"]}).save_to_disk(str(text_only))
    with pytest.raises(UserError, match="no image column"):
        fetch_pokemon(tmp_path / "t", dataset=str(text_only))
    with pytest.raises(UserError, match="not an image column"):
        fetch_pokemon(tmp_path / "t", dataset=str(saved_dataset), image_column="text")


def test_a_decompression_bomb_row_is_refused_from_its_header(tmp_path):
    """A row whose PNG declares 10000 x 10000 pixels (past Pillow's limit, under twice it, where Pillow
    only warns and would decode 300 MB) is listed as failed, not decoded; the other rows are kept."""
    from test_data_untrusted import PILLOW_LIMIT, bomb_png

    ds = datasets.Dataset.from_dict({
        "image": [png("RGB", (0, 255, 0)), {"bytes": bomb_png(10_000, 10_000), "path": None}],
    }).cast_column("image", datasets.Image())
    path = tmp_path / "saved"
    ds.save_to_disk(str(path))
    report = fetch_pokemon(tmp_path / "out", dataset=str(path), progress=False)
    assert report.downloaded == 1
    assert dict(report.failed) == {"00001.png": f"row 1: too large: 10000x10000 is 100,000,000 pixels, over the "
                                                f"limit of {PILLOW_LIMIT:,} (PIL.Image.MAX_IMAGE_PIXELS, Pillow's "
                                                "decompression-bomb guard); not decoded"}
    assert not (tmp_path / "out" / "00001.png").exists()
