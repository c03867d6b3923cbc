"""`vaetune init`: real image folders written here, the space it writes loaded by the spec and run
by a real `vaetune search`; the rules are re-derived in the tests from the images they wrote."""

from __future__ import annotations

import hashlib
import math
import statistics
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image, ImageDraw
from test_search import Env

from vaetune.cli import build_parser, main
from vaetune.errors import UserError
from vaetune.spec import load_space


def run_init(path: Path | str, out: Path, *extra: str) -> int:
    """The `vaetune init` handler through the real parser (its UserErrors reach the test)."""
    args = build_parser().parse_args(["init", str(path), "--out", str(out), *extra])
    return args.run(args)


def shape_image(size: tuple[int, int], mode: str, fill, background) -> Image.Image:
    """A filled ellipse on a background: alpha 0 outside the shape when background has alpha 0."""
    img = Image.new(mode, size, background)
    w, h = size
    ImageDraw.Draw(img).ellipse((w // 6, h // 6, w - w // 6, h - h // 6), fill=fill)
    return img


def comment_of(text: str, key: str) -> str:
    """The comment init wrote for a section key: on its line, or the comment lines above it."""
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(f"  {key}:"))
    if " # " in lines[i]:
        return lines[i].split(" # ", 1)[1]
    above = []
    while lines[i - 1].startswith("  #"):
        i -= 1
        above.insert(0, lines[i].strip("# "))
    return " ".join(above)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """cats/: 12 RGBA 32x32, dark shapes on transparency, and a corrupt file; dogs/: 8 RGB 24x24
    and 6 RGBA 40x40 whose alpha is 255 everywhere (an alpha channel, unused)."""
    root = tmp_path_factory.mktemp("mixed") / "pets"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    for i in range(12):
        shape_image((32, 32), "RGBA", (20 * i, 40, 90, 255), (0, 0, 0, 0)).save(
            root / "cats" / f"c{i:02d}.png"
        )
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    for i in range(8):
        shape_image((24, 24), "RGB", (200, 30 * i, 10), (250, 250, 250)).save(
            root / "dogs" / f"d{i:02d}.png"
        )
    for i in range(6):
        shape_image((40, 40), "RGBA", (10, 120, 20 * i, 255), (90, 90, 90, 255)).save(
            root / "dogs" / f"o{i:02d}.png"
        )
    sizes = [32] * 12 + [24] * 8 + [40] * 6
    return root, sizes


@pytest.fixture(scope="module")
def mixed_space(mixed, tmp_path_factory):
    root, _ = mixed
    out = tmp_path_factory.mktemp("out") / "pets.yaml"
    assert run_init(root, out, "--gpu", "0") == 0
    return out, out.read_text(), load_space(out)


def test_writes_a_space_that_loads_and_states_the_facts(mixed, mixed_space):
    root, sizes = mixed
    out, text, space = mixed_space
    config = space.default_config()
    assert config.name == "pets" and config.data.source == str(root)
    header = text.split("\nname:")[0]
    assert f"Images: {len(sizes)} usable, 1 skipped" in header
    assert "cats/broken.png" in header and "not an image" in header
    assert f"width median {statistics.median(sizes):.0f} px" in header
    assert "cats 12" in header and "dogs 14" in header
    assert text.rstrip().splitlines()[-1] == f"# Run it: vaetune search {out}"
    # every choice carries its reason in a comment
    for key in (
        "image_size",
        "channels",
        "resize",
        "arch",
        "latent_dim",
        "epochs",
        "batch_size",
        "split",
        "fid_samples",
        "metric",
        "num_samples",
        "grace_period",
        "max_concurrent",
    ):
        assert comment_of(text, key), key
    assert "26 training" not in comment_of(text, "batch_size")  # the training split, not all images
    assert f"{round(len(sizes) * 0.8)} training images" in comment_of(text, "batch_size")


def test_choices_follow_from_the_facts(mixed, mixed_space):
    _, sizes = mixed
    _, text, space = mixed_space
    cfg = space.default_config()
    n = len(sizes)
    # all images square -> fit; size: the largest side init offers up to the median side
    assert cfg.data.resize == "fit"
    assert cfg.data.image_size == max(s for s in (16, 32, 48, 64) if s <= statistics.median(sizes))
    assert cfg.model.arch == "conv"  # below 64 px
    # 12 of 26 images have real transparency (> 20%), but their shapes are dark: composite on white
    assert cfg.data.channels == 3 and tuple(cfg.data.background) == (255, 255, 255)
    assert "12 have transparent pixels" in text
    # two sub-folders: labels, and a conditional model offered
    assert cfg.data.labels == "folders" and cfg.model.conditional is False
    assert "true" in comment_of(text, "conditional")
    # a tiny set: a larger validation share, KID as the metric, FID/KID on at most the val split
    assert cfg.data.split.val >= 0.15 and cfg.data.split.test == 0
    val = max(round(n * cfg.data.split.val), 1)
    assert cfg.train.fid_samples <= val
    # KID of the samples its user is handed: z from the fitted mixture, as vaetune sample draws them
    assert cfg.search.metric == "eval/kid_sample_gmm" and cfg.train.fid_every > 0
    assert cfg.train.prior == "gmm" and cfg.handed_sampler.name == "gmm"
    assert cfg.train.fid_reference == "val"
    # ASHA's first rung is within the epochs, checkpoints and grids land on it
    assert cfg.search.grace_period <= cfg.train.epochs and cfg.search.max_t == cfg.train.epochs
    assert cfg.search.grace_period % cfg.train.checkpoint_every == 0
    # the latent choices stay below the pixels of an image
    assert max(space.params["model.latent_dim"].candidates()) < cfg.data.image_size**2


def write_set(
    root: Path,
    sizes: list[tuple[int, int]],
    *,
    mode="RGB",
    fill=(200, 40, 40, 255),
    bg=(255, 255, 255),
):
    root.mkdir(parents=True)
    for i, size in enumerate(sizes):
        shape_image(size, mode, fill, bg).save(root / f"im{i:03d}.png")
    return root


def expected_resize(sizes: list[tuple[int, int]]) -> str:
    """The rule docs/search-spaces.md and init state: >= 90% square (within 10%) -> fit; one shape (p90/p10 of the
    aspect ratios <= 1.25) -> pad; mixed shapes -> crop."""
    aspects = sorted(w / h for w, h in sizes)
    if sum(1 / 1.1 <= a <= 1.1 for a in aspects) >= 0.9 * len(aspects):
        return "fit"
    q = statistics.quantiles(aspects, n=10, method="inclusive")
    return "pad" if q[-1] / q[0] <= 1.25 else "crop"


@pytest.mark.parametrize("kind", ["wide", "mixed"])
def test_resize_mode_follows_the_aspect_ratios(tmp_path, kind):
    sizes = [(48, 24)] * 20 if kind == "wide" else [(48, 24)] * 10 + [(24, 48)] * 10
    root = write_set(tmp_path / kind, sizes)
    run_init(root, tmp_path / "s.yaml")
    cfg = load_space(tmp_path / "s.yaml").default_config()
    assert cfg.data.resize == expected_resize(sizes) == {"wide": "pad", "mixed": "crop"}[kind]
    # pad scales the longer side to S, crop the shorter: S is not larger than that side
    side = 48 if cfg.data.resize == "pad" else 24
    assert cfg.data.image_size <= side


def test_alpha_is_kept_only_when_compositing_would_erase_the_shapes(tmp_path):
    light = write_set(
        tmp_path / "light", [(32, 32)] * 20, mode="RGBA", fill=(250, 250, 250, 255), bg=(0, 0, 0, 0)
    )
    opaque = write_set(
        tmp_path / "opaque",
        [(32, 32)] * 20,
        mode="RGBA",
        fill=(250, 250, 250, 255),
        bg=(0, 0, 0, 255),
    )
    run_init(light, tmp_path / "light.yaml")
    run_init(opaque, tmp_path / "opaque.yaml")
    assert load_space(tmp_path / "light.yaml").default_config().data.channels == 4
    assert load_space(tmp_path / "opaque.yaml").default_config().data.channels == 3
    assert "0 have transparent pixels" in (tmp_path / "opaque.yaml").read_text()


def test_gpus_given_share_them_between_trials(mixed, tmp_path):
    root, _ = mixed
    run_init(root, tmp_path / "gpu.yaml", "--gpu", "2")
    cfg = load_space(tmp_path / "gpu.yaml").default_config()
    assert cfg.resources.gpu > 0
    # every running trial has its GPU share: no more trials run than the two GPUs hold
    assert (
        1 <= cfg.search.max_concurrent and cfg.search.max_concurrent * cfg.resources.gpu <= 2 + 1e-9
    )
    assert "--gpu" in (tmp_path / "gpu.yaml").read_text()

    run_init(root, tmp_path / "cpu.yaml", "--gpu", "0")
    cpu = load_space(tmp_path / "cpu.yaml").default_config()
    assert cpu.resources.gpu == 0 and cpu.train.num_threads == cpu.resources.cpu == 1


@pytest.mark.parametrize(
    "cpus, gpus, concurrent, gpu, threads",
    [
        (16, 2, 8, 0.25, 2),  # four small trials per GPU, the 16 cores shared out between them
        (2, 2, 2, 1.0, 1),  # two cores: two trials, so each has a whole GPU
        (3, 1, 3, 0.33, 1),  # three trials on one GPU: shares that add up to at most one
        (4, 0, 4, 0.0, 1),  # no GPU: one single-threaded trial per core
    ],
)
def test_resources_from_cores_and_gpus(mixed, cpus, gpus, concurrent, gpu, threads):
    from vaetune.init_space import Machine, inspect_source, suggest
    from vaetune.spec import space_from_dict

    machine = Machine(cpus=cpus, gpus=gpus, gpu_memory_gib=80.0 if gpus else None)
    cfg = space_from_dict(suggest(inspect_source(mixed[0]), machine).space).default_config()
    assert (cfg.search.max_concurrent, cfg.resources.gpu, cfg.train.num_threads) == (
        concurrent,
        gpu,
        threads,
    )
    assert cfg.resources.cpu == threads
    assert cfg.search.num_samples >= 2 * concurrent or not gpus


def test_a_zip_reads_like_the_folder(mixed, mixed_space, tmp_path):
    root, sizes = mixed
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(root.parent).as_posix())
    run_init(archive, tmp_path / "z.yaml", "--name", "pets_zip")
    cfg = load_space(tmp_path / "z.yaml").default_config()
    assert cfg.data.source == str(archive) and cfg.name == "pets_zip"
    assert f"Images: {len(sizes)} usable, 1 skipped" in (tmp_path / "z.yaml").read_text()
    folder_cfg = mixed_space[2].default_config()
    assert (cfg.data.image_size, cfg.data.channels, cfg.data.resize) == (
        folder_cfg.data.image_size,
        folder_cfg.data.channels,
        folder_cfg.data.resize,
    )


