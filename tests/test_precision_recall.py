"""Improved precision and recall: prdc parity, known answers, evaluate_generative, `vaetune fid --pr`.

Inception runs at ~5 images/s on this CPU, so the image sets here have 6 images of 32 px (the
smallest that k = 3 allows with room to spare), drawn like tests/test_fid.py's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from prdc import compute_prdc
from test_fid import _shapes, conv_vae, sprites

from vaetune.cli import main
from vaetune.commands.fid import load_image_set
from vaetune.metrics import (
    PR_K,
    evaluate_generative,
    image_features,
    precision_recall,
    reference_path,
)
from vaetune.metrics import _precision_recall as pr_module
from vaetune.metrics._features import quantize
from vaetune.models import TrainConfig

N_IMAGES = 6

# a fresh vaetune cache and an empty torch hub for the Inception weights (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("offline_caches")


def _direct(real: np.ndarray, fake: np.ndarray, k: int):
    """Distances and k-NN radii by the definition, with explicit differences (no expansion)."""
    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def radii(f):
        d = dist(f, f)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    return dist(real, fake), radii(real), radii(fake)


def _random(rng):
    return rng.normal(size=(150, 16)), 1.2 * rng.normal(size=(120, 16)) + 0.1


def _clustered(rng):
    centres = rng.normal(size=(4, 32)) * 6
    real = centres[rng.integers(0, 4, 200)] + rng.normal(size=(200, 32))
    fake = centres[rng.choice(4, 160, p=[0.55, 0.35, 0.1, 0.0])] + 0.8 * rng.normal(size=(160, 32))
    return real, fake


@pytest.mark.parametrize("make", [_random, _clustered])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_equals_prdc_on_tie_free_features(make, k):
    real, fake = make(np.random.default_rng(k))
    d, r_real, r_fake = _direct(real, fake, k)
    # Tie-free: no distance within 1e-9 of a radius it is compared with, so prdc's "<" and our
    # "<=" (and rounding in either) decide every pair the same way.
    assert np.abs(d - r_real[:, None]).min() > 1e-9 and np.abs(d - r_fake[None, :]).min() > 1e-9
    theirs = compute_prdc(real, fake, nearest_k=k)
    precision, recall = precision_recall(real, fake, k=k)
    assert precision == pytest.approx(theirs["precision"], abs=1e-6)
    assert recall == pytest.approx(theirs["recall"], abs=1e-6)
    assert 0 < precision < 1 and 0 < recall < 1  # a comparison that could fail either way


def test_block_boundaries_do_not_change_the_result(monkeypatch):
    real, fake = _clustered(np.random.default_rng(0))
    whole = precision_recall(real, fake)
    monkeypatch.setattr(pr_module, "BLOCK_ELEMENTS", 7 * len(real))  # 7 rows per block, ragged last block
    assert precision_recall(real, fake) == whole


def test_identical_sets_give_one_and_one_even_with_duplicates():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 8))
    assert precision_recall(points, points.copy()) == (1.0, 1.0)
    # Each point 4 times: with k = 3 every radius is 0. A copy of the set lies on those radii
    # exactly: inside a closed ball (ours, the authors'), outside an open one (prdc).
    dup = np.repeat(points, 4, axis=0)
    assert precision_recall(dup, dup.copy(), k=3) == (1.0, 1.0)
    theirs = compute_prdc(dup, dup.copy(), nearest_k=3)
    assert theirs["precision"] == theirs["recall"] == 0.0


def test_far_apart_sets_give_zero_and_zero():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 8)), rng.normal(size=(50, 8)) + 100.0
    d, r_real, r_fake = _direct(real, fake, PR_K)
    assert d.min() > max(r_real.max(), r_fake.max())  # by construction: no ball reaches the other set
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_samples_of_one_of_two_real_clusters_give_precision_one_recall_one_half():
    """Real: clusters A and B of 25 points each, far apart. Fake: A shifted by one small vector.

    Fake point a + s is |s| from real a, and |s| is below every radius in A (a radius within
    A; B is too far to be a neighbour), so precision is 1. A common shift keeps fake radii equal
    to A's, so real a lies in fake a + s's ball (recall for A); no fake ball reaches B. Recall =
    25 / 50 = 0.5 exactly.
    """
    rng = np.random.default_rng(2)
    a = rng.normal(size=(25, 8))
    b = rng.normal(size=(25, 8)) + 50.0
    real = np.concatenate([a, b])
    _, r_real, _ = _direct(real, real, PR_K)
    shift = np.full(8, 1.0) * 0.5 * r_real[:25].min() / np.sqrt(8)  # |shift| = half the smallest radius of A
    precision, recall = precision_recall(real, a + shift)
    assert precision == 1.0
    assert recall == 0.5


@pytest.mark.parametrize(("real", "fake", "k", "message"), [
    (np.zeros((10, 4)), np.zeros((10, 4)), 0, "k must be a positive integer"),
    (np.zeros((3, 4)), np.zeros((10, 4)), 3, "real features have 3 rows; k=3 needs at least 4"),
    (np.zeros((10, 4)), np.zeros((4, 4)), 4, "fake features have 4 rows; k=4 needs at least 5"),
    (np.zeros((10, 4)), np.zeros((10, 5)), 3, r"differ in dimension \(4 and 5\)"),
    (np.zeros(10), np.zeros((10, 4)), 3, r"must be \(N, d\)"),
    (np.full((10, 4), np.nan), np.zeros((10, 4)), 3, "NaN or infinite"),
])
def test_bad_inputs_are_clear_errors(real, fake, k, message):
    with pytest.raises(ValueError, match=message):
        precision_recall(real, fake, k=k)


# ---------------------------------------------------------------------------------------------
# evaluate_generative and `vaetune fid --pr` through the real FID Inception


def memorizer(data, images: torch.Tensor):
    """The registry's conv VAE whose samples are exactly `images`, whatever z it draws: samples
    that are the reference images, so precision and recall must both be 1."""
    model = conv_vae(data)
    model.sample = lambda n, y=None, generator=None, prior=None: images[:n].float() / 255
    return model


@pytest.mark.slow
def test_evaluate_generative_reports_precision_and_recall_of_the_samples(tmp_path):
    data = sprites(tmp_path)
    cfg = TrainConfig(fid_every=1, fid_samples=N_IMAGES, fid_reference="val", seed=5)
    reference, _ = data.subset("val")
    out = evaluate_generative(memorizer(data, reference[:N_IMAGES]), data, cfg, "cpu", cache_dir=tmp_path)
    assert (out["eval/precision"], out["eval/recall"]) == (1.0, 1.0)

    model = conv_vae(data)
    out = evaluate_generative(model, data, cfg, "cpu", cache_dir=tmp_path)  # reference from the cache
    assert {"eval/fid_sample", "eval/fid_recon", "eval/kid_sample", "eval/kid_sample_std", "eval/fid_n",
            "eval/precision", "eval/recall"} == set(out)
    assert 0 <= out["eval/precision"] <= 1 and 0 <= out["eval/recall"] <= 1
    # The same numbers from the cached real features and the regenerated seeded samples
    with np.load(next((tmp_path / "fid").glob("*.npz"))) as f:
        real = f["features"]
    model.eval()
    samples = quantize(model.sample(N_IMAGES, generator=torch.Generator().manual_seed(cfg.seed)))
    expected = precision_recall(real, image_features(samples, "cpu"), k=PR_K)
    assert (out["eval/precision"], out["eval/recall"]) == pytest.approx(expected, abs=1e-12)
    assert reference_path(tmp_path, next((tmp_path / "fid").glob("*.npz")).stem).is_file()


@pytest.mark.slow
def test_too_few_images_for_k_give_nan_not_a_crash(tmp_path):
    cfg = TrainConfig(fid_every=1, fid_samples=3, fid_reference="val")
    data = sprites(tmp_path)
    out = evaluate_generative(conv_vae(data), data, cfg, "cpu", cache_dir=tmp_path)
    assert np.isnan(out["eval/precision"]) and np.isnan(out["eval/recall"])
    assert np.isfinite(out["eval/fid_sample"])


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pr_images")
    sets = {"discs": _shapes(N_IMAGES, 21, "discs"), "bars": _shapes(N_IMAGES, 22, "bars"),
            "few": _shapes(PR_K, 23, "discs")}
    for name, images in sets.items():
        (root / name).mkdir()
        for i, im in enumerate(images):
            im.save(root / name / f"{i:03d}.png")
    return {name: root / name for name in sets}


def _lines(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.strip().splitlines())


@pytest.mark.slow
def test_fid_command_prints_precision_and_recall(folders):
    cmd = [sys.executable, "-m", "vaetune.cli", "fid", str(folders["discs"]), str(folders["bars"]), "--pr",
           "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = _lines(done.stdout)
    real, fake = (image_features(load_image_set(str(folders[n])), "cpu") for n in ("discs", "bars"))
    precision, recall = precision_recall(real, fake, k=PR_K)
    assert float(lines["Precision"]) == pytest.approx(precision, abs=1e-6)
    assert float(lines["Recall"]) == pytest.approx(recall, abs=1e-6)
    assert lines["k"] == str(PR_K) and lines["N"] == f"{N_IMAGES} / {N_IMAGES}"


@pytest.mark.slow
def test_fid_command_pr_of_a_set_with_itself_and_of_too_few_images(folders, capsys):
    assert main(["fid", str(folders["discs"]), str(folders["discs"]), "--pr", "--device", "cpu"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert (float(lines["Precision"]), float(lines["Recall"])) == (1.0, 1.0)

    assert main(["fid", str(folders["discs"]), str(folders["few"]), "--pr"]) == 2
    err = capsys.readouterr().err
    assert f"{folders['few']}: --pr needs at least {PR_K + 1} images" in err and "Traceback" not in err
