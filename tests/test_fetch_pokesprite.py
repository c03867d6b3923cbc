"""`vaetune data fetch pokesprite` against a local npm registry on 127.0.0.1 serving a tarball built
here in the package's layout: both variants and the female forms written byte for byte, re-runs,
the integrity check, and an untrusted archive (names that climb out of OUT, a link, a member too
large by its header, a download past its limits) that writes nothing it should not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from npm_registry import FakeRegistry, integrity, png, tar_gz
from PIL import Image

from vaetune.errors import UserError
from vaetune.fetch._http import RetryPolicy
from vaetune.fetch.pokesprite import MAX_SPRITE, POKESPRITE_VERSION, fetch_pokesprite

FAST = RetryPolicy(retries=2, backoff=0.01, max_backoff=0.02, timeout=5)
VERSION = "0.0.1-test"
PACKAGE = "pokesprite-images"
GEN8 = "package/pokemon-gen8"
W, H = 68, 56  # the package's box sprites
RED, GREEN = (220, 30, 30), (30, 160, 60)


def rgba_sprite(colour: tuple[int, int, int]) -> Image.Image:
    """Transparent left half, opaque `colour` right half."""
    px = np.zeros((H, W, 4), np.uint8)
    px[:, W // 2:] = (*colour, 255)
    return Image.fromarray(px, "RGBA")


def palette_sprite(colour: tuple[int, int, int]) -> Image.Image:
    """Mode P: index 0 (green, made transparent by tRNS) on the left half, index 1 on the right."""
    img = Image.new("P", (W, H), 0)
    img.putpalette([0, 255, 0, *colour] + [0] * 762)
    img.paste(1, (W // 2, 0, W, H))
    img.info["transparency"] = 0
    return img


def grey_alpha_sprite(level: int) -> Image.Image:
    """Mode LA: grey `level` everywhere, transparent on the left half."""
    px = np.full((H, W, 2), level, np.uint8)
    px[:, : W // 2, 1] = 0
    px[:, W // 2:, 1] = 255
    return Image.fromarray(px, "LA")


SPRITES = {  # member under pokemon-gen8/ -> its PNG bytes
    "regular/bulbasaur.png": png(rgba_sprite(GREEN)),
    "regular/ditto.png": png(palette_sprite(RED)),
    "regular/gastly.png": png(grey_alpha_sprite(80)),
    "regular/pikachu.png": png(rgba_sprite((250, 210, 40))),
    "regular/female/pikachu.png": png(rgba_sprite((240, 200, 30))),
    "shiny/bulbasaur.png": png(rgba_sprite((90, 200, 90))),
    "shiny/ditto.png": png(palette_sprite((40, 90, 220))),
    "shiny/gastly.png": png(grey_alpha_sprite(120)),
    "shiny/pikachu.png": png(rgba_sprite((255, 190, 0))),
    "shiny/female/pikachu.png": png(rgba_sprite((255, 180, 0))),
}
# where each lands under OUT: female forms in their variant's folder with a -female suffix
WRITTEN = {"regular/bulbasaur.png": "regular/bulbasaur.png", "regular/ditto.png": "regular/ditto.png",
           "regular/gastly.png": "regular/gastly.png", "regular/pikachu.png": "regular/pikachu.png",
           "regular/female/pikachu.png": "regular/pikachu-female.png",
           "shiny/bulbasaur.png": "shiny/bulbasaur.png", "shiny/ditto.png": "shiny/ditto.png",
           "shiny/gastly.png": "shiny/gastly.png", "shiny/pikachu.png": "shiny/pikachu.png",
           "shiny/female/pikachu.png": "shiny/pikachu-female.png"}
LEFT_OUT = {  # other folders of the package: never written
    "package/package.json": json.dumps({"name": PACKAGE, "version": VERSION}).encode(),
    f"{GEN8}/egg.png": png(rgba_sprite(RED)),
    "package/pokemon-gen7x/regular/bulbasaur.png": png(rgba_sprite(RED)),
    "package/icons/pokemon/regular/bulbasaur.png": png(rgba_sprite(RED)),
}


def package_tarball(extra: dict[str, bytes] | None = None, links: dict[str, str] | None = None) -> bytes:
    members = {**LEFT_OUT, **{f"{GEN8}/{k}": v for k, v in SPRITES.items()}, **(extra or {})}
    return tar_gz(members, links)


@pytest.fixture
def registry():
    with closing(FakeRegistry(PACKAGE, package_tarball(), (VERSION, POKESPRITE_VERSION))) as server:
        yield server


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_fetch_writes_both_variants_byte_for_byte(registry, tmp_path):
    out = tmp_path / "pokesprite"
    report = fetch_pokesprite(out, registry=registry.url, version=VERSION, policy=FAST)

    assert (report.downloaded, report.skipped, report.ok) == (10, 0, True)
    assert files_under(out) == sorted([*WRITTEN.values(), "pokesprite.json"])
    for member, rel in WRITTEN.items():  # the package's bytes, unchanged (P and LA stay P and LA)
        assert (out / rel).read_bytes() == SPRITES[member], rel
    assert Image.open(out / "regular/ditto.png").mode == "P"
    assert Image.open(out / "shiny/gastly.png").mode == "LA"
    manifest = json.loads((out / "pokesprite.json").read_text())
    assert (manifest["package"], manifest["version"], manifest["variants"]) == (PACKAGE, VERSION, ["regular", "shiny"])
    assert {r["file"]: (r["name"], r["variant"], r["female"]) for r in manifest["files"]} == {
        rel: (Path(member).stem, member.split("/")[0], "/female/" in member) for member, rel in WRITTEN.items()}
    assert not (out / "failed.txt").exists()
    assert registry.requests[f"/{PACKAGE}/{VERSION}"] == 1 and registry.tarball_requests() == 1


def test_one_variant_and_a_limit(registry, tmp_path):
    shiny = fetch_pokesprite(tmp_path / "shiny", variant="shiny", registry=registry.url, version=VERSION,
                             policy=FAST)
    assert shiny.downloaded == 5
    assert files_under(tmp_path / "shiny") == sorted(
        [rel for rel in WRITTEN.values() if rel.startswith("shiny/")] + ["pokesprite.json"])
    # with both variants a limit takes each Pokémon's regular and shiny sprite together, by name
    three = fetch_pokesprite(tmp_path / "three", limit=3, registry=registry.url, version=VERSION, policy=FAST)
    assert three.downloaded == 3
    assert files_under(tmp_path / "three") == [
        "pokesprite.json", "regular/bulbasaur.png", "regular/ditto.png", "shiny/bulbasaur.png"]


def test_a_rerun_with_the_same_options_makes_no_request(registry, tmp_path):
    out = tmp_path / "pokesprite"
    fetch_pokesprite(out, registry=registry.url, version=VERSION, policy=FAST)
    assert registry.tarball_requests() == 1
    again = fetch_pokesprite(out, registry=registry.url, version=VERSION, policy=FAST)
    assert (again.downloaded, again.skipped, again.ok) == (0, 10, True)
    assert sum(registry.requests.values()) == 2  # the version record and the tarball, once each

    (out / "shiny/pikachu-female.png").unlink()
    third = fetch_pokesprite(out, registry=registry.url, version=VERSION, policy=FAST)
    assert (third.downloaded, third.skipped) == (1, 9) and registry.tarball_requests() == 2
    assert (out / "shiny/pikachu-female.png").read_bytes() == SPRITES["shiny/female/pikachu.png"]
    # other options are another manifest: the tarball is fetched, present files are kept
    regular = fetch_pokesprite(out, variant="regular", registry=registry.url, version=VERSION, policy=FAST)
    assert (regular.downloaded, regular.skipped) == (0, 5) and registry.tarball_requests() == 3


def test_the_pinned_integrity_is_checked(registry, tmp_path):
    # the pinned version is checked against the integrity in the code: this registry's tarball
    # under that version is not the real package, so it is refused without asking the registry
    with pytest.raises(UserError) as err:
        fetch_pokesprite(tmp_path / "pinned", registry=registry.url, policy=FAST)
    assert "integrity mismatch" in str(err.value) and POKESPRITE_VERSION in str(err.value)
    assert registry.tarball_requests() == 1 and registry.requests[f"/{PACKAGE}/{POKESPRITE_VERSION}"] == 0
    assert files_under(tmp_path / "pinned") == []

    registry.integrity = integrity(b"another tarball")  # another version: the registry's word
    with pytest.raises(UserError, match="integrity mismatch"):
        fetch_pokesprite(tmp_path / "other", registry=registry.url, version=VERSION, policy=FAST)


@pytest.mark.slow
def test_cli_integrity_mismatch_is_one_line_at_exit_2(registry, tmp_path):
    cmd = [sys.executable, "-m", "vaetune.cli", "data", "fetch", "pokesprite", "--registry", registry.url,
           "--out", str(tmp_path / "cli")]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    lines = refused.stderr.strip().splitlines()  # the log's INFO lines, then the error
    errors = [line for line in lines if "error" in line]
    assert errors == lines[-1:] and lines[-1].startswith("vaetune data fetch: error: ")
    assert "integrity mismatch" in lines[-1] and f"{PACKAGE}@{POKESPRITE_VERSION}" in lines[-1]
    bad = subprocess.run([*cmd, "--variant", "golden"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--variant" in bad.stderr and "regular, shiny, both" in bad.stderr


def test_an_untrusted_archive_writes_nothing_outside_out_and_nothing_too_large(registry, tmp_path):
    # a valid sprite padded past the limit: it would decode, so only its header's size refuses it
    oversize = SPRITES["regular/bulbasaur.png"] + bytes(MAX_SPRITE + 1 - len(SPRITES["regular/bulbasaur.png"]))
    climbing = [f"{GEN8}/regular/../../../../escape.png", f"{GEN8}/shiny/female/../../../../../escape.png",
                f"{GEN8}/regular/deeper/folder/escape.png", f"{GEN8}/regular/.hidden.png"]
    registry.tarball = package_tarball(
        {**dict.fromkeys(climbing, SPRITES["regular/bulbasaur.png"]), f"{GEN8}/shiny/zubat.png": oversize},
        links={f"{GEN8}/regular/link.png": "/etc/hostname"})
    registry.integrity = integrity(registry.tarball)
    box = tmp_path / "box"  # OUT sits two levels down, so a climbing name has room to land
    out = box / "a" / "out"
    report = fetch_pokesprite(out, registry=registry.url, version=VERSION, policy=FAST)

    assert report.downloaded == 10  # the package's own sprites are all there
    assert files_under(box) == sorted(f"a/out/{rel}" for rel in [*WRITTEN.values(), "pokesprite.json",
                                                                  "failed.txt"])
    assert not list(tmp_path.parent.glob("escape.png")) and not (tmp_path / "escape.png").exists()
    failed = dict(report.failed)
    assert set(failed) == {*climbing, "shiny/zubat.png", "regular/link.png"}
    assert f"{MAX_SPRITE + 1} bytes by its tar header" in failed["shiny/zubat.png"]
    assert "not a regular file" in failed["regular/link.png"]
    listed = (out / "failed.txt").read_text()
    assert all(name in listed for name in failed)


def test_a_download_past_its_limits_is_refused(registry, tmp_path, monkeypatch):
    from vaetune.fetch import _npm

    monkeypatch.setattr(_npm, "MAX_TARBALL", len(registry.tarball) - 1)
    with pytest.raises(UserError, match="over the limit"):
        fetch_pokesprite(tmp_path / "big", registry=registry.url, version=VERSION, policy=FAST)
    assert registry.tarball_requests() == 1  # too large is not retried
    monkeypatch.undo()

    registry.tarball = package_tarball({"package/docs/noise.bin": os.urandom(16 << 10)})  # 17 KiB or more
    registry.integrity = integrity(registry.tarball)
    registry.trickle = 0.2  # 1 KiB every 0.2 s: each read beats the socket timeout, the whole does not
    slow = RetryPolicy(retries=0, timeout=5, deadline=0.5)
    with pytest.raises(UserError, match="not complete after 0.5 s"):
        fetch_pokesprite(tmp_path / "slow", registry=registry.url, version=VERSION, policy=slow)
    assert files_under(tmp_path / "slow") == []


def test_a_tarball_that_unpacks_past_its_limit_is_refused():
    from vaetune.fetch._npm import PackageArchive

    bomb = tar_gz({"package/zeros.bin": bytes(4 << 20)})  # 4 MiB of zeros in a few KiB
    assert len(bomb) < 64 << 10
    with pytest.raises(UserError, match="unpacks to more than"):
        PackageArchive(bomb, PACKAGE, max_unpacked=1 << 20)
    with PackageArchive(bomb, PACKAGE, max_unpacked=8 << 20) as tar:
        assert tar.read("package/zeros.bin", max_size=4 << 20) == bytes(4 << 20)


@pytest.mark.parametrize("options, message", [
    ({"variant": "gold"}, "--variant: got 'gold'; accepted: regular, shiny, both"),
    ({"limit": 0}, "--limit must be at least 1, got 0"),
    ({"registry": "registry.npmjs.org"}, "--registry must be an http"),
    ({"version": "9.9.9"}, "HTTP 404"),  # a version the registry does not have
    ({"version": VERSION, "tarball": {"package/package.json": b"{}"}}, "no sprites under package/pokemon-gen8"),
], ids=["variant", "limit", "registry", "unknown version", "not the package"])
def test_user_errors(registry, tmp_path, options, message):
    if "tarball" in options:
        registry.tarball = tar_gz(options.pop("tarball"))
        registry.integrity = integrity(registry.tarball)
    options.setdefault("registry", registry.url)
    with pytest.raises(UserError, match=message):
        fetch_pokesprite(tmp_path / "o", policy=FAST, **options)


@pytest.mark.slow
def test_the_data_module_composites_palette_and_grey_alpha_sprites_on_the_background(registry, tmp_path):
    from vaetune.data.load import load_data
    from vaetune.spec import DataConfig

    out = tmp_path / "pokesprite"
    fetch_pokesprite(out, registry=registry.url, version=VERSION, policy=FAST)
    cfg = DataConfig(source=str(out), image_size=32, channels=3, background=(255, 255, 255), resize="fit",
                     labels="folders", min_images=8, cache_dir=str(tmp_path / "cache"))
    data = load_data(cfg)
    assert len(data) == 10 and not data.skipped
    assert data.label_names == {"class": ["regular", "shiny"]}
    images = [img.numpy().transpose(1, 2, 0) for img in data.images]  # (32, 32, 3) each
    # every sprite's opaque colour differs, so each is found by its pixels: the left half
    # (transparent) is the background, the right half the sprite's colour; a few columns in
    # the middle, where the resize blends the two, are left out
    for name, colour in {"ditto (P)": RED, "shiny ditto (P)": (40, 90, 220), "gastly (LA)": (80, 80, 80),
                         "shiny gastly (LA)": (120, 120, 120), "bulbasaur (RGBA)": GREEN}.items():
        found = [px for px in images if (px[:, 20:] == colour).all()]
        assert len(found) == 1, name
        assert (found[0][:, :12] == 255).all(), name

    space = tmp_path / "space.yaml"  # `data inspect` reads a space's data section as training would
    space.write_text(f"name: sprites\ndata: {{source: {out}, image_size: 32, labels: folders, min_images: 8}}\n")
    inspect = subprocess.run([sys.executable, "-m", "vaetune.cli", "data", "inspect", str(space),
                              "--out", str(tmp_path / "preview.png")],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert inspect.returncode == 0, inspect.stderr[-2000:]
    assert "images:   10 usable, 0 skipped" in inspect.stdout
    assert "2 classes: regular 5, shiny 5" in inspect.stdout


def test_shipped_space_reads_the_fetched_folder():
    from vaetune.spec import load_space

    path = Path(__file__).resolve().parent.parent / "search_spaces" / "pokesprite.yaml"
    cfg = load_space(path).default_config()
    assert cfg.data.source == "data/pokesprite" and cfg.data.labels == "folders"
    assert cfg.data.channels == 3 and tuple(cfg.data.background) == (255, 255, 255)
    assert cfg.data.image_size == 32 and cfg.model.arch == "conv" and cfg.resources.gpu == 0
    header = path.read_text().split("\nname:")[0]
    assert "vaetune data fetch pokesprite" in header and "vaetune search search_spaces/pokesprite.yaml" in header
    # KID of the fitted mixture's samples (what vaetune hands out), on a CPU-sized sample, fresh at every ASHA rung
    assert cfg.search.metric == "eval/kid_sample_gmm" and cfg.train.fid_samples < 2048
    assert cfg.search.grace_period % cfg.train.checkpoint_every == 0

