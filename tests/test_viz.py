"""The latent-space picture commands on real checkpoints: the session's search (tests/test_report.py)
exported with `vaetune export`, and a 2-D latent model trained with `vaetune train`.

Each command runs through the CLI entry point in-process and must write an image of the size its
layout implies: a grid of R x C images of H x W is `vaetune.viz.grid_pixels(R, C, H, W)`. The tests
at the end read the pictures back for what a person would check: an interpolation runs from one
reconstruction to the other, a traversal varies around the image's own reconstruction, the
manifold shows the encoder's means, a walk comes back to where it started.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
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


@pytest.mark.slow
def test_interpolate_row_both_modes(ckpt, images, work, run):
    assert run("interpolate", str(ckpt), images[0], images[1], "--steps", "7", "--out", "i.png") == 0
    assert size(work / "i.png") == grid_pixels(2, 7 + 2, H, W)  # lerp row, slerp row; A | 7 | B


@pytest.mark.slow
def test_interpolate_one_mode(ckpt, images, work, run):
    assert run("interpolate", str(ckpt), images[0], images[1], "--mode", "slerp", "--out", "s.png") == 0
    assert size(work / "s.png") == grid_pixels(1, 10 + 2, H, W)


@pytest.mark.slow
def test_interpolate_grid_lerp_and_slerp_side_by_side(ckpt, images, work, run):
    assert run("interpolate", str(ckpt), "--grid", *images, "--out", "g.png") == 0
    assert size(work / "g.png") == grid_pixels(10, 10 + 1 + 10, H, W)


@pytest.mark.slow
def test_interpolate_needs_two_images(ckpt, images, run, capsys):
    assert run("interpolate", str(ckpt), images[0]) == 2
    assert "two images" in capsys.readouterr().err


@pytest.mark.slow
def test_traverse_rows_sorted_by_kl(ckpt, work, run, capsys):
    assert run("traverse", str(ckpt), "--steps", "5", "--out", "t.png") == 0
    assert size(work / "t.png") == grid_pixels(LATENT, 5, H, W)
    kls = [float(k) for k in re.findall(r"KL ([0-9.]+) nats", capsys.readouterr().out)]
    assert len(kls) == LATENT and kls == sorted(kls, reverse=True)


@pytest.mark.slow
def test_traverse_with_data_space(ckpt, work, run):
    assert run("traverse", str(ckpt), "--data", "space.yaml", "--out", "t2.png") == 0
    assert size(work / "t2.png") == grid_pixels(LATENT, 9, H, W)


@pytest.mark.slow
def test_manifold_pca_coloured_by_label(ckpt, work, run):
    assert run("manifold", str(ckpt), "--data", "space.yaml", "--label", "colour", "--out", "m.png") == 0
    assert size(work / "m.png") == (600, 700)  # 7 x 6 inches at 100 dpi
    assert not (work / "m_grid.png").exists()  # a 4-D latent has no plane to decode


@pytest.mark.slow
def test_manifold_unknown_label(ckpt, run, capsys):
    assert run("manifold", str(ckpt), "--data", "space.yaml", "--label", "nope") == 2
    assert "shape" in capsys.readouterr().err


@pytest.mark.slow
def test_manifold_2d_latent_also_decodes_the_plane(plane_model, work, run):
    ckpt = sorted(plane_model.glob("checkpoint_epoch*"))[-1]
    assert run("manifold", str(ckpt), "--data", "plane.yaml", "--grid-steps", "6", "--out", "p.png") == 0
    assert size(work / "p.png") == (600, 700)
    assert size(work / "p_grid.png") == grid_pixels(6, 6, H, W)


@pytest.mark.slow
def test_walk_gif(ckpt, work, run):
    assert run("walk", str(ckpt), "--frames", "12", "--anchors", "3", "--out", "walk.gif") == 0
    with Image.open(work / "walk.gif") as gif:
        assert gif.n_frames == 12
        assert gif.size == (W * gif_scale(H, W), H * gif_scale(H, W))


@pytest.mark.slow
def test_progress_of_a_ray_trial(work, run, capsys):
    trial = next((work / "results" / NAME).glob("run_trial_*"))
    kept = len(list(trial.glob("checkpoint_*/checkpoint.pt")))
    assert kept >= 1
    assert run("progress", str(trial), "--n", "5", "--out", "pr.png") == 0
    assert size(work / "pr.png") == grid_pixels(5, 1 + kept, H, W)
    epochs = [int(e) for e in capsys.readouterr().out.split("then epochs ")[1].split("\n")[0].split(", ")]
    assert epochs == sorted(epochs) and epochs[-1] == 3


@pytest.mark.slow
def test_progress_of_a_train_folder(plane_model, work, run):
    assert run("progress", str(plane_model), "--n", "3", "--out", "pt.png") == 0
    assert size(work / "pt.png") == grid_pixels(3, 1 + 2, H, W)  # original + epochs 1 and 2


@pytest.mark.slow
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


# ---------------------------------------------------------------------------------------------
# What the pictures show, read back from the files the commands write. A small model trained
# here with `vaetune train` (seconds), so that these run without the session's search.

SMALL_LATENT = 4


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(folder, checkpoint, model, config) of a 4-D latent conv VAE trained for two epochs."""
    from vaetune.checkpoint import load_model

    folder = tmp_path_factory.mktemp("small_model")
    raw = {"name": "small", "data": {"source": "builtin:sprites", "image_size": H, "count": 300,
                                     "cache_dir": str(folder / "cache")},
           "model": {"arch": "conv", "width": 8, "latent_dim": SMALL_LATENT},
           "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "beta": 0.1, "num_threads": 1, "grid_size": 4,
                     "fid_every": 0}}
    (folder / "small.yaml").write_text(yaml.safe_dump(raw))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert cli(["train", "small.yaml", "--out", "run"]) == 0
    finally:
        os.chdir(cwd)
    ckpt = sorted((folder / "run").glob("checkpoint_epoch*"))[-1]
    model, config, _ = load_model(ckpt)
    return folder, ckpt, model, config


