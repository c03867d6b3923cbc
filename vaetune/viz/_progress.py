"""A trial's reconstructions at each checkpoint it kept, one column per epoch."""

from __future__ import annotations

from pathlib import Path

import torch

from vaetune.errors import UserError
from vaetune.viz._latent import load_val


def trial_checkpoints(trial_dir: str | Path) -> list[tuple[int, Path]]:
    """(epoch, checkpoint file) of every checkpoint in a Ray trial folder (checkpoint_00000N/) or a
    `vaetune train --out` folder (checkpoint_epochNNNN/), in epoch order."""
    from vaetune.checkpoint import CHECKPOINT_FILE, load_checkpoint

    folder = Path(trial_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder; pass a trial folder holding checkpoint_*/ folders")
    found = []
    for path in sorted(folder.glob(f"checkpoint_*/{CHECKPOINT_FILE}")):
        found.append((int(load_checkpoint(path)["epoch"]), path))
    if not found:
        raise UserError(f"{folder}: no checkpoint_*/{CHECKPOINT_FILE} inside; pass a Ray trial folder "
                        "(results/<name>/<trial>/) or the --out folder of vaetune train")
    return sorted(found)


@torch.no_grad()
def progress_picture(trial_dir: str | Path, n: int) -> tuple[torch.Tensor, int, list[int]]:
    """`vaetune progress`: n validation images, then their reconstructions at each checkpoint;
    (images row-major, columns, epochs)."""
    from vaetune.checkpoint import load_model

    if n < 1:
        raise UserError(f"--n: got {n}; give at least 1")
    checkpoints = trial_checkpoints(trial_dir)
    model, config, _ = load_model(checkpoints[0][1])
    _, x, y = load_val(config)
    x = x[:n]
    y = y[:n] if y is not None and model.num_classes else None
    columns = [x.float().div(255)]
    for _, path in checkpoints:
        model, _, _ = load_model(path)
        columns.append(model(x.float().div(255), y).recon)
    return torch.stack(columns, 1).flatten(0, 1), len(columns), [e for e, _ in checkpoints]
