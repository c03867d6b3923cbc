"""`vaetune data fetch emoji` against a local npm registry on 127.0.0.1 serving a tarball built
here: the pinned integrity check, extraction by category, cutting from the sprite sheet, re-runs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from npm_registry import FakeRegistry, integrity, png, tar_gz
from PIL import Image

from vaetune.errors import UserError
from vaetune.fetch._http import RetryPolicy
from vaetune.fetch.emoji import EMOJI_VERSION, fetch_emoji

FAST = RetryPolicy(retries=2, backoff=0.01, max_backoff=0.02, timeout=5)
VERSION = "0.0.1-test"
PACKAGE = "emoji-datasource-twitter"
# (image, category, sheet_x, sheet_y, colour); "2b50.png" is listed but absent from img/twitter/64
EMOJI = [
    ("1f600.png", "Smileys & Emotion", 0, 0, (250, 200, 0)),
    ("1f436.png", "Animals & Nature", 1, 0, (150, 90, 40)),
    ("2b50.png", "Travel & Places", 0, 1, (255, 220, 0)),
]
SKIN = ("1f44d-1f3fb.png", 1, 1, (240, 200, 170))  # a skin tone of the thumbs up (People & Body)


def tile(colour: tuple[int, int, int], size: int) -> Image.Image:
    """A disc on transparency, different at every size so a wrong cut shows."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    px = np.array(img)
    yy, xx = np.mgrid[:size, :size]
    px[(yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 2 - 1) ** 2] = (
        *colour,
        255,
    )
    px[0, 0] = (size, 0, 0, 255)  # a corner pixel marks the cell's origin
    return Image.fromarray(px)


def build_tarball() -> bytes:
    """An emoji-datasource-like package: emoji.json, 64 px files and a 16 px sheet-clean."""
    records = []
    for image, category, x, y, _ in EMOJI:
        records.append(
            {
                "image": image,
                "unified": image[:-4].upper(),
                "short_name": image[:-4],
                "name": image,
                "category": category,
                "subcategory": "x",
                "sheet_x": x,
                "sheet_y": y,
                "sort_order": len(records),
                "has_img_twitter": True,
                "has_img_apple": False,
            }
        )
    thumbs = {
        "image": "1f44d.png",
        "unified": "1F44D",
        "short_name": "+1",
        "category": "People & Body",
        "sheet_x": 2,
        "sheet_y": 0,
        "sort_order": 9,
        "has_img_twitter": True,
        "skin_variations": {
            "1F3FB": {
                "image": SKIN[0],
                "sheet_x": SKIN[1],
                "sheet_y": SKIN[2],
                "has_img_twitter": True,
            }
        },
    }
    hidden = {
        "image": "1f9ff.png",
        "category": "Objects",
        "sheet_x": 2,
        "sheet_y": 1,
        "sort_order": 10,
        "has_img_twitter": False,
    }  # not in this set: never written
    records += [thumbs, hidden]
    colours = {e[0]: e[4] for e in EMOJI} | {"1f44d.png": (240, 180, 40), SKIN[0]: SKIN[3]}
    positions = {e[0]: (e[2], e[3]) for e in EMOJI} | {
        "1f44d.png": (2, 0),
        SKIN[0]: (SKIN[1], SKIN[2]),
    }
    files = {
        f"package/img/twitter/64/{name}": png(tile(colours[name], 64))
        for name in colours
        if name != "2b50.png"
    }
    sheet = Image.new("RGBA", (3 * 18, 2 * 18), (0, 0, 0, 0))
    for name, (x, y) in positions.items():
        sheet.paste(tile(colours[name], 16), (x * 18 + 1, y * 18 + 1))
    members = {
        "package/package.json": json.dumps({"name": PACKAGE, "version": VERSION}).encode(),
        "package/emoji.json": json.dumps(records).encode(),
        "package/img/twitter/sheets-clean/16.png": png(sheet),
        **files,
    }
    return tar_gz(members)


@pytest.fixture
def registry():
    server = FakeRegistry(PACKAGE, build_tarball(), (VERSION, EMOJI_VERSION))
    yield server
    server.close()


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))


def test_fetch_extracts_files_by_category_verified(registry, tmp_path):
    out = tmp_path / "emoji"
    report = fetch_emoji(out, registry=registry.url, version=VERSION, policy=FAST)

    assert report.downloaded == 4 and report.skipped == 0
    assert [rel for rel, _ in report.failed] == ["travel_places/2b50.png"]
    assert "not in the package" in report.failed[0][1]
    assert files_under(out) == [
        "animals_nature/1f436.png",
        "people_body/1f44d-1f3fb.png",
        "people_body/1f44d.png",
        "smileys_emotion/1f600.png",
    ]
    with tarfile.open(
        fileobj=io.BytesIO(registry.tarball)
    ) as tar:  # the package's bytes, unchanged
        assert (out / "smileys_emotion/1f600.png").read_bytes() == tar.extractfile(
            "package/img/twitter/64/1f600.png"
        ).read()
    assert not list(out.rglob("*.part"))
    manifest = json.loads((out / "emoji.json").read_text())
    assert manifest["version"] == VERSION and manifest["size"] == 64
    assert {r["file"] for r in manifest["emoji"]} == set(files_under(out)) | {
        "travel_places/2b50.png"
    }
    assert "travel_places/2b50.png" in (out / "failed.txt").read_text()
    assert registry.requests[f"/{PACKAGE}/{VERSION}"] == 1 and registry.tarball_requests() == 1


