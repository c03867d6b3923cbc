"""Untrusted image sources keep memory bounded and say how far they got: a PNG whose header declares
more pixels than Pillow's decompression-bomb guard allows is skipped before a pixel is decoded, a
file or zip entry larger than any image's raw pixels is skipped unread (a zip entry sized from its
directory), and a long scan logs its progress. Images are real files on disk, crafted byte by byte
where Pillow would refuse to write them."""

from __future__ import annotations

import io
import logging
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import vaetune.data._progress as progress_module
from vaetune.data import InvalidImage, load_data
from vaetune.data._items import Item
from vaetune.data._progress import Progress
from vaetune.fetch._images import check_image
from vaetune.init_space import _facts
from vaetune.spec import DataConfig

# Pillow's documented default: 1024 * 1024 * 1024 // 4 // 3 pixels (a 3-channel image of 1 GiB / 4)
PILLOW_LIMIT = 1024 * 1024 * 1024 // 4 // 3
MiB = 1 << 20


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height RGB pixels, the first rows of zeros following (a
    decoder that believes the header allocates all of them)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 4)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def noisy_png(seed: int, size: int = 24) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def traced_peak(run: Callable[[], Any]) -> tuple[Any, int]:
    """What `run()` returns, and the most bytes Python held for it at once (tracemalloc: bytes objects
    such as an inflated zip entry are counted)."""
    tracemalloc.start()
    try:
        out = run()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def cfg_for(source: Path, tmp_path: Path) -> DataConfig:
    return DataConfig(source=str(source), image_size=16, cache_dir=str(tmp_path / "cache"), min_images=1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    for i in range(6):
        (root / f"ok{i}.png").write_bytes(noisy_png(i))
    return root


def test_the_bomb_png_is_what_its_header_says():
    # the crafted header is read by Pillow as declared (so the refusals below are about its size)
    with Image.open(io.BytesIO(bomb_png(300, 200))) as im:
        assert im.size == (300, 200) and im.format == "PNG"


def test_a_png_declaring_more_pixels_than_pillow_allows_is_skipped_undecoded(folder, tmp_path):
    # 10000 x 10000 = 100,000,000 pixels: past Pillow's limit but under twice it, where Pillow itself
    # only warns and would decode 300 MB of pixels; 20000 x 20000 is past twice (Pillow's own refusal)
    (folder / "wide.png").write_bytes(bomb_png(10_000, 10_000))
    (folder / "huge.png").write_bytes(bomb_png(20_000, 20_000))
    assert PILLOW_LIMIT < 10_000 * 10_000 < 2 * PILLOW_LIMIT < 20_000 * 20_000
    data = load_data(cfg_for(folder, tmp_path))
    assert len(data) == 6
    reasons = dict(data.skipped)
    assert reasons["wide.png"] == (f"too large: 10000x10000 is 100,000,000 pixels, over the limit of {PILLOW_LIMIT:,} "
                                   "(PIL.Image.MAX_IMAGE_PIXELS, Pillow's decompression-bomb guard); not decoded")
    assert reasons["huge.png"].startswith(f"too large: over twice the limit of {PILLOW_LIMIT:,} pixels")


def test_init_and_fetch_refuse_the_bomb_from_its_header_alike():
    # vaetune init's probe and the fetchers' check give the decoder's reason
    item = Item("wide.png", lambda: bomb_png(10_000, 10_000))
    assert _facts._probe(item, min_side=8).startswith("too large: 10000x10000 is 100,000,000 pixels")
    with pytest.raises(InvalidImage, match=r"too large: 10000x10000 is 100,000,000 pixels"):
        check_image(bomb_png(10_000, 10_000))


def test_a_zip_entry_inflating_past_the_limit_is_skipped_from_its_directory(tmp_path, monkeypatch):
    # The limit follows Pillow's setting (raw pixels of the largest image allowed: 8 bytes a pixel),
    # lowered here so that the entry is 64 MiB, not gigabytes: 1 Mi pixels -> 8 MiB a file at most.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", MiB)
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.writestr(f"ok{i}.png", noisy_png(i))
        zf.writestr("bomb.png", bytes(64 * MiB))  # zeros: deflated to about 64 KiB
    assert path.stat().st_size < 2 * MiB
    data, peak = traced_peak(lambda: load_data(cfg_for(path, tmp_path)))
    assert len(data) == 4
    assert dict(data.skipped)["bomb.png"] == (f"too large: {64 * MiB:,} bytes by the zip's directory, over the limit "
                                              f"of {8 * MiB:,} (the raw pixels of the largest image allowed); not read")
    assert peak < 32 * MiB  # the 64 MiB entry was never inflated into memory


def test_a_file_larger_than_any_image_is_skipped_unread(folder, tmp_path):
    big = folder / "big.png"
    with open(big, "wb") as fh:  # sparse: 1 GiB by its size, no block written
        fh.truncate(1 << 30)
    limit = 8 * PILLOW_LIMIT
    data, peak = traced_peak(lambda: load_data(cfg_for(folder, tmp_path)))
    assert len(data) == 6
    assert dict(data.skipped)["big.png"] == (f"too large: {1 << 30:,} bytes by its size on disk, over the limit of "
                                             f"{limit:,} (the raw pixels of the largest image allowed); not read")
    assert peak < 64 * MiB


def test_a_long_scan_says_how_far_it_got(folder, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "EVERY_S", 0.0)  # a line at every step, whatever the machine's speed
    caplog.set_level(logging.INFO, logger="vaetune.data")
    load_data(cfg_for(folder, tmp_path))
    lines = [r.getMessage() for r in caplog.records if r.name == "vaetune.data._progress"]
    assert any(line.startswith(f"listing {folder}: 6 files so far") for line in lines), lines
    assert any(line.startswith(f"reading the sizes and times of {folder}: 6 of 6 files (100 %)") for line in lines)
    assert any(line.startswith(f"decoding {folder}: 6 of 6 images (100 %)") for line in lines), lines


def test_a_progress_line_gives_the_count_rate_and_time_left():
    p = Progress("decoding DIR", total=100_000, every=3600.0)
    p.done = 25_000
    # 25,000 in 10 s: 2,500 a second, 75,000 left -> 30 s
    assert p.line(p.start + 10.0) == "decoding DIR: 25,000 of 100,000 images (25 %), 2,500 a second, about 30 s left"
    q = Progress("listing DIR", unit="files", every=3600.0)
    q.done = 800
    assert q.line(q.start + 4.0) == "listing DIR: 800 files so far, 200 a second"
