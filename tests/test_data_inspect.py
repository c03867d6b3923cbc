"""`vaetune data inspect` run as a real command in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # each test starts a vaetune process


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaetune.cli", "data", "inspect", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_inspect_folder_prints_counts_skips_labels_and_writes_preview(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / "imgs" / folder).mkdir(parents=True)
    for i in range(10):
        Image.new("RGBA", (30, 20), (25 * i, 100, 50, 255)).save(tmp_path / "imgs" / "a" / f"{i}.png")
    for i in range(7):
        Image.new("L", (20, 20), 20 * i).save(tmp_path / "imgs" / "b" / f"{i}.jpg")
    (tmp_path / "imgs" / "b" / "broken.png").write_text("not a png")
    out = tmp_path / "preview.png"
    proc = run(str(tmp_path / "imgs"), "--image-size", "16", "--channels", "4", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "17 usable, 1 skipped; each 4x16x16" in text
    assert "b/broken.png\tnot an image" in text
    assert "label 'class': 2 classes: a 10, b 7" in text
    assert ".vaetune_cache" in text and "skipped.tsv" in text
    with Image.open(out) as preview:
        assert preview.mode == "RGBA" and preview.width > 16 * 4


def test_inspect_search_space_yaml_uses_its_data_section(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: tiny\ndata:\n  source: builtin:sprites\n  count: 40\n  image_size: 24\n"
                     "  cache_dir: cache\ntrain:\n  beta: {loguniform: [0.1, 10]}\n")
    proc = run(str(space), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "40 usable, 0 skipped; each 3x24x24" in proc.stdout
    assert "label 'shape': 5 classes" in proc.stdout
    with Image.open(tmp_path / "cache" / "preview.png") as preview:
        assert preview.size == (8 * 26 + 2, 5 * 26 + 2)  # 40 images, 8 per row, 2 px padding


def test_inspect_missing_source_is_one_line_error(tmp_path):
    proc = run(str(tmp_path / "nope"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist; accepted:" in proc.stderr
