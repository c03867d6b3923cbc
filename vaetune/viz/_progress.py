"""A trial's reconstructions at each checkpoint it kept, one column per epoch."""

from __future__ import annotations

from pathlib import Path

import torch

from vaetune.checkpoint import CHECKPOINT_FILE, load_model
from vaetune.errors import UserError
from vaetune.results import CHECKPOINT_FOLDERS, checkpoint_file, checkpoint_folders
from vaetune.viz._latent import load_val


def trial_checkpoints(trial_dir: str | Path) -> list[Path]:
    """The checkpoint files of a Ray trial folder (checkpoint_00000N/) or a `vaetune train --out`
    folder (checkpoint_epochNNNN/), oldest first."""
    folder = Path(trial_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; pass a trial folder holding checkpoint_*/ folders")
    found = [checkpoint_file(f) for f in checkpoint_folders(folder)]
    if not found:
        raise UserError(f"{folder}: no {CHECKPOINT_FOLDERS}/{CHECKPOINT_FILE} inside; pass a Ray trial folder "
                        "(results/<name>/<trial>/) or the --out folder of vaetune train")
    return found


@torch.no_grad()
def progress_picture(trial_dir: str | Path, n: int) -> tuple[torch.Tensor, int, list[int]]:
    """`vaetune progress`: n validation images, then their reconstructions at each checkpoint;
    (images row-major, columns, epochs). Each checkpoint is read once."""
    if n < 1:
        raise UserError(f"--n: got {n}; give at least 1")
    x = y = None
    reconstructed = []  # (epoch, reconstructions)
    for path in trial_checkpoints(trial_dir):
        model, config, state = load_model(path)
        if x is None:  # the validation images of the first checkpoint's data
            _, x, y = load_val(config)
            x = x[:n].float().div(255)
            y = y[:n] if y is not None and model.num_classes else None
        reconstructed.append((int(state["epoch"]), model(x, y).recon))
    reconstructed.sort(key=lambda pair: pair[0])
    columns = [x, *(recon for _, recon in reconstructed)]
    return torch.stack(columns, 1).flatten(0, 1), len(columns), [e for e, _ in reconstructed]
