"""Every search space shipped in search_spaces/ loads and validates; the five collection spaces
point at the folders `vaetune data fetch/prepare` write and keep their documented settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaetune.spec import load_space

SPACE_DIR = Path(__file__).resolve().parent.parent / "search_spaces"
SPACES = sorted(SPACE_DIR.glob("*.yaml"))
COLLECTIONS = ("ygo", "pokemon", "villagers", "apples", "impressionism")


def _space(name: str):
    return load_space(SPACE_DIR / f"{name}.yaml")


def test_search_spaces_exist():
    assert SPACES, "search_spaces/*.yaml matched nothing"
    assert {p.stem for p in SPACES} >= set(COLLECTIONS)


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_space_loads_and_validates(path):
    space = load_space(path)
    config = space.default_config()
    assert config.name == path.stem
    points = space.base.get("search", {}).get("points_to_evaluate") or []
    for point in points:
        space.resolve(point)


@pytest.mark.parametrize("name", COLLECTIONS)
def test_collection_space_reads_the_fetched_folder(name):
    assert _space(name).default_config().data.source == f"data/{name}"
    header = (SPACE_DIR / f"{name}.yaml").read_text().split("\nname:")[0]
    assert "vaetune data" in header and "vaetune search" in header


def test_collection_specifics():
    ygo = _space("ygo")
    assert ygo.resolve().model.arch == "resnet" and ygo.resolve().model.downsample == 8
    assert ygo.params["train.beta"].args == (0.005, 2.0)
    betas = [p["train.beta"] for p in ygo.base["search"]["points_to_evaluate"]]
    assert betas == [1.0, 0.1, 0.01]

    pokemon = _space("pokemon").default_config()  # the first point: the original MLP
    assert (pokemon.model.arch, pokemon.model.width, pokemon.model.latent_dim) == ("mlp", 1024, 16)
    assert (pokemon.train.recon_weight, pokemon.train.lr, pokemon.train.lr_schedule) == (10, 0.0005, "cosine")
    assert pokemon.train.lr_warmup_epochs > 0 and pokemon.data.image_size == 40
    assert _space("pokemon").params["model.arch"].args == ("mlp", "conv")

    villagers = _space("villagers")
    assert villagers.params["model.latent_dim"].candidates() == [1, 8]
    cfg = villagers.default_config()
    assert cfg.data.channels == 4 and cfg.search.metric == "eval/kid_sample" and cfg.train.fid_every > 0
    assert cfg.data.augment.hflip > 0
    # FID/KID must be fresh at every ASHA rung
    assert cfg.search.grace_period % cfg.train.fid_every == 0

    apples = _space("apples").default_config()
    assert apples.model.conditional and apples.data.labels == "folders" and apples.data.image_size == 64

    imp = _space("impressionism")
    assert imp.params["data.image_size"].args == (64, 128)
    for size in (64, 128):  # both pass the architecture's down-sampling check
        assert imp.resolve({"data.image_size": size}).data.image_size == size
    assert imp.params["train.beta_schedule"].args == ("linear", "cyclical")
    assert imp.params["model.latent_dim"].candidates() == [64, 256]
    assert imp.default_config().model.conditional
