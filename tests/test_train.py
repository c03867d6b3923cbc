"""The training loop: metrics, checkpoints, grids, resume equality, divergence, `vaetune train`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from vaetune.checkpoint import load_checkpoint, load_model
from vaetune.data import load_data
from vaetune.losses import DivergedError
from vaetune.spec import space_from_dict
from vaetune.train import latest_checkpoint, train

METRICS = {"train/loss", "train/recon", "train/kl", "val/recon", "val/kl", "val/elbo", "val/psnr", "val/ssim",
           "val/mse", "val/active_units", "beta", "lr", "epoch"}


def tiny(tmp_path: Path, **train) -> dict:
    return {
        "name": "tiny",
        "data": {"source": "builtin:sprites", "image_size": 16, "count": 300, "cache_dir": str(tmp_path / "cache"),
                 "augment": {"hflip": 0.5, "brightness": 0.1}},
        "model": {"arch": "conv", "width": 8, "latent_dim": 4},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.003, "num_threads": 1, "grid_size": 4,
                  "beta_schedule": "linear", "warmup_epochs": 2, **train},
    }


def test_train_reports_every_metric_every_epoch_and_writes_checkpoints(tmp_path):
    config = space_from_dict(tiny(tmp_path)).resolve()
    reports = []
    final = train(config, lambda m, c, a: reports.append((m, c, a)), tmp_path / "run")
    assert [m["epoch"] for m, _, _ in reports] == [1, 2, 3]
    for metrics, ckpt, artifacts in reports:
        assert METRICS <= set(metrics), METRICS - set(metrics)
        assert all(torch.isfinite(torch.tensor(float(metrics[k]))) for k in METRICS)
        assert ckpt is not None and (ckpt / "checkpoint.pt").exists()
        assert sorted(p.name for p in artifacts) == [f"recon_epoch{metrics['epoch']:04d}.png",
                                                      f"samples_epoch{metrics['epoch']:04d}.png"]
    assert reports[0][0]["beta"] < reports[2][0]["beta"] == pytest.approx(1.0)  # linear warm-up
    assert final["val/elbo"] < reports[0][0]["val/elbo"]  # it learns
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert state["epoch"] == 3 and state["config"]["model"]["latent_dim"] == 4 and state["version"]
    assert {"torch", "shuffle"} <= set(state["rng"]) and "optimizer" in state
    model, cfg, _ = load_model(latest_checkpoint(tmp_path / "run"))
    assert model.sample(2).shape == (2, 3, 16, 16) and cfg.name == "tiny"
    grid = Image.open(tmp_path / "run" / "grids" / "samples_epoch0003.png")
    assert grid.size == (4 * 17 + 1, 4 * 17 + 1)  # 4x4 images of 16 px with 1 px padding


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    config = space_from_dict(tiny(tmp_path)).resolve()
    data = load_data(config.data)
    train(config, None, tmp_path / "straight", data=data)
    short = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 2})})
    train(short, None, tmp_path / "interrupted", data=data)
    resumed = []
    train(config, lambda m, c, a: resumed.append(m["epoch"]), tmp_path / "interrupted", data=data,
          resume=latest_checkpoint(tmp_path / "interrupted"))
    assert resumed == [3]  # continues at the next epoch
    a = load_checkpoint(tmp_path / "straight" / "checkpoint_epoch0003")["model"]
    b = load_checkpoint(tmp_path / "interrupted" / "checkpoint_epoch0003")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_divergence_raises_a_clear_error(tmp_path):
    config = space_from_dict(tiny(tmp_path, lr=1e8)).resolve()
    with pytest.raises(DivergedError, match=r"at epoch 1, step \d+ \(lr=.*\): lower train.lr"):
        train(config, None, tmp_path / "run")


def test_conditional_model_trains_on_sprite_labels(tmp_path):
    raw = tiny(tmp_path, epochs=1)
    raw["model"]["conditional"] = True
    config = space_from_dict(raw).resolve()
    train(config, None, tmp_path / "run")
    model, _, state = load_model(latest_checkpoint(tmp_path / "run"))
    assert model.num_classes == len(state["data"]["label_names"]["shape"])
    y = torch.arange(model.num_classes)
    assert model.sample(model.num_classes, y).shape == (model.num_classes, 3, 16, 16)


def test_vaetune_train_command(tmp_path):
    space = tmp_path / "space.yaml"
    raw = tiny(tmp_path, lr={"loguniform": [0.001, 0.01]})
    space.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "vaetune.cli", "train", str(space), "--set", "train.epochs=2", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "train.lr=0.003162" in proc.stdout  # the documented default of a loguniform: geometric mean
    assert "finished tiny: 2 epochs" in proc.stdout
    assert (out / "checkpoint_epoch0002" / "checkpoint.pt").exists()
    assert {p.name for p in (out / "grids").iterdir()} >= {"recon_epoch0001.png", "samples_epoch0002.png"}
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"] == 2
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert again.returncode == 2 and "use --resume" in again.stderr and "Traceback" not in again.stderr


def test_training_images_go_to_the_device_only_when_they_fit():
    from vaetune.train import DEVICE_DATA_FRACTION, fits_on_device

    gib = 2**30
    assert fits_on_device(1 * gib, 80 * gib)  # a 1 GiB cache on an empty 80 GiB GPU
    assert not fits_on_device(30 * gib, 80 * gib)  # kept in pinned host memory instead
    assert fits_on_device(int(DEVICE_DATA_FRACTION * 8 * gib), 8 * gib)
    assert not fits_on_device(int(DEVICE_DATA_FRACTION * 8 * gib) + 1, 8 * gib)


def test_batches_cover_the_split_once_per_epoch_in_a_seeded_order():
    import torch

    from vaetune.train import place_batches

    images = torch.arange(10 * 3 * 2 * 2, dtype=torch.int32).remainder(256).to(torch.uint8).view(10, 3, 2, 2)
    labels = torch.arange(10)
    batches = place_batches(images, labels, 4, "cpu")
    assert batches.copy_to is None and batches.images.data_ptr() == images.data_ptr()  # used in place, no copies
    assert len(batches) == 3
    got = list(batches.epoch(torch.Generator().manual_seed(0)))
    again = list(batches.epoch(torch.Generator().manual_seed(0)))
    assert [len(x) for x, _ in got] == [4, 4, 2]
    seen = torch.cat([y for _, y in got])
    assert sorted(seen.tolist()) == list(range(10))  # every image once
    for (x, y), (x2, y2) in zip(got, again, strict=True):
        assert torch.equal(y, y2) and torch.equal(x, x2)
        assert x.dtype == torch.float32 and torch.equal(x, images[y].float() / 255)  # labels follow their images