def test_rerun_skips_present_files(registry, tmp_path):
    out = tmp_path / "emoji"
    fetch_emoji(out, registry=registry.url, version=VERSION, policy=FAST, labels=False, size=16)
    assert registry.tarball_requests() == 1
    again = fetch_emoji(
        out, registry=registry.url, version=VERSION, policy=FAST, labels=False, size=16
    )
    assert (again.downloaded, again.skipped, again.ok) == (0, 5, True)
    assert registry.tarball_requests() == 1  # everything present: no request at all

    (out / "1f436.png").unlink()
    third = fetch_emoji(
        out, registry=registry.url, version=VERSION, policy=FAST, labels=False, size=16
    )
    assert (third.downloaded, third.skipped) == (1, 4) and registry.tarball_requests() == 2
    assert (out / "1f436.png").is_file()


def test_small_sizes_are_cut_from_the_sheet(registry, tmp_path):
    out = tmp_path / "emoji16"
    report = fetch_emoji(out, registry=registry.url, version=VERSION, policy=FAST, size=16, limit=3)
    assert report.ok and report.downloaded == 3  # the sheet has every emoji, 2b50 included
    assert files_under(out) == [
        "animals_nature/1f436.png",
        "smileys_emotion/1f600.png",
        "travel_places/2b50.png",
    ]
    for image, _, _, _, colour in EMOJI:
        rel = next(p for p in files_under(out) if p.endswith(image))
        got = np.asarray(Image.open(out / rel).convert("RGBA"))
        assert got.shape == (16, 16, 4)
        assert np.array_equal(got, np.asarray(tile(colour, 16))), image


def test_integrity_is_checked(registry, tmp_path):
    # the pinned version is checked against the integrity recorded in the code: this registry's
    # tarball under that version is not the real package, so it is refused (a body of the right
    # length with another digest is another file: not retried)
    with pytest.raises(UserError) as err:
        fetch_emoji(tmp_path / "pinned", registry=registry.url, policy=FAST)
    assert "integrity mismatch" in str(err.value) and EMOJI_VERSION in str(err.value)
    assert registry.tarball_requests() == 1
    assert registry.requests[f"/{PACKAGE}/{EMOJI_VERSION}"] == 0  # the pin, not the registry's word
    assert not files_under(tmp_path / "pinned")

    registry.integrity = integrity(b"another tarball")
    with pytest.raises(UserError, match="integrity mismatch"):
        fetch_emoji(tmp_path / "other", registry=registry.url, version=VERSION, policy=FAST)


def test_user_errors(registry, tmp_path):
    with pytest.raises(UserError, match="--emoji-set.*twitter, google, apple"):
        fetch_emoji(tmp_path / "o", emoji_set="facebook")
    with pytest.raises(UserError, match="--size.*16, 20, 32, 64"):
        fetch_emoji(tmp_path / "o", size=48)
    with pytest.raises(UserError, match="--registry must be an http"):
        fetch_emoji(tmp_path / "o", registry="registry.npmjs.org")
    with pytest.raises(UserError, match="HTTP 404"):
        fetch_emoji(tmp_path / "o", registry=registry.url, version="9.9.9", policy=FAST)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write to the output folder"):
        fetch_emoji(blocker / "emoji", registry=registry.url, version=VERSION, policy=FAST)


@pytest.mark.slow
def test_cli(registry, tmp_path):
    out = tmp_path / "cli"
    cmd = [
        sys.executable,
        "-m",
        "vaetune.cli",
        "data",
        "fetch",
        "emoji",
        "--registry",
        registry.url,
        "--out",
        str(out),
    ]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "integrity mismatch" in refused.stderr  # the pinned version
    assert len(refused.stderr.strip().splitlines()[-1]) > 0 and "Traceback" not in refused.stderr
    bad = subprocess.run(
        cmd[:-2] + ["--out", str(out), "--size", "48"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "--size" in bad.stderr


def test_shipped_space_reads_the_fetched_folder():
    from vaetune.spec import load_space

    path = Path(__file__).resolve().parent.parent / "search_spaces" / "emoji.yaml"
    cfg = load_space(path).default_config()
    assert cfg.data.source == "data/emoji" and cfg.data.labels == "folders"
    header = path.read_text().split("\nname:")[0]
    assert (
        "vaetune data fetch emoji" in header and "vaetune search search_spaces/emoji.yaml" in header
    )
    # KID of the fitted mixture's samples (what vaetune hands out), on a CPU-sized sample, fresh at every ASHA rung
    assert cfg.search.metric == "eval/kid_sample_gmm" and cfg.train.fid_samples < 2048
    assert cfg.search.grace_period % cfg.train.checkpoint_every == 0
