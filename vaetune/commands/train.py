"""`vaetune train SPACE.yaml [--set k=v] [--out DIR] [--resume]`: train one configuration.

The configuration is the space's fixed values with each searched key at its default. The run
writes `config.yaml`, grids and checkpoints into --out and prints one line per epoch; FID/KID
(when train.fid_every > 0) every fid_every epochs and at the last, shown once measured.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from vaetune.commands._common import add_space_arguments, warn_unused
from vaetune.metrics.registry import (
    BETA,
    EPOCH,
    LR,
    TRAIN_LOSS,
    VAL_ACTIVE_UNITS,
    VAL_ELBO,
    VAL_KL,
    VAL_PSNR,
    VAL_RECON,
)


def register(commands) -> None:
    p = commands.add_parser("train", help="train one configuration of a search space",
                            description="Train one configuration: the space's fixed values, each searched key at "
                                        "its default, the first point to evaluate over them.")
    add_space_arguments(p)
    p.add_argument("--out", default=None, help="output folder (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.set_defaults(run=run)


CONFIG_FILE = "config.yaml"  # the run's resolved configuration, in its --out folder
CONFIG_HEADER = "# vaetune train: the resolved configuration of this run\n"  # marks the folder as a run's


def run(args: argparse.Namespace) -> int:
    from vaetune.data import load_data
    from vaetune.data.load import check_batch_fits
    from vaetune.errors import UserError, disk_full
    from vaetune.outputs import output_folder
    from vaetune.results import hold, refuse_if_held
    from vaetune.spec import load_space
    from vaetune.train import latest_checkpoint

    space = load_space(args.space, args.overrides)
    warn_unused(space, sections=("data", "model", "train"))  # the search section is a search's
    config = space.default_config()
    out = Path(args.out or Path("runs") / config.name)
    output_folder(out, what="--out" if args.out else f"--out (default runs/{config.name})", ours=_is_run)
    refuse_if_held(out, "a training run")
    resume = latest_checkpoint(out)
    if args.resume and resume is None:
        raise UserError(f"{out}: --resume given but there is no checkpoint_epoch*/ folder to "
                        "resume from")
    if not args.resume and resume is not None:
        raise UserError(f"{out}: holds checkpoints of an earlier run; use --resume to continue it "
                        "or --out for a new folder")
    if resume is not None:
        _check_resume(out, resume, config)
    data = load_data(config.data)  # before anything is written: a bad source leaves no folder behind
    check_batch_fits(space.source, [config.train.batch_size], data)
    if resume is not None:
        _check_same_data(out, resume, data)
    _check_room(out, config, data, resume)
    command = " ".join(["vaetune train", shlex.quote(args.space), *(f"--set {shlex.quote(o)}" for o in args.overrides),
                        "--out", shlex.quote(str(out)), "--resume"])
    with hold(out, "a training run"):
        try:
            return _train(config, space, out, data, resume)
        except OSError as exc:
            if not disk_full(exc):
                raise
            where = f"{exc.filename}: " if exc.filename else f"{out}: "
            then = f"continue with: {command}" if latest_checkpoint(out) else "run it again"
            raise UserError(f"{where}no space left on device; the run stopped: free space there, then {then}") from None


def _train(config, space, out: Path, data, resume: Path | None) -> int:
    import yaml

    from vaetune.train import EachEpoch, ProgressBar, latest_checkpoint, standard_callbacks, train

    out.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    (out / CONFIG_FILE).write_text(CONFIG_HEADER + resolved)
    searched = {k: _config_value(config, k) for k in space.params}
    if searched:
        shown = ", ".join(_show(k, v) for k, v in searched.items())
        print(f"searched keys, at their defaults: {shown}")

    bar = ProgressBar()
    callbacks = [*standard_callbacks(config, out), bar,
                 EachEpoch(lambda end: print(_epoch_line(end.metrics), flush=True))]
    try:
        final = train(config, callbacks, data=data, resume=resume)
    finally:
        bar.close()
    print(f"\nfinished {config.name}: {final[EPOCH]:.0f} epochs, "
          f"{VAL_PSNR} {final[VAL_PSNR]:.2f} dB, {VAL_ELBO} {final[VAL_ELBO]:.4g}, "
          f"active units {final[VAL_ACTIVE_UNITS]:.0f}/{config.model.latent_dim}")
    print(f"checkpoint: {latest_checkpoint(out)}\ngrids:      {out / 'grids'}")
    return 0


RESUMABLE = "train.epochs"  # the one setting a resumed run may change (upwards: it trains on)
TRAINED = ("data", "model", "train")  # the sections a run's weights depend on (search, tracking: not used here)


def _check_resume(out: Path, resume: Path, config) -> None:
    """Refuse --resume with any change but more epochs, against the configuration the checkpoint
    was trained with (config.yaml may have been edited; the checkpoint's own is what ran).
    Checked before anything is written, so a refused resume leaves the run as it was."""
    from vaetune.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from vaetune.errors import UserError
    from vaetune.search import changes_between
    from vaetune.spec import flatten

    stored = load_checkpoint(resume / CHECKPOINT_FILE)["config"]
    changes = changes_between(*({k: v for k, v in flatten(c).items() if k.split(".")[0] in TRAINED}
                                for c in (stored, config)))
    refused = [c for c in changes if not c.grows(RESUMABLE)]
    if refused:
        raise UserError(f"--resume: {out} was trained with another configuration: {'; '.join(map(str, refused))}; "
                        f"a resumed run trains the configuration it started with (only {RESUMABLE} may grow): undo "
                        "the change, or train into a new --out")


def _check_same_data(out: Path, resume: Path, data) -> None:
    """Refuse --resume on other images than the run trained on (the fingerprint its checkpoint keeps)."""
    from vaetune.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from vaetune.errors import UserError

    before = load_checkpoint(resume / CHECKPOINT_FILE).get("data", {}).get("fingerprint")
    if before and before != data.fingerprint:
        raise UserError(f"--resume: {out} was trained on other images than data.source {data.source} holds now "
                        f"(fingerprint {before[:12]} -> {data.fingerprint[:12]}); a resumed run trains on the images "
                        "it started with: put them back as they were, or train into a new --out")


def _check_room(out: Path, config, data, resume: Path | None) -> None:
    """--out has room for the checkpoints still to be written (each kept, with its grids)."""
    from vaetune.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from vaetune.machine import check_room, size
    from vaetune.spec import epochs_at
    from vaetune.train import checkpoint_bytes

    done = int(load_checkpoint(resume / CHECKPOINT_FILE).get("epoch", 0)) if resume is not None else 0
    count = sum(e > done for e in epochs_at(config.train.checkpoint_every, config.train.epochs))
    each = checkpoint_bytes(config, data.num_classes if config.model.conditional else 0)
    check_room(out, count * each, f"--out: the {count} checkpoints of this run (up to {size(each)} apiece)",
               "train into another --out, or set train.checkpoint_every higher")


def _is_run(folder: Path) -> bool:
    """A folder `vaetune train` filled: its config.yaml carries the header, or it has checkpoints."""
    from vaetune.train import latest_checkpoint

    config = folder / CONFIG_FILE
    try:
        if config.is_file() and config.read_text(errors="replace").startswith(CONFIG_HEADER):
            return True
    except OSError:
        return False
    return latest_checkpoint(folder) is not None


def _config_value(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _show(key: str, value) -> str:
    return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"


def _epoch_line(m: dict[str, float]) -> str:
    keys = [TRAIN_LOSS, VAL_RECON, VAL_KL, VAL_ELBO, VAL_PSNR, VAL_ACTIVE_UNITS, BETA, LR]
    keys += sorted(k for k in m if k.startswith("eval/"))  # present once measured
    return f"epoch {m[EPOCH]:.0f}: " + "  ".join(f"{k}={m[k]:.4g}" for k in keys if k in m)
