"""The picture table of the original Yu-Gi-Oh project: one column per β, the same validation
images reconstructed by each row's trial, and samples drawn from one seed.

Each row's checkpoint (its trial's checkpoint at the KL table's epoch) is loaded with
`vaetune.checkpoint.load_model`; the validation images are the first N of the split (the same
ones the training grids show); z comes from a generator seeded with GRID_SEED, drawn the way the
row's user is handed samples (`Config.handed_sampler`, as the training grids draw them): from
N(0, I), every column decodes the same codes when the latent sizes agree; from the fitted latent
mixture, each column draws from its own mixture. Conditional models reconstruct with the
images' own labels and decode the samples with classes 0, 1, 2, ... in turn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from vaetune.report._render import Notes, Paragraph, Pictures
from vaetune.samplers import NORMAL
from vaetune.train import GRID_SEED  # the training grids' z: the pictures decode the same codes

log = logging.getLogger(__name__)


@dataclass
class PictureTable:
    labels: list[str]  # column headers ("β = 0.1")
    originals: bytes  # PNG: the N validation images, one column
    recons: list[bytes]  # per β: PNG column of reconstructions
    samples: list[bytes]  # per β: PNG column of samples drawn from GRID_SEED
    epochs: list[int]  # checkpoint epoch per column
    notes: list[str] = field(default_factory=list)
    drawn: set[str] = field(default_factory=set)  # where the columns' z come from (vaetune.samplers' words)


def picture_table(rows, n: int = 6, epoch: int | None = None, key_label: str = "β") -> PictureTable | None:
    """Build the picture table for the KL table's rows (Row); None when no row has a checkpoint.

    Args:
        rows: the table's rows; each column shows `row.checkpoint`.
        n: validation images (and samples) per column.
        epoch: the table's epoch: a row without a checkpoint, or with one of another epoch, is noted.
        key_label: the rows' key in the column headers and notes.
    """
    import torch

    from vaetune.checkpoint import load_model_at, load_prior, pick_sampler
    from vaetune.data import load_data
    from vaetune.viz import grid_png

    usable = [r for r in rows if r.checkpoint]
    if not usable:
        return None
    data_cache: dict[str, tuple] = {}
    labels, recons, samples, epochs, dims, drawn = [], [], [], [], set(), set()
    originals = None
    notes = [f"{key_label}={r.label}: no checkpoint of epoch {epoch} is left (trial {r.trial_id}); column left out."
             for r in rows if not r.checkpoint]
    for r in usable:
        try:
            model, config, state = load_model_at(r.checkpoint)
        except Exception as exc:  # a missing or unreadable checkpoint leaves out one column, not the report
            notes.append(f"{key_label}={r.label}: checkpoint {r.checkpoint} could not be loaded ({exc}); column left out.")
            continue
        key = config.data.model_dump_json()
        if key not in data_cache:
            data = load_data(config.data)
            data_cache[key] = data.subset("val")
        x, y = data_cache[key]
        x = x[:n].float().div(255)
        y = None if y is None or not model.num_classes else y[:n]
        prior = load_prior(state, r.checkpoint, model.latent_dim)
        sampler = pick_sampler(None, prior, r.checkpoint, config)
        zy = torch.arange(n) % model.num_classes if model.num_classes else None
        with torch.no_grad():
            recon = model(x, y).recon
            sample = model.sample(n, zy, generator=torch.Generator().manual_seed(GRID_SEED),
                                  prior=prior if sampler.fitted else None)
        drawn.add(sampler.words)
        if originals is None:
            originals = grid_png(x, 1)
        labels.append(f"{key_label} = {r.label}")
        recons.append(grid_png(recon, 1))
        samples.append(grid_png(sample, 1))
        epochs.append(int(state.get("epoch", 0)))
        dims.add(model.latent_dim)
    if originals is None:
        return None
    other = [f"{lbl} (epoch {e})" for lbl, e in zip(labels, epochs, strict=True) if epoch is not None and e != epoch]
    if other:
        notes.append(f"Checkpoints of another epoch than the table's {epoch}: {', '.join(other)}.")
    if len(dims) > 1 and NORMAL.words in drawn:
        notes.append(f"Latent sizes differ between columns ({sorted(dims)}): each column draws z from the same "
                     "seed, but codes of different sizes are not the same point.")
    if len(data_cache) > 1:
        notes.append("Columns were trained on different data settings; the originals are those of the first column.")
    return PictureTable(labels, originals, recons, samples, epochs, notes, drawn)


def pictures_parts(rows, figures: dict, n: int, epoch: int | None, key_label: str, *, each: str = "each row's model",
                   whose: str = "its trial", prefix: str = "pictures") -> list:
    """The report's parts of a picture table of `rows` (each with checkpoint, label, trial_id): a
    paragraph, the pictures (their PNGs put in `figures` under `prefix`) and notes."""
    pics = picture_table(rows, n, epoch, key_label)
    if pics is None:
        return [Notes(["No row has a checkpoint, so there is no picture table."])]
    figures[f"{prefix}_originals"] = pics.originals
    names_r, names_s = [], []
    for i, (r, smp) in enumerate(zip(pics.recons, pics.samples, strict=True)):
        figures[f"{prefix}_recon_{i}"], figures[f"{prefix}_samples_{i}"] = r, smp
        names_r.append(f"{prefix}_recon_{i}")
        names_s.append(f"{prefix}_samples_{i}")
    how = ("samples decoded from the same fixed z" if pics.drawn == {NORMAL.words} else
           f"samples with z from {' or '.join(sorted(pics.drawn))}, each column's own, drawn")
    return [Paragraph(f"The same validation images reconstructed by {each} ({whose + ', ' if whose else ''}checkpoint "
                      f"of epoch {epoch}), and {how} (seed {GRID_SEED}), as `vaetune sample` draws them; the column "
                      "header gives the epoch of the checkpoint shown."),
            Pictures(pics.labels, pics.epochs, f"{prefix}_originals", names_r, names_s),
            Notes(pics.notes)]
