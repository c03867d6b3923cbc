"""Checkpoint files: what a training state holds, written atomically, read without running code.

A checkpoint is one dict saved with `torch.save` and read with `torch.load(weights_only=True)`,
so an untrusted file cannot execute code on load. It carries everything needed to rebuild the
model and continue training: weights, optimiser, epoch, RNG states, the resolved config, the
data's shape and labels, the last metrics and the vaetune version; unless `train.prior` was
none, also the latent prior fitted to its weights ("prior": plain tensors, `load_prior`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaetune.errors import UserError
from vaetune.fileio import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"


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


def load_prior(state: dict, path: str | Path, latent_dim: int):
    """The fitted latent prior (vaetune.prior.LatentMixture) a checkpoint holds; None: it has none.

    Args:
        state: the checkpoint's dict (`load_checkpoint`, `load_model`).
        path: the checkpoint's file, for messages.
        latent_dim: the model's latent size, which the prior must match.
    """
    raw = state.get("prior")
    if raw is None:
        return None
    from vaetune.prior import LatentMixture

    try:
        prior = LatentMixture.from_state(raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: its latent prior cannot be read ({exc})") from None
    if prior.dim != latent_dim:
        raise UserError(f"{path}: its latent prior has {prior.dim} dimensions, the model's latent "
                        f"{latent_dim}")
    return prior
