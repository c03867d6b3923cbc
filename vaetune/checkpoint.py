"""Checkpoint files and the model they hold: what a training state holds, written atomically,
read without running code, from this machine or remote storage (`open_checkpoint`, `load_model_at`);
and the trained model in use (images read as its data was, class
labels, samples, reconstructions, the module MLflow serves).

A checkpoint is one dict saved with `torch.save` and read with `torch.load(weights_only=True)`,
so an untrusted file cannot execute code on load. It carries everything needed to rebuild the
model and continue training: weights, optimiser, epoch, RNG states, the resolved config, the
data's shape and labels, the last metrics and the vaetune version; unless `train.prior` was
none, also the latent prior fitted to its weights ("prior": plain tensors, `load_prior`).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.fileio import atomic_write, is_remote
from vaetune.samplers import GMM, NORMAL, Sampler
from vaetune.samplers import get as get_sampler

CHECKPOINT_FILE = "checkpoint.pt"
GRIDS_DIR = "grids"  # beside checkpoint.pt in a checkpoint folder: that epoch's reconstruction and sample grids


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save to a temporary file beside `path`, then rename: readers never see half a file."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """Read a checkpoint (a file, or a folder holding checkpoint.pt) without unpickling code."""
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint there (expected a .pt file or a folder with {CHECKPOINT_FILE})")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a corrupt or foreign file is the user's to fix, not a crash
        first = str(exc).strip().split("\n")[0].split(". ")[0][:160]
        raise UserError(f"{path}: not a readable vaetune checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UserError(f"{path}: not a vaetune checkpoint (it lacks 'model' and 'config')")
    return state


def load_model(path: str | Path, device: str = "cpu"):
    """Rebuild the VAE stored in a checkpoint. Returns (model in eval mode, Config, checkpoint dict)."""
    from vaetune.models import build_model
    from vaetune.spec import stored_config

    state = load_checkpoint(path)
    config = stored_config(state["config"], f"{path} (stored config)")
    meta = state.get("data", {})
    model = build_model(config.model, tuple(meta["image_shape"]), meta.get("num_classes", 0))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config, state


@contextlib.contextmanager
def open_checkpoint(path: str) -> Iterator[Path]:
    """A checkpoint folder (or file) as a local path; a remote one (s3://...) is fetched through Ray's
    Checkpoint into a temporary folder that is removed afterwards."""
    if not is_remote(path):
        yield Path(path)
        return
    from ray import tune

    with tempfile.TemporaryDirectory() as tmp:
        tune.Checkpoint(path).to_directory(tmp)
        yield Path(tmp)


def load_checkpoint_at(path: str) -> dict:
    """`load_checkpoint` of a local or remote checkpoint."""
    with open_checkpoint(path) as local:
        return load_checkpoint(local)


def load_model_at(path: str):
    """`load_model` of a local or remote checkpoint: (model, Config, dict)."""
    with open_checkpoint(path) as local:
        return load_model(local)


def load_prior(state: dict, path: str | Path, latent_dim: int):
    """The fitted latent prior (vaetune.models.LatentMixture) a checkpoint holds; None: it has none.

    Args:
        state: the checkpoint's dict (`load_checkpoint`, `load_model`).
        path: the checkpoint's file, for messages.
        latent_dim: the model's latent size, which the prior must match.
    """
    raw = state.get("prior")
    if raw is None:
        return None
    from vaetune.models import LatentMixture

    try:
        prior = LatentMixture.from_state(raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: its latent prior cannot be read ({exc})") from None
    if prior.dim != latent_dim:
        raise UserError(f"{path}: its latent prior has {prior.dim} dimensions, the model's latent "
                        f"{latent_dim}")
    return prior


# ---------------------------------------------------------------------------------------------
# using the model a checkpoint holds: its images, labels, samples, reconstructions


def sample_images(model, n: int, *, label: int | None = None, seed: int = 0, prior=None):
    """n images (n, C, H, W) in [0, 1] decoded from z ~ N(0, I), or from `prior` (a fitted
    vaetune.models.LatentMixture) when given; a conditional model decodes `label` (default 0)."""
    import torch

    if n < 1:
        raise UserError(f"--n: got {n}; give at least 1")
    y = class_labels(model, n, label)
    with torch.no_grad():
        return model.sample(n, y, generator=torch.Generator().manual_seed(seed), prior=prior)


def pick_sampler(asked: str | None, prior, path: str, config=None) -> Sampler:
    """The sampler (vaetune.samplers) `vaetune sample` draws z with: the one asked for; else the one
    that ranked the model in its search (`Config.handed_sampler` of the checkpoint's `config`; the
    fitted mixture for a checkpoint without one), or N(0, I) when the checkpoint lacks its mixture.

    Args:
        asked: --sampler as given (an older alias too), or None.
        prior: the checkpoint's fitted latent mixture (`load_prior`), or None.
        path: the checkpoint, for messages.
        config: the checkpoint's Config, or None.
    """
    if asked is None:
        handed = config.handed_sampler if config is not None else GMM
        return NORMAL if handed.fitted and prior is None else handed
    try:
        sampler = get_sampler(asked)
    except ValueError as exc:
        raise UserError(f"--sampler: {exc}") from None
    if sampler.fitted and prior is None:
        raise UserError(f"--sampler {sampler.name}: {path} holds no fitted latent mixture (trained with "
                        f"train.prior: none, or by a vaetune without one); use --sampler {NORMAL.name} for "
                        "z ~ N(0, I)")
    return sampler


def read_for_model(path: str, config):
    """One image file decoded the way the model's data was: float (1, C, H, W) in [0, 1]."""
    from vaetune.data import load_image

    return load_image(path, **_decoding(config)).float().div(255)[None]


def decode_for_model(data: bytes, name: str, config):
    """An image's bytes (an upload named `name`) decoded the way the model's data was: float
    (1, C, H, W) in [0, 1]; a UserError naming it when they are not a usable image."""
    from vaetune.data import image_from_bytes

    return image_from_bytes(data, name, **_decoding(config)).float().div(255)[None]


def _decoding(config) -> dict:
    """The data settings an image is read with for a model: size, channels, background, resizing."""
    d = config.data
    return {"image_size": d.image_size, "channels": d.channels, "background": tuple(d.background), "resize": d.resize}


def reconstruct(model, config, path: str):
    """(input, reconstruction) of one image file, each (1, C, H, W) in [0, 1]."""
    import torch

    if model.num_classes:
        raise UserError("reconstruct needs labels for a conditional model; use sample --label instead")
    x = read_for_model(path, config)
    with torch.no_grad():
        return x, model(x).recon


def class_labels(model, n: int, label: int | None):
    """Labels (n,) for a conditional model's decoder (`label`, default 0); None for an unconditional one."""
    import torch

    if not model.num_classes:
        if label is not None:
            raise UserError("--label: this model is not conditional")
        return None
    label = 0 if label is None else label
    if not 0 <= label < model.num_classes:
        raise UserError(f"--label: got {label}; this model has classes 0..{model.num_classes - 1}")
    return torch.full((n,), label, dtype=torch.long)


def _reconstructor_class():
    import torch

    class _Reconstructor(torch.nn.Module):
        """Image batch in [0, 1] (B, C, H, W) -> reconstruction: what a served VAE answers."""

        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, x):
            return self.vae(x).recon

    return _Reconstructor


def Reconstructor(vae):  # noqa: N802 - builds a module; torch is imported lazily
    return _reconstructor_class()(vae)
