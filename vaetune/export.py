"""Using a finished search: export the best checkpoint, sample from it, reconstruct images.

`vaetune export RESULTS_DIR` picks the best trial of `summary.csv` by a metric (the search's
own by default), reads that trial's best checkpoint from the search's storage (local, shared or
s3://) and writes one self-contained file: weights, resolved config, data shape and labels,
metrics, vaetune version, and where it came from. The optimiser is left out. `--register NAME`
also logs it to the trial's MLflow run as an MLflow PyTorch model (image in, reconstruction
out) with a signature, registered under NAME.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from vaetune.checkpoint import atomic_save, load_checkpoint, load_model
from vaetune.errors import UserError

log = logging.getLogger(__name__)

# metrics where larger is better; every other metric is minimised unless --mode says otherwise
MAXIMISED = ("val/psnr", "val/ssim", "val/active_units")


def pick_best(summary, metric: str, mode: str):
    """The summary row with the best value of `metric` (best over epochs if recorded, else final)."""
    col = f"best/{metric}" if f"best/{metric}" in summary else f"final/{metric}"
    if col not in summary:
        known = sorted(c.split("/", 1)[1] for c in summary.columns if c.startswith(("final/", "best/")))
        raise UserError(f"--metric: got {metric!r}; this search recorded: {', '.join(known)}")
    scored = summary[summary[col].notna() & (summary["checkpoint"].fillna("") != "")]
    if scored.empty:
        raise UserError(f"no trial has both a value of {metric} and a checkpoint; see summary.csv")
    return scored.sort_values(col, ascending=(mode == "min")).iloc[0], col


def fetch_checkpoint(path: str) -> dict:
    """Load a checkpoint folder from local disk or from remote storage (via Ray's Checkpoint)."""
    if "://" not in path:
        return load_checkpoint(path)
    import tempfile

    from ray import tune

    with tempfile.TemporaryDirectory() as tmp:
        tune.Checkpoint(path).to_directory(tmp)
        return load_checkpoint(tmp)


def cmd_export(args) -> int:
    from vaetune import __version__
    from vaetune.search import load_search

    state, summary = load_search(args.results)
    metric = args.metric or state["metric"]
    mode = args.mode or (state["mode"] if metric == state["metric"] else ("max" if metric in MAXIMISED else "min"))
    row, col = pick_best(summary, metric, mode)
    ckpt = fetch_checkpoint(str(row["checkpoint"]))
    exported = {
        "model": ckpt["model"], "config": ckpt["config"], "data": ckpt["data"], "epoch": ckpt["epoch"],
        "metrics": ckpt.get("metrics", {}), "version": __version__, "trained_with_version": ckpt.get("version"),
        "source": {"search": state["name"], "trial_id": str(row["trial_id"]), "checkpoint": str(row["checkpoint"]),
                   "mlflow_run_id": _str(row.get("mlflow_run_id")), "selected_by": f"{mode} {col}"},
    }
    out = atomic_save(exported, args.out)
    print(f"best trial {row['trial_id']} by {mode} {col} = {row[col]:.5g}; epoch {ckpt['epoch']}")
    print(f"exported to {out}")
    if args.register:
        version = register_model(out, args.register, exported["source"]["mlflow_run_id"], state, args.results)
        print(f"registered in MLflow as {args.register} (version {version})")
    return 0


def _str(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def register_model(path: Path, name: str, run_id: str, state: dict, results: str | Path) -> str:
    """Log the exported model to MLflow with a signature and register it under `name`."""
    import json

    import mlflow
    import torch
    from mlflow.models import infer_signature

    from vaetune.tracking import resolve_uri

    tracking_file = Path(results) / "tracking.json"
    tracking = json.loads(tracking_file.read_text()) if tracking_file.exists() else {}
    mlflow.set_tracking_uri(tracking.get("uri") or resolve_uri(None))
    model, config, _ = load_model(path)
    wrapped = Reconstructor(model).eval()
    example = torch.rand(2, *model.image_shape)
    with torch.no_grad():
        signature = infer_signature(example.numpy(), wrapped(example).numpy())
    with mlflow.start_run(run_id=run_id or None, run_name=None if run_id else f"{state['name']}-export"):
        info = mlflow.pytorch.log_model(wrapped, name="model", signature=signature, input_example=example.numpy(),
                                        registered_model_name=name)
    return str(getattr(info, "registered_model_version", "?"))


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


# ---------------------------------------------------------------------------------------------
# sample / reconstruct


def cmd_sample(args) -> int:
    import torch
    from torchvision.utils import save_image

    model, config, _ = load_model(args.checkpoint)
    if args.n < 1:
        raise UserError(f"--n: got {args.n}; give at least 1")
    y = None
    if model.num_classes:
        label = args.label if args.label is not None else 0
        if not 0 <= label < model.num_classes:
            raise UserError(f"--label: got {label}; this model has classes 0..{model.num_classes - 1}")
        y = torch.full((args.n,), label, dtype=torch.long)
    elif args.label is not None:
        raise UserError("--label: this model is not conditional")
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        images = model.sample(args.n, y, generator=g)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(images, args.out, nrow=max(1, int(math.ceil(math.sqrt(args.n)))), padding=1)
    print(f"{args.n} samples -> {args.out}")
    return 0


def read_for_model(path: str, config) -> torch.Tensor:  # noqa: F821
    """One image file decoded the way the model's data was: float (1, C, H, W) in [0, 1]."""
    import torch

    from vaetune.data.decode import DecodeSettings, InvalidImage, decode_image

    d = config.data
    settings = DecodeSettings(image_size=d.image_size, channels=d.channels, background=tuple(d.background),
                              resize=d.resize, min_side=1)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        arr = decode_image(raw, settings)
    except InvalidImage as exc:
        raise UserError(f"{path}: not a usable image ({exc.reason})") from None
    return torch.from_numpy(arr).float().div(255)[None]


def cmd_reconstruct(args) -> int:
    import torch
    from torchvision.utils import save_image

    model, config, _ = load_model(args.checkpoint)
    if model.num_classes:
        raise UserError("reconstruct needs labels for a conditional model; use sample --label instead")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        x = read_for_model(path, config)
        with torch.no_grad():
            recon = model(x).recon
        target = out / f"{Path(path).stem}_recon.png"
        save_image(torch.cat([x, recon]), target, nrow=2, padding=1)  # input | reconstruction
        print(f"{path} -> {target}")
    return 0