def in_folder(folder: Path, *args: str) -> int:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return cli(list(args))
    finally:
        os.chdir(cwd)


def cells(path: Path, h: int = H, w: int = W) -> torch.Tensor:
    """The images of a grid PNG as uint8 (rows, cols, C, h, w): each cell between the PAD lines."""
    from vaetune.viz import PAD

    with Image.open(path) as im:
        arr = torch.from_numpy(np.asarray(im.convert("RGB")).copy())  # (H', W', 3)
    rows, cols = (arr.shape[0] - PAD) // (h + PAD), (arr.shape[1] - PAD) // (w + PAD)
    out = torch.empty(rows, cols, 3, h, w, dtype=torch.uint8)
    for r in range(rows):
        for c in range(cols):
            top, left = PAD + r * (h + PAD), PAD + c * (w + PAD)
            out[r, c] = arr[top:top + h, left:left + w].permute(2, 0, 1)
    return out


def as_png_pixels(images: torch.Tensor) -> torch.Tensor:
    """Decoded images (N, C, H, W) in [0, 1] as the uint8 a PNG stores (round to nearest)."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to one level of 255: a decoded code computed in another batch may round the
    other way at a .5 boundary."""
    return (a.int() - b.int()).abs().max().item() <= 1


def val_pngs(folder: Path, config, n: int) -> tuple[list[str], torch.Tensor]:
    """The first n validation images as PNG files, and the same images as the model reads them."""
    from torchvision.utils import save_image

    from vaetune.checkpoint import read_for_model
    from vaetune.data import load_data

    x, _ = load_data(config.data).subset("val")
    paths = []
    for i in range(n):
        paths.append(str(folder / f"val{i}.png"))
        save_image(x[i:i + 1].float() / 255, paths[-1])
    return paths, torch.cat([read_for_model(p, config) for p in paths])


@torch.no_grad()
def reconstruction(model, x: torch.Tensor) -> torch.Tensor:
    """What `vaetune reconstruct` shows: the decoded posterior mean, one image at a time."""
    return torch.cat([model.decode(model.encode(x[i:i + 1])[0]) for i in range(len(x))])


def test_an_interpolation_runs_from_one_reconstruction_to_the_other(small):
    folder, ckpt, model, config = small
    paths, x = val_pngs(folder, config, 2)
    ends = as_png_pixels(reconstruction(model, x))
    assert not close(ends[0], ends[1])  # two different images: the ends tell them apart
    assert in_folder(folder, "interpolate", str(ckpt), *paths, "--steps", "5", "--out", "i.png") == 0
    grid = cells(folder / "i.png")  # lerp row, slerp row: A | 5 decoded codes | B
    for row in grid:
        assert torch.equal(row[0], as_png_pixels(x[:1])[0]) and torch.equal(row[-1], as_png_pixels(x[1:])[0])
        assert close(row[1], ends[0]) and close(row[5], ends[1])  # t = 0 and t = 1: the reconstructions
        assert not close(row[3], row[1]) and not close(row[3], row[5])  # the middle is neither end


