"""builtin:sprites: deterministic by seed, requested size and count, factors that match the
pixels, and loading through load_data."""

from __future__ import annotations

import pytest
import torch

from vaetune.data import generate_sprites, load_data
from vaetune.data.sprites import COLOURS, SHAPES, centre
from vaetune.errors import UserError
from vaetune.spec import DataConfig

FACTORS = ("shape", "colour", "scale", "rotation", "x", "y")


def test_same_seed_same_images_other_seed_other_images():
    a = generate_sprites(200, 24, seed=1)
    b = generate_sprites(200, 24, seed=1)
    c = generate_sprites(200, 24, seed=2)
    assert torch.equal(a.images, b.images)
    assert all(torch.equal(a.factors[k], b.factors[k]) for k in FACTORS)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("size, channels", [(16, 3), (24, 1), (20, 4)])
def test_shapes_dtypes_and_labels(size, channels):
    s = generate_sprites(150, size, channels=channels)
    assert s.images.shape == (150, channels, size, size) and s.images.dtype == torch.uint8
    assert tuple(s.factors) == FACTORS and tuple(s.labels) == FACTORS
    for name in FACTORS:
        assert s.factors[name].shape == (150,) and s.factors[name].dtype == torch.float32
        assert s.labels[name].dtype == torch.int64
        assert 0 <= s.labels[name].min() and s.labels[name].max() < len(s.label_names[name])
    assert s.label_names["shape"] == list(SHAPES) and s.label_names["colour"] == list(COLOURS)
    assert len(s.labels["shape"].unique()) == len(SHAPES)  # every shape appears in 150 draws
    assert s.images.float().std() > 20  # not blank


def test_shape_sits_at_its_factor_position_on_plain_background():
    size = 32
    s = generate_sprites(200, size, channels=4)
    alpha = s.images[:, 3].float() / 255
    assert ((alpha == 0).float().mean(dim=(1, 2)) > 0.3).all()  # plain background around each shape
    rgb_of_background = s.images[:, :3][(s.images[:, 3:] == 0).expand(-1, 3, -1, -1)]
    assert (rgb_of_background == 255).all()  # transparent pixels carry the (white) background
    coords = torch.arange(size).float() + 0.5
    cx = (alpha.sum(1) * coords).sum(1) / alpha.sum((1, 2)) / size
    cy = (alpha.sum(2) * coords).sum(1) / alpha.sum((1, 2)) / size
    # the centroid of a heart/triangle/star is near, not at, its bounding-circle centre
    x, y = (centre(s.factors["scale"], s.factors[k]) for k in ("x", "y"))
    assert (cx - x).abs().max() < 0.1 and (cy - y).abs().max() < 0.1
    area = alpha.sum((1, 2))
    same_shape = s.factors["shape"] == 1  # circles
    ratio = area[same_shape] / s.factors["scale"][same_shape] ** 2
    assert ratio.std() / ratio.mean() < 0.1  # area grows with scale squared


def test_colour_label_matches_pixels():
    s = generate_sprites(100, 64, seed=3)
    red = s.labels["colour"] == COLOURS.index("red")
    blue = s.labels["colour"] == COLOURS.index("blue")
    centre = s.images[:, :, 32, 32].float()  # scale >= 0.4 and inside bounds: not always covered
    covered = (centre - 255).abs().sum(1) > 30
    assert (centre[red & covered][:, 0] > centre[red & covered][:, 2]).all()
    assert (centre[blue & covered][:, 2] > centre[blue & covered][:, 0]).all()


def test_load_data_sprites(tmp_path):
    cfg = DataConfig(source="builtin:sprites", count=120, image_size=20, cache_dir=str(tmp_path))
    data = load_data(cfg)
    assert data.images.shape == (120, 3, 20, 20)
    assert data.primary_label == "shape" and data.num_classes == len(SHAPES)
    assert set(data.factors) == set(FACTORS)
    seeded = load_data(cfg.model_copy(update={"source": "builtin:sprites?seed=5"}))
    assert seeded.fingerprint != data.fingerprint and not torch.equal(seeded.images, data.images)
    assert torch.equal(seeded.images, generate_sprites(120, 20, seed=5).images)
    unlabelled = load_data(cfg.model_copy(update={"labels": "none"}))
    assert unlabelled.labels == {} and unlabelled.num_classes == 0 and set(unlabelled.factors) == set(FACTORS)
    with pytest.raises(UserError, match="seed must be an integer"):
        load_data(cfg.model_copy(update={"source": "builtin:sprites?seed=x"}))
