"""The latent-space picture commands on real checkpoints: the session's search (tests/test_report.py)
exported with `vaetune export`, and a 2-D latent model trained with `vaetune train`.

Each command runs through the CLI entry point in-process and must write an image of the size its
layout implies: a grid of R x C images of H x W is `vaetune.viz.grid_pixels(R, C, H, W)`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from test_report import NAME, finished_search

from vaetune.cli import main as cli
from vaetune.viz import gif_scale, grid_pixels, nearest_pixel, slerp

H = W = 16  # the search's image size
LATENT = 4


def size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.height, im.width


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return finished_search(tmp_path_factory)


@pytest.fixture(scope="module")
def run(work):
    """Run `vaetune ARGS...` in the search's folder; returns its exit code."""
    def _run(*args: str) -> int:
        cwd = os.getcwd()
        os.chdir(work)
        try:
            return cli(list(args))
        finally:
            os.chdir(cwd)

    return _run


@pytest.fixture(scope="module")
def ckpt(work, run) -> Path:
    assert run("export", f"results/{NAME}", "--out", "best.pt") == 0
    return work / "best.pt"


@pytest.fixture(scope="module")
def images(work) -> list[str]:
    """Four validation images of the search's data, as PNG files."""
    from torchvision.utils import save_image

    from vaetune.data import load_data
    from vaetune.spec import load_space

    data = load_data(load_space(work / "space.yaml").default_config().data)
    x, _ = data.subset("val")
    paths = []
    for i in range(4):
        path = work / f"img{i}.png"
        save_image(x[i:i + 1].float() / 255, path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def plane_model(work, run) -> Path:
    """A 2-D latent model from `vaetune train --out` (checkpoint_epochNNNN/ folders)."""
    raw = yaml.safe_load((work / "space.yaml").read_text())
    raw["name"] = "plane"
    raw["model"]["latent_dim"] = 2
    raw["train"].update(beta=1.0, epochs=2, fid_every=0)
    del raw["search"]["metric"]  # the search's, a FID of the fitted prior: without FID, val/elbo
    (work / "plane.yaml").write_text(yaml.safe_dump(raw))
    assert run("train", "plane.yaml", "--out", "plane_run") == 0
    return work / "plane_run"


def test_interpolate_row_both_modes(ckpt, images, work, run):
    assert run("interpolate", str(ckpt), images[0], images[1], "--steps", "7", "--out", "i.png") == 0
    assert size(work / "i.png") == grid_pixels(2, 7 + 2, H, W)  # lerp row, slerp row; A | 7 | B


def test_interpolate_one_mode(ckpt, images, work, run):
    assert run("interpolate", str(ckpt), images[0], images[1], "--mode", "slerp", "--out", "s.png") == 0
    assert size(work / "s.png") == grid_pixels(1, 10 + 2, H, W)


def test_interpolate_grid_lerp_and_slerp_side_by_side(ckpt, images, work, run):
    assert run("interpolate", str(ckpt), "--grid", *images, "--out", "g.png") == 0
    assert size(work / "g.png") == grid_pixels(10, 10 + 1 + 10, H, W)


def test_interpolate_needs_two_images(ckpt, images, run, capsys):
    assert run("interpolate", str(ckpt), images[0]) == 2
    assert "two images" in capsys.readouterr().err


def test_traverse_rows_sorted_by_kl(ckpt, work, run, capsys):
    assert run("traverse", str(ckpt), "--steps", "5", "--out", "t.png") == 0
    assert size(work / "t.png") == grid_pixels(LATENT, 5, H, W)
    kls = [float(k) for k in re.findall(r"KL ([0-9.]+) nats", capsys.readouterr().out)]
    assert len(kls) == LATENT and kls == sorted(kls, reverse=True)


def test_traverse_with_data_space(ckpt, work, run):
    assert run("traverse", str(ckpt), "--data", "space.yaml", "--out", "t2.png") == 0
    assert size(work / "t2.png") == grid_pixels(LATENT, 9, H, W)


def test_manifold_pca_coloured_by_label(ckpt, work, run):
    assert run("manifold", str(ckpt), "--data", "space.yaml", "--label", "colour", "--out", "m.png") == 0
    assert size(work / "m.png") == (600, 700)  # 7 x 6 inches at 100 dpi
    assert not (work / "m_grid.png").exists()  # a 4-D latent has no plane to decode


def test_manifold_unknown_label(ckpt, run, capsys):
    assert run("manifold", str(ckpt), "--data", "space.yaml", "--label", "nope") == 2
    assert "shape" in capsys.readouterr().err


def test_manifold_2d_latent_also_decodes_the_plane(plane_model, work, run):
    ckpt = sorted(plane_model.glob("checkpoint_epoch*"))[-1]
    assert run("manifold", str(ckpt), "--data", "plane.yaml", "--grid-steps", "6", "--out", "p.png") == 0
    assert size(work / "p.png") == (600, 700)
    assert size(work / "p_grid.png") == grid_pixels(6, 6, H, W)


def test_walk_gif(ckpt, work, run):
    assert run("walk", str(ckpt), "--frames", "12", "--anchors", "3", "--out", "walk.gif") == 0
    with Image.open(work / "walk.gif") as gif:
        assert gif.n_frames == 12
        assert gif.size == (W * gif_scale(H, W), H * gif_scale(H, W))


def test_progress_of_a_ray_trial(work, run, capsys):
    trial = next((work / "results" / NAME).glob("run_trial_*"))
    kept = len(list(trial.glob("checkpoint_*/checkpoint.pt")))
    assert kept >= 1
    assert run("progress", str(trial), "--n", "5", "--out", "pr.png") == 0
    assert size(work / "pr.png") == grid_pixels(5, 1 + kept, H, W)
    epochs = [int(e) for e in capsys.readouterr().out.split("then epochs ")[1].split("\n")[0].split(", ")]
    assert epochs == sorted(epochs) and epochs[-1] == 3


def test_progress_of_a_train_folder(plane_model, work, run):
    assert run("progress", str(plane_model), "--n", "3", "--out", "pt.png") == 0
    assert size(work / "pt.png") == grid_pixels(3, 1 + 2, H, W)  # original + epochs 1 and 2


def test_neighbours_pixel_and_inception(ckpt, work, run, capsys):
    assert run("neighbours", str(ckpt), "--data", "space.yaml", "--n", "2", "--pool", "8", "--out", "nb.png") == 0
    assert size(work / "nb.png") == grid_pixels(2, 3, H, W)  # sample | pixel NN | Inception NN
    assert size(work / "nb_hist.png") == (400, 1000)  # two panels, 10 x 4 inches at 100 dpi
    assert "median RMS pixel distance" in capsys.readouterr().out


def test_nearest_pixel_finds_an_exact_copy():
    bank = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    queries = bank[[7, 31]].float() / 255
    d, i = nearest_pixel(queries, bank, chunk=16)
    assert i.tolist() == [7, 31]
    assert torch.allclose(d, torch.zeros(2), atol=1e-6)


def test_slerp_ends_and_norm():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    assert slerp(a, b, 0.5).norm() == pytest.approx(3.0)
