"""The training loop: metrics, checkpoints, grids, resume equality, divergence, the callback
contract, a trial's checkpoints at ASHA's rungs, `vaetune train` (also killed and resumed)."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from vaetune.checkpoint import load_checkpoint, load_model
from vaetune.data import load_data
from vaetune.models import DivergedError
from vaetune.spec import space_from_dict
from vaetune.train import Callback, EachEpoch, latest_checkpoint, standard_callbacks, train

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
    record = EachEpoch(lambda e: reports.append((e.metrics, e.checkpoint, e.artifacts)))
    final = train(config, [*standard_callbacks(config, tmp_path / "run"), record])
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
    train(config, standard_callbacks(config, tmp_path / "straight"), data=data)
    short = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 2})})
    train(short, standard_callbacks(short, tmp_path / "interrupted"), data=data)
    resumed = []
    record = EachEpoch(lambda e: resumed.append(e.metrics["epoch"]))
    train(config, [*standard_callbacks(config, tmp_path / "interrupted"), record], data=data,
          resume=latest_checkpoint(tmp_path / "interrupted"))
    assert resumed == [3]  # continues at the next epoch
    straight = load_checkpoint(tmp_path / "straight" / "checkpoint_epoch0003")
    interrupted = load_checkpoint(tmp_path / "interrupted" / "checkpoint_epoch0003")
    a, b = straight["model"], interrupted["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the latent prior (train.prior gmm, the default) is fitted at every checkpoint: the same
    for key in ("weights", "means", "scale"):
        assert torch.equal(straight["prior"][key], interrupted["prior"][key]), key
    # and fitting it draws from none of training's random streams: without it, the same weights
    no_prior = config.train.model_copy(update={"prior": "none"})
    unfitted = config.model_copy(update={"train": no_prior})
    train(unfitted, standard_callbacks(unfitted, tmp_path / "unfitted"), data=data)
    c = load_checkpoint(tmp_path / "unfitted" / "checkpoint_epoch0003")
    assert "prior" not in c and all(torch.equal(a[key], c["model"][key]) for key in a)


@pytest.mark.slow
def test_each_checkpoint_holds_the_prior_of_its_weights_and_a_trial_reports_its_metrics(tmp_path):
    """FID (8 images) at epoch 2 only; checkpoints at epochs 1 and 2: the prior is fitted at both,
    to the posterior means of the checkpoint's own model. In a trial the eval/ keys of the fitted
    prior are NaN placeholders at epoch 1 (the search metric may be one of them) and measured at 2;
    with train.prior none they are never reported and no checkpoint holds a prior."""
    from vaetune.metrics import GMM_KEYS
    from vaetune.metrics.registry import generative
    from vaetune.models import LatentMixture, encode_means, fit_prior
    from vaetune.search import trial_callbacks

    raw = tiny(tmp_path, epochs=2, fid_every=2, fid_samples=8, prior_components=3)
    raw["search"] = {"metric": "eval/fid_sample_gmm"}
    config = space_from_dict(raw).resolve()
    data = load_data(config.data)
    reports: dict[int, dict] = {}

    def report(end):
        reports[end.epoch] = dict(end.metrics)

    train(config, trial_callbacks(config, tmp_path / "trial", [], report), data=data)
    assert set(generative(True)) <= set(reports[1])
    assert all(math.isnan(reports[1][k]) for k in GMM_KEYS)
    assert all(math.isfinite(reports[2][k]) for k in GMM_KEYS) and reports[2]["eval/epoch"] == 2
    images, _ = data.subset("train")
    for epoch in (1, 2):
        path = tmp_path / "trial" / f"checkpoint_epoch{epoch:04d}" / "checkpoint.pt"
        state = torch.load(path, weights_only=True)  # plain tensors, strings and ints
        model, _, _ = load_model(path)
        prior = LatentMixture.from_state(state["prior"])
        means = encode_means(model, images, device="cpu")  # all: fewer than max_points
        expected = fit_prior(means, components=3, covariance="diag", seed=config.train.seed)
        assert prior.components == 3 and prior.covariance == "diag"
        for key in ("weights", "means", "scale"):
            torch.testing.assert_close(getattr(prior, key), getattr(expected, key), rtol=1e-4,
                                       atol=1e-5)

    raw["train"]["prior"], raw["search"] = "none", {}
    unfitted = space_from_dict(raw).resolve()
    reports.clear()
    train(unfitted, trial_callbacks(unfitted, tmp_path / "unfitted", [], report), data=data)
    assert not set(GMM_KEYS) & (set(reports[1]) | set(reports[2]))
    assert math.isfinite(reports[2]["eval/fid_sample"])
    assert "prior" not in load_checkpoint(tmp_path / "unfitted" / "checkpoint_epoch0002")


def test_divergence_raises_a_clear_error(tmp_path):
    config = space_from_dict(tiny(tmp_path, lr=1e8)).resolve()
    with pytest.raises(DivergedError, match=r"at epoch 1, step \d+ \(lr=.*\): lower train.lr"):
        train(config)


def test_conditional_model_trains_on_sprite_labels(tmp_path):
    raw = tiny(tmp_path, epochs=1)
    raw["model"]["conditional"] = True
    config = space_from_dict(raw).resolve()
    train(config, standard_callbacks(config, tmp_path / "run"))
    model, _, state = load_model(latest_checkpoint(tmp_path / "run"))
    assert model.num_classes == len(state["data"]["label_names"]["shape"])
    y = torch.arange(model.num_classes)
    assert model.sample(model.num_classes, y).shape == (model.num_classes, 3, 16, 16)


@pytest.mark.slow
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


class Recorder(Callback):
    """Everything the loop hands a callback, in the order it arrives."""

    def __init__(self):
        self.events: list[tuple] = []

    def on_train_start(self, start):
        self.events.append(("start", start.epoch, dict(start.metrics)))

    def on_step_end(self, epoch, step):
        self.events.append(("step", epoch, step))

    def on_epoch_end(self, end):
        self.events.append(("end", end.epoch, dict(end.metrics), end.checkpoint,
                            [p.name for p in end.artifacts]))


class Marker(Callback):
    """Adds a metric of its own: the callbacks after it, and the checkpoint, must see it."""

    def on_epoch_end(self, end):
        end.metrics["test/marker"] = 10.0 * end.epoch


def test_callbacks_see_every_epoch_in_order_with_its_metrics_and_checkpoint(tmp_path):
    config = space_from_dict(tiny(tmp_path, checkpoint_every=2, grid_every=2)).resolve()
    data = load_data(config.data)
    steps = math.ceil(len(data.subset("train")[0]) / config.train.batch_size)
    rec = Recorder()
    final = train(config, [Marker(), *standard_callbacks(config, tmp_path / "run"), rec], data=data)

    expected = [("start", 0, {})]
    for epoch in (1, 2, 3):
        expected += [("step", epoch, step) for step in range(1, steps + 1)] + [("end", epoch)]
    assert [e[:2] if e[0] == "end" else e for e in rec.events] == expected
    ends = {e[1]: e[2:] for e in rec.events if e[0] == "end"}
    for epoch, (metrics, _, _) in ends.items():
        assert metrics["epoch"] == epoch and metrics["test/marker"] == 10.0 * epoch
        # beta at the epoch's last step, warm-up over 2 epochs: t / 2 at t = epoch - 1 / steps
        assert metrics["beta"] == pytest.approx(min(1.0, (epoch - 1 / steps) / 2))
    assert ends[1][1:] == (None, [])  # checkpoint_every 2, grid_every 2: nothing at epoch 1
    for epoch in (2, 3):  # every second epoch, and the last
        metrics, ckpt, artifacts = ends[epoch]
        assert ckpt == tmp_path / "run" / f"checkpoint_epoch{epoch:04d}"
        state = load_checkpoint(ckpt)
        assert state["epoch"] == epoch
        assert _as_saved(state["metrics"], metrics)  # the marker's metric included
        assert artifacts == [f"recon_epoch{epoch:04d}.png", f"samples_epoch{epoch:04d}.png"]
    assert final == ends[3][0]

    again = Recorder()  # resumed: starts at the checkpoint's epoch and metrics, runs the rest
    train(config, [again], data=data, resume=ends[2][1])
    assert again.events[:1] == [("start", 2, again.events[0][2])] and _as_saved(again.events[0][2], ends[2][0])
    assert [e[1] for e in again.events if e[0] == "end"] == [3]


def _as_saved(saved: dict, live: dict) -> bool:
    """A checkpoint's metrics are the epoch's as they were when it was written: all equal but
    time/checkpoint_s, which goes on to count the save itself afterwards."""
    saved, live = dict(saved), dict(live)
    return (saved.pop("time/checkpoint_s") <= live.pop("time/checkpoint_s")
            and saved == pytest.approx(live))


def test_a_trial_checkpoints_at_each_rung_where_asha_may_stop_it(tmp_path):
    from vaetune.search import trial_callbacks

    config = space_from_dict(tiny(tmp_path, checkpoint_every=3, grid_every=3)).resolve()
    data = load_data(config.data)

    def reported(rungs: list[int]) -> dict[int, int | None]:
        """epoch -> the epoch of the checkpoint reported with it (None: reported without one)."""
        got = {}

        def report(end):  # in a trial, tune.report: the checkpoint it ships must hold this epoch
            got[end.epoch] = load_checkpoint(end.checkpoint)["epoch"] if end.checkpoint else None

        train(config, trial_callbacks(config, tmp_path / f"rungs{rungs}", rungs, report), data=data)
        return got

    assert reported([1]) == {1: 1, 2: None, 3: 3}  # ASHA's rung at epoch 1, and the last epoch
    assert reported([]) == {1: None, 2: None, 3: 3}  # FIFO: checkpoint_every 3 alone


@pytest.mark.slow
def test_vaetune_train_killed_mid_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    space = tmp_path / "space.yaml"
    # batch 2: 120 steps, about a second of CPU an epoch here; the kill follows the line of epoch 1,
    # and four more epochs of the child's CPU time separate it from the run's end
    space.write_text(yaml.safe_dump(tiny(tmp_path, epochs=5, batch_size=2)))
    cmd = [sys.executable, "-m", "vaetune.cli", "train", str(space), "--out"]
    straight = subprocess.run(cmd + [str(tmp_path / "straight")], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]

    out = tmp_path / "killed"
    with open(tmp_path / "killed.err", "w") as err:
        proc = subprocess.Popen(cmd + [str(out)], stdout=subprocess.PIPE, stderr=err, text=True,
                                cwd=tmp_path)
        try:
            for line in proc.stdout:
                if line.startswith("epoch 1:"):  # after epoch 1's checkpoint, as epoch 2 starts
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "killed.err").read_text()[-2000:]
    before = sorted(p.name for p in out.glob("checkpoint_epoch*"))
    assert before[0] == "checkpoint_epoch0001"
    assert "checkpoint_epoch0005" not in before  # killed before its end

    resumed = subprocess.run(cmd + [str(out), "--resume"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "finished tiny: 5 epochs" in resumed.stdout
    lines = [ln.split(":")[0] for ln in resumed.stdout.splitlines() if ln.startswith("epoch ")]
    first = int(before[-1].removeprefix("checkpoint_epoch")) + 1
    assert lines == [f"epoch {e}" for e in range(first, 6)]  # continued, not run again from epoch 1
    a = load_checkpoint(tmp_path / "straight" / "checkpoint_epoch0005")["model"]
    b = load_checkpoint(out / "checkpoint_epoch0005")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


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