def test_a_traversal_row_varies_around_the_reconstruction_at_its_centre(small, capsys):
    folder, ckpt, model, config = small
    _, x = val_pngs(folder, config, 1)
    assert in_folder(folder, "traverse", str(ckpt), "--data", "small.yaml", "--steps", "5", "--out", "t.png") == 0
    grid = cells(folder / "t.png")  # one row per dimension, 5 steps over [-3, 3] around the code
    assert grid.shape[:2] == (SMALL_LATENT, 5)
    centre = as_png_pixels(reconstruction(model, x))[0]  # step 3 of 5 is offset 0: the image's own code
    for row in grid:
        assert close(row[2], centre)
    # the most informative dimension (row 1, largest KL) changes the picture from end to end
    assert (grid[0, 0].int() - grid[0, -1].int()).abs().max().item() > 16
    assert "row 1: z[" in capsys.readouterr().out


@pytest.mark.slow
def test_a_manifold_plots_the_encoders_means(small):
    """The 2-D manifold of a 4-D latent is the means' first two principal components: drawn by
    hand from the encoder's means (sklearn's PCA, not vaetune's), the figure is the same; drawn
    from the means of shuffled images (points moved to other colours), it is not."""
    from sklearn.decomposition import PCA

    from vaetune.data import load_data
    from vaetune.viz import manifold_figure

    folder, ckpt, model, config = small
    assert in_folder(folder, "manifold", str(ckpt), "--data", "small.yaml", "--label", "colour", "--out", "m.png") == 0
    data = load_data(config.data)
    x, _ = data.subset("val")
    with torch.no_grad():
        mu = model.encode(x.float() / 255)[0]  # the encoder's means, one batch
    pca = PCA(2).fit(mu.numpy())
    coords = torch.from_numpy(pca.transform(mu.numpy())).float()
    ours = _pixels((folder / "m.png").read_bytes())
    axes = [f"PC1 ({100 * pca.explained_variance_ratio_[0]:.0f}% of variance)",
            f"PC2 ({100 * pca.explained_variance_ratio_[1]:.0f}%)"]
    labels, names = data.labels["colour"][data.splits["val"]], data.label_names["colour"]
    title = f"{len(x)} validation encodings, {SMALL_LATENT}-D latent (PCA)"
    best = None
    for signs in ([1, 1], [1, -1], [-1, 1], [-1, -1]):  # a principal axis has no sign of its own
        by_hand = _pixels(manifold_figure(coords * torch.tensor(signs), axes, labels, names, "colour", title))
        diff = (by_hand.int() - ours.int()).abs().gt(0).any(-1).float().mean().item()
        best = diff if best is None else min(best, diff)
    assert best < 0.002  # the same figure, up to antialiasing where rounding moved a point
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    other = _pixels(manifold_figure(coords, axes, shuffled, names, "colour", title))
    assert (other.int() - ours.int()).abs().gt(0).any(-1).float().mean().item() > 10 * best


def _pixels(png: bytes) -> torch.Tensor:
    import io

    with Image.open(io.BytesIO(png)) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy())


def test_a_walk_returns_to_where_it_started(small):
    folder, ckpt, model, config = small
    frames = 24
    assert in_folder(folder, "walk", str(ckpt), "--frames", str(frames), "--anchors", "3", "--out", "w.gif") == 0
    with Image.open(folder / "w.gif") as gif:
        shots = []
        for i in range(gif.n_frames):
            gif.seek(i)
            shots.append(torch.from_numpy(np.asarray(gif.convert("RGB")).copy()).float())
    steps = [(shots[i + 1] - shots[i]).abs().mean().item() for i in range(frames - 1)]
    back = (shots[0] - shots[-1]).abs().mean().item()  # the step that closes the loop
    far = max((shots[0] - s).abs().mean().item() for s in shots)
    assert far > 0 and back <= max(steps)  # the last frame is one ordinary step from the first
    assert back < far / 2  # and much nearer to it than the walk goes away
