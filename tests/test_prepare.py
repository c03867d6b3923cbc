"""`vaetune data prepare` on small synthetic copies of the three Kaggle layouts (real image
files, real metadata files, one corrupt image each): output tree, labels, held-out split,
skipped list and manifest."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from vaetune.cli import main
from vaetune.errors import UserError
from vaetune.fetch import held_out_dir, prepare


def image(path: Path, size=(64, 64), mode="RGB", color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fill = (*color, 0 if mode == "RGBA" else 255)[: len(mode)] if mode != "RGB" else color
    Image.new(mode, size, fill).save(path)


def corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00not really a png" * 4)


def tree(root: Path) -> dict[str, list[str]]:
    """label folder -> sorted file names."""
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(root.iterdir()) if d.is_dir()}


def skipped(out: Path) -> dict[str, str]:
    lines = (out / "skipped.txt").read_text().splitlines()[1:]
    return dict(line.split("\t", 1) for line in lines)


# --------------------------------------------------------------------------------------------
# villagers


VILLAGERS = {"Cat": ["Ankha", "Bob", "Kid Cat", "Lolly", "Punchy", "Raymond"],
             "Dog": ["Bea", "Benjamin", "Cherry", "Goldie", "Mac"],
             "Frog": ["Camofrog", "Cousteau", "Diva", "Raddle"]}


@pytest.fixture
def villagers_download(tmp_path) -> Path:
    root = tmp_path / "animal-crossing"
    rows = []
    for species, names in VILLAGERS.items():
        for i, name in enumerate(names):
            filename = f"{species[:3].lower()}{i:02d}"
            rows.append({"Name": name, "Species": species, "Gender": "Male", "Personality": "Lazy",
                         "Filename": filename, "Unique Entry ID": f"id{len(rows)}"})
            # half the images are named by file name, half by villager name, as mirrors differ
            stem = filename if i % 2 else name
            image(root / "images" / f"{stem}.png", mode="RGBA", color=(i * 30, 100, 50))
    rows.append({"Name": "Ghost", "Species": "Cat", "Gender": "Male", "Personality": "Lazy",
                 "Filename": "cat99", "Unique Entry ID": "nofile"})  # a row without an image
    corrupt(root / "images" / "Camofrog.png")  # overwrite one frog with a broken file
    image(root / "images" / "Stranger.png")  # an image without a row
    with open(root / "villagers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "accessories.csv").write_text("Name,Variation\nBandana,Red\n")
    return root


def test_villagers(villagers_download, tmp_path):
    out = tmp_path / "data" / "villagers"
    report = prepare("villagers", villagers_download, out, test_fraction=0.2, seed=0, progress=False)

    test_out = tmp_path / "data" / "villagers_test"
    assert report.test_out == test_out == held_out_dir(out)
    train, test = tree(out), tree(test_out)
    assert set(train) == set(test) == {"Cat", "Dog", "Frog"}
    # round(6 * .2) = 1, round(5 * .2) = 1, round(4 * .2) = 1 held out; the broken frog is skipped
    assert {k: len(v) for k, v in test.items()} == {"Cat": 1, "Dog": 1, "Frog": 1}
    assert {k: len(v) for k, v in train.items()} == {"Cat": 5, "Dog": 4, "Frog": 2}
    assert not set(sum(train.values(), [])) & set(sum(test.values(), []))
    assert "Ankha.png" in train["Cat"] + test["Cat"] and "cat01.png" in train["Cat"] + test["Cat"]

    with Image.open(next((out / "Cat").iterdir())) as im:
        assert im.mode == "RGBA"  # bytes copied as they were

    reasons = skipped(out)
    assert set(reasons) == {"images/Camofrog.png", "images/Stranger.png"}
    assert "not a decodable image" in reasons["images/Camofrog.png"]
    assert "no row" in reasons["images/Stranger.png"]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == {"Cat": {"train": 5, "test": 1}, "Dog": {"train": 4, "test": 1},
                                  "Frog": {"train": 2, "test": 1}}
    assert manifest["skipped"] == 2 and manifest["metadata"] == "villagers.csv"
    assert manifest["rows_without_image"] == 1
    assert (test_out / "manifest.json").exists() and not list(tmp_path.glob("data/*.partial"))


def test_villagers_from_zip_same_result_and_rerun(villagers_download, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "download"), "zip", villagers_download.parent,
                                  villagers_download.name)
    a, b = tmp_path / "a" / "villagers", tmp_path / "b" / "villagers"
    prepare("villagers", villagers_download, a, test_fraction=0.2, seed=3, progress=False)
    prepare("villagers", archive, b, test_fraction=0.2, seed=3, progress=False)
    assert tree(a) == tree(b) and tree(held_out_dir(a)) == tree(held_out_dir(b))

    # a second prepare replaces its own output; a different seed holds out other images
    prepare("villagers", archive, b, test_fraction=0.2, seed=4, progress=False)
    assert tree(b) != tree(a)
    assert sum(len(v) for v in tree(b).values()) == sum(len(v) for v in tree(a).values())


def test_a_zip_entry_inflating_past_the_limit_is_skipped_unread(villagers_download, tmp_path, monkeypatch):
    """An entry whose size in the zip's directory is past the largest image's raw pixels (8 bytes a
    pixel of Pillow's limit, lowered here to 1 Mi pixels: 8 MiB) is skipped, never inflated."""
    import zipfile

    from test_data_untrusted import traced_peak

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1 << 20)
    (villagers_download / "images" / "Ankha.png").unlink()  # its place in the zip: the bomb
    archive = Path(shutil.make_archive(str(tmp_path / "download"), "zip", villagers_download.parent,
                                       villagers_download.name))
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("animal-crossing/images/Ankha.png", bytes(64 << 20))  # 64 MiB of zeros
    assert archive.stat().st_size < 4 << 20
    out = tmp_path / "data" / "villagers"
    _, peak = traced_peak(lambda: prepare("villagers", archive, out, test_fraction=0.2, seed=0, progress=False))
    reasons = skipped(out)
    assert reasons["animal-crossing/images/Ankha.png"] == (f"too large: {64 << 20:,} bytes by the zip's directory, over the limit of "
                                         f"{8 << 20:,} (the raw pixels of the largest image allowed); not read")
    assert "Ankha.png" not in sum(tree(out).values(), []) + sum(tree(held_out_dir(out)).values(), [])
    assert peak < 48 << 20