def test_mistakes(mixed, tmp_path):
    root, _ = mixed
    out = tmp_path / "existing.yaml"
    out.write_text("name: mine\n")
    before = hashlib.sha256(out.read_bytes()).hexdigest()
    with pytest.raises(UserError) as err:
        run_init(root, out)
    assert str(out) in str(err.value) and "exists" in str(err.value) and "\n" not in str(err.value)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == before

    with pytest.raises(UserError, match="does not exist"):
        run_init(tmp_path / "no_such_folder", tmp_path / "a.yaml")

    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("a.txt", "b.txt", "table.csv"):
        (notes / name).write_text("x")
    with pytest.raises(UserError) as err:
        run_init(notes, tmp_path / "b.yaml")
    assert (
        "no image files" in str(err.value)
        and "2 .txt" in str(err.value)
        and "1 .csv" in str(err.value)
    )

    text_file = tmp_path / "list.txt"
    text_file.write_text("x")
    with pytest.raises(UserError, match="not a .zip"):
        run_init(text_file, tmp_path / "c.yaml")
    with pytest.raises(UserError, match="--gpu"):
        run_init(root, tmp_path / "d.yaml", "--gpu", "-1")
    with pytest.raises(UserError, match="name"):
        run_init(root, tmp_path / "e.yaml", "--name", "two words")
    assert not any((tmp_path / f"{c}.yaml").exists() for c in "abcde")


