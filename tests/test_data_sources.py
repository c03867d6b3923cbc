"""vaetune.data sources on real files: folders, zips, saved Hugging Face datasets, invalid
images, the too-few error, the disk cache, and read_images."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaetune.data._items as items
from vaetune.data import load_data, read_images
from vaetune.data.cache import cache_path, skipped_path
from vaetune.errors import UserError
from vaetune.spec import DataConfig

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def solid(path: Path, colour=RED, size=(20, 20), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, format=fmt)
    return path


def noisy_png_bytes(seed: int = 0, size: int = 32) -> bytes:
    import io

    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def cfg_for(source: Path | str, tmp_path: Path, **kw) -> DataConfig:
    kw.setdefault("min_images", 1)
    return DataConfig(source=str(source), image_size=16, cache_dir=str(tmp_path / "cache"), **kw)


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """data/cat: 3 red PNGs; data/dog/deep: 2 blue JPEGs (nested); plus files to ignore."""
    root = tmp_path / "images"
    for i in range(3):
        solid(root / "data" / "cat" / f"c{i}.png", RED)
    for i in range(2):
        solid(root / "data" / "dog" / "deep" / f"d{i}.JPG", BLUE, fmt="JPEG")
    (root / "data" / "notes.txt").write_text("not an image, not listed")
    solid(root / "data" / ".hidden" / "h.png", GREEN)
    return root


def test_folder_nested_labels_follow_sub_folders(labelled_folder, tmp_path):
    data = load_data(cfg_for(labelled_folder, tmp_path))
    assert data.images.shape == (5, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.images.is_contiguous()
    assert data.label_names == {"class": ["cat", "dog/deep"]}  # below the shared "data" folder
    assert data.primary_label == "class" and data.num_classes == 2
    assert data.labels["class"].tolist() == [0, 0, 0, 1, 1]
    red = data.images[data.labels["class"] == 0].float().mean(dim=(0, 2, 3))
    blue = data.images[data.labels["class"] == 1].float().mean(dim=(0, 2, 3))
    assert red[0] > 200 and red[2] < 40 and blue[2] > 200 and blue[0] < 40  # labels match pixels
    assert data.skipped == []


def test_label_modes(labelled_folder, tmp_path):
    assert load_data(cfg_for(labelled_folder, tmp_path, labels="none")).labels == {}
    one = tmp_path / "one"
    for i in range(3):
        solid(one / "only" / f"{i}.png")
    assert load_data(cfg_for(one, tmp_path, labels="auto")).labels == {}  # one folder: no classes
    forced = load_data(cfg_for(one, tmp_path, labels="folders"))
    assert forced.label_names == {"class": ["only"]} and forced.labels["class"].tolist() == [0, 0, 0]


def test_zip_matches_folder(labelled_folder, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(labelled_folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(labelled_folder).as_posix())
        zf.writestr("__MACOSX/data/cat/._c0.png", b"resource fork, ignored")
    from_zip = load_data(cfg_for(archive, tmp_path))
    from_folder = load_data(cfg_for(labelled_folder, tmp_path))
    assert torch.equal(from_zip.images, from_folder.images)
    assert from_zip.label_names == from_folder.label_names
    assert torch.equal(from_zip.labels["class"], from_folder.labels["class"])
    assert from_zip.fingerprint != from_folder.fingerprint


def _hf_images(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (12, 10), (10 * i, 100, 200)) for i in range(n)]


def test_saved_hf_dataset_with_class_label(tmp_path):
    import datasets

    features = datasets.Features({"picture": datasets.Image(),
                                  "kind": datasets.ClassLabel(names=["bird", "fish", "frog"])})
    ds = datasets.Dataset.from_dict({"picture": _hf_images(6), "kind": [2, 0, 2, 1, 0, 2]}, features=features)
    ds.save_to_disk(str(tmp_path / "saved"))
    data = load_data(cfg_for(tmp_path / "saved", tmp_path, hf_image_column="picture", hf_label_column="kind"))
    assert data.images.shape == (6, 3, 16, 16)
    assert data.label_names == {"class": ["bird", "fish", "frog"]}
    assert data.labels["class"].tolist() == [2, 0, 2, 1, 0, 2]
    assert data.images[3, 0].float().mean().item() == pytest.approx(30, abs=2)  # row order kept

    with pytest.raises(UserError, match=r"no column 'image'.*picture, kind"):
        load_data(cfg_for(tmp_path / "saved", tmp_path))


def test_saved_hf_dataset_dict_concatenates_splits(tmp_path):
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"image": _hf_images(5), "who": ["a", "b", "a", "b", "a"]}),
        "test": datasets.Dataset.from_dict({"image": _hf_images(2), "who": ["c", "a"]}),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    data = load_data(cfg_for(tmp_path / "dd", tmp_path, hf_label_column="who"))
    assert len(data) == 7
    assert data.label_names == {"class": ["a", "b", "c"]}  # plain strings: sorted names
    assert data.labels["class"].tolist() == [0, 1, 0, 1, 0, 2, 0]


def test_hf_scheme_loads_with_load_dataset(tmp_path):
    # datasets.load_dataset on a local image folder: the hf: path without a network.
    for i in range(2):
        solid(tmp_path / "hub" / "train" / "apple" / f"a{i}.png", RED)
        solid(tmp_path / "hub" / "train" / "plum" / f"p{i}.png", BLUE)
    data = load_data(cfg_for(f"hf:{tmp_path / 'hub'}", tmp_path, hf_label_column="label"))
    assert len(data) == 4 and data.label_names == {"class": ["apple", "plum"]}
    assert sorted(data.labels["class"].tolist()) == [0, 0, 1, 1]


def test_invalid_images_are_skipped_and_listed(tmp_path):
    root = tmp_path / "mixed"
    for i in range(20):
        (root / f"ok{i:02d}.png").parent.mkdir(parents=True, exist_ok=True)
        (root / f"ok{i:02d}.png").write_bytes(noisy_png_bytes(i))
    (root / "empty.png").write_bytes(b"")
    good = noisy_png_bytes(99)
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "text.png").write_text("this is not a picture")
    solid(root / "tiny.png", size=(4, 4))
    cfg = cfg_for(root, tmp_path, min_side=8)
    data = load_data(cfg)
    assert len(data) == 20
    reasons = dict(data.skipped)
    assert reasons["empty.png"] == "empty file"
    assert reasons["truncated.png"].startswith("corrupt:") and "truncated" in reasons["truncated.png"]
    assert reasons["text.png"] == "not an image"
    assert reasons["tiny.png"] == "too small: 4x4 < min_side 8"
    listed = skipped_path(cfg.cache_dir, data.fingerprint).read_text().splitlines()
    assert listed[0] == "file\treason"
    assert sorted(line.split("\t")[0] for line in listed[1:]) == ["empty.png", "text.png", "tiny.png", "truncated.png"]
    assert load_data(cfg).skipped == data.skipped  # the cache remembers what was skipped


def test_too_few_usable_images_is_a_clear_error(tmp_path):
    root = tmp_path / "few"
    for i in range(3):
        solid(root / f"{i}.png")
    (root / "bad1.png").write_text("nope")
    (root / "bad2.png").write_text("nope")
    (root / "zero.png").write_bytes(b"")
    with pytest.raises(UserError) as err:
        load_data(cfg_for(root, tmp_path, min_images=16))
    msg = str(err.value)
    assert str(root) in msg and "only 3 usable images" in msg and "min_images=16" in msg
    assert "3 files skipped" in msg and "2 not an image" in msg and "1 empty file" in msg
    assert ".skipped.tsv" in msg


@pytest.mark.parametrize("source, expected", [
    ("/no/such/folder", "does not exist"),
    ("s3x:bucket/key", "unknown scheme 's3x:'"),
    ("builtin:dragons", "unknown built-in data set; accepted: builtin:sprites"),
    ("builtin:sprites?size=3", "unknown option"),
])
def test_bad_source_names_what_is_accepted(tmp_path, source, expected):
    with pytest.raises(UserError, match="accepted") as err:
        load_data(cfg_for(source, tmp_path))
    assert expected in str(err.value) and source.split("?")[0].split(":")[-1] in str(err.value)


def test_plain_file_source_is_rejected(tmp_path):
    f = solid(tmp_path / "one.png")
    with pytest.raises(UserError, match="not a .zip; accepted: a folder of images"):
        load_data(cfg_for(f, tmp_path))


def test_cache_hit_does_not_decode(labelled_folder, tmp_path, monkeypatch):
    cfg = cfg_for(labelled_folder, tmp_path)
    first = load_data(cfg)
    assert cache_path(cfg.cache_dir, first.fingerprint).is_file()

    def boom(*args, **kwargs):
        raise AssertionError("decoded although the cache holds this data")

    monkeypatch.setattr(items, "decode_image", boom)
    # Split and augmentation settings are not part of the key: still a cache hit.
    again = load_data(cfg.model_copy(update={"split_seed": 7, "augment": cfg.augment.model_copy(update={"hflip": 0.5})}))
    assert again.fingerprint == first.fingerprint
    assert torch.equal(again.images, first.images) and again.label_names == first.label_names

    # A preprocessing setting is part of the key: a miss, which must decode.
    with pytest.raises(AssertionError, match="decoded although"):
        load_data(cfg.model_copy(update={"image_size": 24}))
    leftovers = [p.name for p in Path(cfg.cache_dir).iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_changed_file_changes_fingerprint(labelled_folder, tmp_path):
    cfg = cfg_for(labelled_folder, tmp_path)
    before = load_data(cfg)
    solid(labelled_folder / "data" / "cat" / "c0.png", GREEN, size=(21, 20))
    after = load_data(cfg)
    assert after.fingerprint != before.fingerprint
    assert after.images[0, 1].float().mean() > 150  # the green image is decoded, not the cached red


def test_read_images_native_size_limit_and_pt(tmp_path):
    root = tmp_path / "same"
    for i in range(4):
        solid(root / f"{i}.png", (i * 50, 0, 0), size=(10, 7))
    images = read_images(root)
    assert images.shape == (4, 3, 7, 10) and images[2, 0, 0, 0] == 100
    assert read_images(root, limit=2).shape == (2, 3, 7, 10)
    assert read_images(root, image_size=16, channels=1).shape == (4, 1, 16, 16)

    torch.save(images, tmp_path / "images.pt")
    assert torch.equal(read_images(tmp_path / "images.pt"), images)
    cfg = cfg_for(root, tmp_path, min_side=4)
    cached = cache_path(cfg.cache_dir, load_data(cfg).fingerprint)
    assert read_images(cached, limit=3).shape == (3, 3, 16, 16)  # a load_data cache file


def test_read_images_rejects_mixed_native_sizes(tmp_path):
    root = tmp_path / "mixed"
    solid(root / "a.png", size=(10, 10))
    solid(root / "b.png", size=(10, 10))
    solid(root / "c.png", size=(12, 9))
    with pytest.raises(UserError, match=r"a\.png is 10x10, c\.png is 12x9"):
        read_images(root)
    assert read_images(root, image_size=8).shape == (3, 3, 8, 8)