def test_villagers_json_metadata(tmp_path):
    root = tmp_path / "dl"
    for name in ("Bob", "Bea", "Mr. Resetti"):
        image(root / "pics" / f"{name}.png", mode="RGBA")
    (root / "villagers.json").write_text(json.dumps({"Bob": "Cat", "Bea": "Dog", "Mr. Resetti": "Mole"}))
    report = prepare("villagers", root, tmp_path / "v", test_fraction=0.0, progress=False)
    assert report.counts == {"Cat": {"train": 1, "test": 0}, "Dog": {"train": 1, "test": 0},
                             "Mole": {"train": 1, "test": 0}}


def test_refuses_foreign_output_and_bad_input(villagers_download, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="not written by `vaetune data prepare`"):
        prepare("villagers", villagers_download, foreign, progress=False)
    assert (foreign / "precious.txt").exists()
    with pytest.raises(UserError, match="does not exist"):
        prepare("villagers", tmp_path / "nowhere.zip", tmp_path / "o")
    with pytest.raises(UserError, match="test-fraction"):
        prepare("villagers", villagers_download, tmp_path / "o", test_fraction=1.0)
    empty = tmp_path / "empty"
    image(empty / "x.png")
    with pytest.raises(UserError, match="no villager metadata"):
        prepare("villagers", empty, tmp_path / "o")


# --------------------------------------------------------------------------------------------
# apples (Fruit360)


@pytest.fixture
def fruits_download(tmp_path) -> Path:
    root = tmp_path / "fruits"
    small = root / "fruits-360_100x100" / "fruits-360"
    for split, n in (("Training", 5), ("Test", 2)):
        for cls in ("Apple Braeburn 1", "Apple Golden 1", "Apple Granny Smith 1", "Apple Red 1", "Banana 1"):
            for i in range(n):
                image(small / split / cls / f"{i}_100.jpg", size=(100, 100), color=(i * 40, 200, 0))
    corrupt(small / "Training" / "Apple Golden 1" / "99_100.jpg")
    # a second Fruit360 variant in the same archive: never mixed in
    image(root / "fruits-360_original-size" / "fruits-360-original-size" / "Training" / "Apple Braeburn 1" / "r_0.jpg",
          size=(300, 280))
    return root


def test_apples(fruits_download, tmp_path):
    out = tmp_path / "apples"
    report = prepare("apples", fruits_download, out, progress=False)
    train, test = tree(out), tree(held_out_dir(out))
    assert set(train) == set(test) == {"apple_braeburn", "apple_golden_1", "apple_granny_smith"}
    assert all(len(v) == 5 for v in train.values()) and all(len(v) == 2 for v in test.values())
    assert list(skipped(out)) == ["fruits-360_100x100/fruits-360/Training/Apple Golden 1/99_100.jpg"]
    assert report.ignored == 2 * 7 + 1  # Apple Red 1 and Banana 1; the original-size copy
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["root"] == "fruits-360_100x100/fruits-360"