def test_vaetune_init_through_the_command_line(mixed, tmp_path, capsys):
    assert main(["init", str(mixed[0]), "--out", str(tmp_path / "r.yaml"), "--gpu", "0"]) == 0
    assert load_space(tmp_path / "r.yaml").default_config().name == "pets"
    assert f"run: vaetune search {tmp_path / 'r.yaml'}" in capsys.readouterr().out
    assert main(["init", str(mixed[0]), "--out", str(tmp_path / "r.yaml")]) == 2  # never overwritten
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "r.yaml" in err and "Traceback" not in err


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.cleanup()


@pytest.mark.slow
def test_the_written_space_runs_as_is(env):
    """48 sprites of 16 px on disk -> init -> `vaetune search` of the written file, unchanged."""
    folder = env.tmp / "tiny"
    folder.mkdir()
    for i in range(48):
        colour = (60 + 4 * i, 200 - 3 * i, 40 + 2 * i, 255)
        shape_image((16, 16), "RGBA", colour, (0, 0, 0, 0)).save(folder / f"s{i:02d}.png")
    out = env.tmp / "tiny.yaml"
    assert run_init(folder, out, "--gpu", "0") == 0  # a CPU search, whatever this machine has
    raw = yaml.safe_load(out.read_text())
    cfg = load_space(out).default_config()
    # init's own rules keep a tiny CPU search short: few trials, ASHA at a few rungs
    assert cfg.search.num_samples <= 8 and cfg.train.epochs <= 30

    proc = env.run("search", out.name)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # a folder vaetune never saw starts from the portfolio: its points take the random start-up trials'
    # place after the space's own (docs/search-spaces.md): all the trials beyond those when fewer than 4,
    # else min(10, max(2, concurrency, ceil(trials / 3))) less the own points
    s = cfg.search
    own, n = len(s.points_to_evaluate), s.num_samples
    points = n - own if n - own < 4 else min(10, max(2, s.max_concurrent, math.ceil(n / 3))) - own
    assert points > 0 and proc.stdout.splitlines()[0].count(f"; portfolio: {points} point") == 1, proc.stdout[:500]
    summary = pd.read_csv(env.tmp / "results" / raw["name"] / "summary.csv")
    assert len(summary) == cfg.search.num_samples
    assert (summary["status"] != "errored").all()
    kid = summary[f"best/{cfg.search.metric}"]
    assert kid.notna().any() and all(math.isfinite(v) for v in kid.dropna())
