"""The CUDA code paths: bf16 autocast in the loop, pinned-memory batches, the CUDA random state
across a resume, the GPU memory figures, Inception on CUDA, fractional GPUs per trial.

Every test here carries the `gpu` marker: collected on every machine (`pytest -m gpu
--collect-only` lists them), skipped with the reason where torch sees no CUDA device
(tests/conftest.py). scripts/gpu-check.sh runs them on a GPU machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hold import all_alive_at_once
from test_fid import sprites
from test_search import Env, space
from test_train import tiny

from vaetune.checkpoint import load_checkpoint
from vaetune.data import load_data
from vaetune.metrics import fid_from_features, image_features
from vaetune.metrics._features import BATCH_CUDA, auto_batch_size
from vaetune.spec import space_from_dict
from vaetune.train import latest_checkpoint, place_batches, standard_callbacks, train

pytestmark = pytest.mark.gpu


def cuda_config(tmp_path: Path, **train_opts):
    return space_from_dict(tiny(tmp_path, device="cuda", **train_opts)).resolve()


def test_bf16_autocast_runs_the_model_in_bf16_and_fp32_otherwise(tmp_path):
    """train.amp bf16: the convolutions of the training steps compute in bfloat16; off: float32."""
    seen: dict[str, set[torch.dtype]] = {}

    def record(module, args, out):
        if isinstance(module, torch.nn.Conv2d) and module.training:
            seen.setdefault(amp, set()).add(out.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        for amp in ("bf16", "off"):
            config = cuda_config(tmp_path / amp, amp=amp, epochs=1)
            final = train(config, standard_callbacks(config, tmp_path / amp / "run"))
            assert np.isfinite(final["val/elbo"]) and np.isfinite(final["train/loss"])
    finally:
        hook.remove()
    assert seen == {"bf16": {torch.bfloat16}, "off": {torch.float32}}


def test_batches_from_pinned_host_memory_equal_those_kept_on_the_gpu(monkeypatch):
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(10)
    on_gpu = place_batches(images, labels, 4, "cuda")  # 1 KB: fits, kept on the device
    assert on_gpu.copy_to is None and on_gpu.images.is_cuda
    # a GPU with 1 KiB free: the images stay in pinned host memory, each batch copied over
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *args: (1024, 80 * 2**30))
    pinned = place_batches(images, labels, 4, "cuda")
    assert pinned.copy_to == "cuda" and pinned.images.is_pinned() and not pinned.images.is_cuda
    a = list(on_gpu.epoch(torch.Generator().manual_seed(0)))
    b = list(pinned.epoch(torch.Generator().manual_seed(0)))
    assert len(a) == len(b) == 3
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert xb.is_cuda and yb.is_cuda and xb.dtype == torch.float32
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert torch.equal(xb.cpu(), images[yb.cpu()].float() / 255)  # each image beside its label


def test_a_resumed_bf16_run_on_cuda_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    """The reparameterisation noise is drawn on the GPU: equal weights after a resume need CUDA's
    random state saved in the checkpoint and restored, besides torch's and the shuffle's."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (set before its first use)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    config = cuda_config(tmp_path, amp="bf16")
    data = load_data(config.data)
    train(config, standard_callbacks(config, tmp_path / "straight"), data=data)
    short = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 2})})
    train(short, standard_callbacks(short, tmp_path / "interrupted"), data=data)
    assert "cuda" in load_checkpoint(latest_checkpoint(tmp_path / "interrupted"))["rng"]
    torch.cuda.manual_seed_all(12345)  # a resumed process starts with some other CUDA state
    train(config, standard_callbacks(config, tmp_path / "interrupted"), data=data,
          resume=latest_checkpoint(tmp_path / "interrupted"))
    a = load_checkpoint(tmp_path / "straight" / "checkpoint_epoch0003")["model"]
    b = load_checkpoint(tmp_path / "interrupted" / "checkpoint_epoch0003")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key].cpu(), b[key].cpu()), key


def test_gpu_memory_figures_count_what_a_trial_allocated(tmp_path):
    config = cuda_config(tmp_path, epochs=1)
    final = train(config, standard_callbacks(config, tmp_path / "run"))
    held = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")  # 256 MiB more, still held
    after = train(config, standard_callbacks(config, tmp_path / "again"))
    del held
    for figures in (final, after):
        assert 0 < figures["sys/gpu_peak_mem_mb"] <= figures["sys/gpu_peak_reserved_mb"]
    assert after["sys/gpu_peak_mem_mb"] >= 256  # the peak since the process started includes it


@pytest.fixture(scope="module")
def sprite_sets(offline_caches, tmp_path_factory):
    """Two sets of 32 built-in sprites (uint8): training and validation images."""
    data = sprites(tmp_path_factory.mktemp("gpu_sprites"))
    train_x, _ = data.subset("train")
    return train_x[:32], train_x[32:64]


def test_inception_on_cuda_takes_large_batches_and_gives_the_cpus_fid(sprite_sets):
    assert auto_batch_size("cuda") == BATCH_CUDA and auto_batch_size("cuda:0") == BATCH_CUDA
    a, b = sprite_sets
    on_cpu = fid_from_features(image_features(a, "cpu"), image_features(b, "cpu"))
    on_gpu = fid_from_features(image_features(a, "cuda"), image_features(b, "cuda"))
    assert on_cpu > 0
    assert on_gpu == pytest.approx(on_cpu, rel=1e-3)


def test_four_trials_of_a_quarter_gpu_run_at_once_on_one_gpu(tmp_path):
    """resources.gpu 0.25: Ray packs four trials onto the one GPU. Each trial's actor is held
    (SIGSTOP) as it appears until all four are alive, so they ran together however fast they are."""
    e = Env(tmp_path)
    raw = space(tmp_path, "packed", num_samples=4, max_concurrent=4, scheduler="fifo", sampler="random")
    raw["resources"] = {"cpu": 1, "gpu": 0.25}
    raw["train"].update(epochs=2, device="cuda")
    log = tmp_path / "packed.log"
    with log.open("w") as out:
        driver = subprocess.Popen(e.cmd("search", str(e.write(raw))), cwd=tmp_path, env=e.env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    visible: set[str | None] = set()
    try:
        at_once, code = all_alive_at_once(e.ray_tmp, driver, 4, lambda held: visible.update(
            _env_of(pid).get("CUDA_VISIBLE_DEVICES") for pid in held))
    finally:
        e.cleanup()
    said = log.read_text()[-3000:]
    assert at_once == 4 and code == 0, said
    assert len(visible) == 1 and None not in visible, visible  # the four see the same one GPU
    summary = pd.read_csv(tmp_path / "results" / "packed" / "summary.csv")
    assert (summary["status"] == "completed").all() and len(summary) == 4
    assert (summary["final/sys/gpu_peak_mem_mb"] > 0).all()  # each trained on the GPU


def _env_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)