def test_apples_varieties_and_missing(fruits_download, tmp_path):
    report = prepare("apples", fruits_download, tmp_path / "a", varieties=["Apple Red", "Banana"], progress=False)
    assert set(report.counts) == {"apple_red", "banana"}
    with pytest.raises(UserError, match="Apple Pink Lady.*Apple Braeburn 1"):
        prepare("apples", fruits_download, tmp_path / "b", varieties=["Apple Pink Lady"])


# --------------------------------------------------------------------------------------------
# impressionism (WikiArt, steubk/wikiart layout)


PAINTINGS = {"landscape": 6, "portrait": 4, "still life": 3, "genre painting": 3, "cityscape": 2}


@pytest.fixture
def wikiart_download(tmp_path) -> Path:
    root = tmp_path / "wikiart"
    rows = []
    for genre, n in PAINTINGS.items():
        for i in range(n):
            rel = f"Impressionism/claude-monet_{genre.replace(' ', '-')}-{i}.jpg"
            image(root / rel, size=(120, 90))
            rows.append([rel, "claude monet", f"['{genre}']"])
    image(root / "Impressionism/edgar-degas_dancers.jpg", size=(120, 90))
    rows.append(["Impressionism/edgar-degas_dancers.jpg", "edgar degas", "['portrait', 'genre painting']"])
    image(root / "Impressionism/unknown_untitled.jpg", size=(120, 90))  # no row
    corrupt(root / "Impressionism/claude-monet_landscape-0.jpg")
    for style in ("Post_Impressionism", "Realism"):
        image(root / style / "vincent_x.jpg", size=(120, 90))
        rows.append([f"{style}/vincent_x.jpg", "vincent", "['landscape']"])
    with open(root / "classes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "artist", "genre", "description", "phash", "width", "height", "genre_count", "subset"])
        writer.writerows(r + ["desc", "abc", 120, 90, 1, "train"] for r in rows)
    with open(root / "wclasses.csv", "w", newline="") as f:  # integer codes without names: not used
        writer = csv.writer(f)
        writer.writerow(["file", "artist", "genre", "style"])
        writer.writerows([r[0], 3, 7, 12] for r in rows)
    return root


def test_impressionism(wikiart_download, tmp_path):
    out = tmp_path / "impressionism"
    report = prepare("impressionism", wikiart_download, out, test_fraction=0.34, seed=0, progress=False)
    counts = {k: v["train"] + v["test"] for k, v in report.counts.items()}
    assert counts == {"genre_painting": 3, "landscape": 5, "portrait": 4, "still_life": 3}
    assert report.counts["landscape"] == {"train": 3, "test": 2}  # 5 valid: round(5 * .34) = 2 held out
    assert set(tree(out)) == set(counts)
    reasons = skipped(out)
    assert "ambiguous" in reasons["Impressionism/edgar-degas_dancers.jpg"]
    assert "no row" in reasons["Impressionism/unknown_untitled.jpg"]
    assert "not a decodable image" in reasons["Impressionism/claude-monet_landscape-0.jpg"]
    assert report.ignored == 2  # the cityscapes; other styles are never considered
    assert json.loads((out / "manifest.json").read_text())["metadata"] == "classes.csv"


def test_impressionism_artgan_layout(tmp_path):
    root = tmp_path / "artgan"
    lines = []
    for i, idx in enumerate([4, 4, 6, 9, 2, 1]):
        rel = f"Impressionism/painter_{i}.jpg"
        image(root / "wikiart" / rel, size=(50, 40))
        lines.append(f"{rel},{idx}")
    (root / "wikiart_csv").mkdir()
    (root / "wikiart_csv" / "genre_train.csv").write_text("\n".join(lines) + "\n")
    (root / "wikiart_csv" / "genre_class.txt").write_text(
        "0 abstract_painting\n1 cityscape\n2 genre_painting\n4 landscape\n6 portrait\n9 still_life\n")
    report = prepare("impressionism", root, tmp_path / "p", test_fraction=0.0, progress=False)
    assert {k: v["train"] for k, v in report.counts.items()} == {
        "genre_painting": 1, "landscape": 2, "portrait": 1, "still_life": 1}


def test_prepare_cli(wikiart_download, tmp_path, capsys):
    out = tmp_path / "imp"
    code = main(["data", "prepare", "impressionism", str(wikiart_download), "--out", str(out),
                 "--test-fraction", "0.2", "--seed", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "held-out test images" in text and "3 skipped" in text
    code = main(["data", "prepare", "apples", str(wikiart_download), "--out", str(tmp_path / "x")])
    assert code == 2 and "no folder for the apple variety" in capsys.readouterr().err
