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
    assert cfg.data.channels == 4 and cfg.search.metric == "eval/kid_sample_gmm" and cfg.train.fid_every > 0
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


# ---- the shipped spaces by name, from any folder and from an installed wheel

def _first_sentence(path: Path) -> str:
    """What `vaetune spaces` says of a space, worked out here: its opening comment up to the first '. '."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#") or not line.strip("# "):
            break
        lines.append(line[1:].strip())
    text = " ".join(lines)
    return text[: text.index(". ") + 1] if ". " in text else text


def test_the_quick_start_ranks_by_the_samples_vaetune_sample_draws():
    """The shipped sprites space ranks its trials by the FID of samples drawn from the fitted
    mixture, the sampler a checkpoint of it hands out (vaetune sample, the gallery, the report)."""
    from vaetune.checkpoint import pick_sampler
    from vaetune.metrics import registry

    cfg = _space("sprites").default_config()
    assert cfg.train.prior == "gmm" and cfg.search.metric == "eval/fid_sample_gmm"
    assert registry.get(cfg.search.metric).sampler == cfg.handed_sampler.name == "gmm"
    assert pick_sampler(None, object(), "best.pt", cfg).name == "gmm"  # a checkpoint holding its mixture
    for name in ("emoji", "pokesprite", "villagers", "sprites_front"):  # the other spaces ranked by samples
        c = _space(name).default_config()
        ranked = [registry.get(m).sampler for m in (c.search.metric, *c.search.metrics)]
        assert "normal" not in ranked and c.handed_sampler.name == "gmm", name


def test_vaetune_spaces_lists_every_shipped_space_with_its_sentence(capsys):
    from vaetune import cli

    assert cli.main(["spaces"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines[:-1]}
    assert listed == {p.stem: _first_sentence(p) for p in SPACES}
    assert "sprites" in listed and listed["sprites"].endswith("offline.")
    assert lines[-1].startswith("run one by name from any folder: vaetune search sprites;")
    assert lines[-1].endswith(str(SPACE_DIR / "sprites.yaml"))


def test_a_shipped_space_is_found_by_name_from_any_folder_and_a_users_file_wins(tmp_path, monkeypatch):
    from vaetune.spec import SpecError

    monkeypatch.chdir(tmp_path)  # an empty folder
    for given in ("ygo", "ygo.yaml"):
        space = load_space(given)
        assert Path(space.source) == SPACE_DIR / "ygo.yaml" and space.default_config().name == "ygo"
    (tmp_path / "ygo.yaml").write_text("name: mine\ntrain: {beta: {uniform: [0, 1]}}\n")
    assert load_space("ygo.yaml").default_config().name == "mine"  # the user's own file of that name
    with pytest.raises(SpecError) as err:
        load_space("dragons")
    names = ", ".join(sorted(p.stem for p in SPACES))  # every shipped space, named in the fix
    assert "does not exist" in str(err.value) and f"given by name: {names} (vaetune spaces)" in str(err.value)
    with pytest.raises(SpecError) as err:
        load_space("spaces/ygo.yaml")  # a path is the user's: never a shipped space
    assert "does not exist" in str(err.value) and "vaetune spaces" not in str(err.value)


@pytest.mark.slow
def test_an_installed_wheel_ships_the_spaces_and_trains_and_searches_one_by_name(tmp_path):
    """A wheel built from this checkout, installed (without its dependencies, which this Python has)
    into a folder of its own: it holds the spaces' bytes, and `vaetune train sprites` and `vaetune
    search sprites` run from an empty folder with that copy of vaetune, not the checkout's."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    root = SPACE_DIR.parent
    src = tmp_path / "src"  # a copy, so that the build's own folders stay out of the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    shutil.copytree(root / "vaetune", src / "vaetune", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SPACE_DIR, src / "search_spaces")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w", str(tmp_path / "wheel")],
                   check=True, timeout=600)
    (wheel,) = (tmp_path / "wheel").glob("vaetune-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = {Path(n).stem: z.read(n) for n in z.namelist() if n.startswith("vaetune/spaces/")}
    assert shipped == {p.stem: p.read_bytes() for p in SPACES}
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=600)
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the installed copy before the checkout's
    where = subprocess.run([sys.executable, "-c", "import vaetune; print(vaetune.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(site / "vaetune" / "__init__.py")
    run = subprocess.run([sys.executable, "-m", "vaetune.cli", "train", "sprites", "--out", "run", "--set",
                          "train.epochs=1", "--set", "data.count=300", "--set", "data.image_size=16"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "finished sprites: 1 epochs" in run.stdout and (work / "run" / "checkpoint_epoch0001").is_dir()
    # and `vaetune search sprites`, the same space searched (one trial of one epoch, no FID): its Ray
    # workers import the installed copy too
    tiny = ["search.num_samples=1", "search.max_concurrent=1", "search.metric=val/elbo", "train.epochs=1",
            "train.fid_every=0", "data.count=300", "data.image_size=16"]
    search = subprocess.run([sys.executable, "-m", "vaetune.cli", "search", "sprites",
                             *(a for kv in tiny for a in ("--set", kv))],
                            cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert search.returncode == 0, search.stdout[-2000:] + search.stderr[-2000:]
    assert "1 trials: 1 completed" in search.stdout
    assert (work / "results" / "sprites" / "summary.csv").is_file()
