"""The training loop: plain PyTorch, no Ray or MLflow inside.

`train(config, report, checkpoint_dir)` trains one configuration and calls `report(metrics,
checkpoint, artifacts)` once per epoch. The same function runs from `vaetune train`, from the
tests and inside a Ray Tune trial; Ray and MLflow live in their own adapters.

Metric units (per image, averaged over the validation split):
- `val/recon`: the configured reconstruction loss with the configured reduction.
- `val/kl`: KL(q(z|x) || N(0, I)) in nats.
- `val/elbo`: negative ELBO, the reconstruction loss summed over pixels plus KL. With BCE this is
  -ELBO in nats under a Bernoulli decoder; with MSE it is -ELBO under a Gaussian decoder of
  variance 1/2, up to a constant.
- `val/mse`: mean squared error per pixel in [0, 1] units; `val/psnr`: 10 log10(1 / mse), in dB,
  averaged over images; `val/ssim`: mean SSIM (vaetune.quality).
- `val/active_units`: latent dimensions with Cov_x(E[z|x]) > 0.01 (Burda et al. 2016).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetune.checkpoint import CHECKPOINT_FILE, atomic_save, load_checkpoint

log = logging.getLogger(__name__)

# report(metrics, checkpoint_dir or None, grid PNG paths written this epoch)
Reporter = Callable[[dict[str, float], "Path | None", "list[Path]"], None]
GRID_SEED = 1234  # fixed z for sample grids: comparable across epochs and trials
ACTIVE_UNIT_THRESHOLD = 0.01
EVAL_KEYS = ("eval/fid_sample", "eval/fid_recon", "eval/kid_sample", "eval/kid_sample_std", "eval/fid_n")
DEVICE_DATA_FRACTION = 0.25  # of the GPU's free memory the training images may take (trials share a GPU)


@dataclass
class _Batches:
    """Shuffled mini-batches of a uint8 tensor: on the training device when it fits there (no
    copy per step), else in pinned host memory, each batch copied asynchronously."""

    images: Any  # uint8 (N, C, H, W), on the training device or in pinned host memory
    labels: Any  # int64 (N,) or None, beside the images
    batch_size: int
    copy_to: str | None = None  # set when the images stay in host memory: the device each batch goes to

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def epoch(self, generator) -> Iterable[tuple[Any, Any]]:
        import torch

        order = torch.randperm(len(self.images), generator=generator).to(self.images.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx]
            y = self.labels[idx] if self.labels is not None else None
            if self.copy_to is not None:
                x = x.pin_memory().to(self.copy_to, non_blocking=True)
                y = None if y is None else y.to(self.copy_to, non_blocking=True)
            yield x.float().div_(255), y


def fits_on_device(nbytes: int, free_bytes: int, fraction: float = DEVICE_DATA_FRACTION) -> bool:
    """Whether training images of `nbytes` may live on a GPU with `free_bytes` free."""
    return nbytes <= fraction * free_bytes


def place_batches(images, labels, batch_size: int, device: str) -> _Batches:
    """The training images as uint8 on the device when they fit (no host copy per step),
    otherwise pinned in host memory with one asynchronous copy per batch."""
    import torch

    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        if not fits_on_device(images.nbytes, free):
            log.info("training images (%.0f MiB) kept in pinned host memory: over %.0f%% of the GPU's free %.0f MiB",
                     images.nbytes / 2**20, 100 * DEVICE_DATA_FRACTION, free / 2**20)
            return _Batches(images.pin_memory(), None if labels is None else labels.pin_memory(), batch_size,
                            copy_to=device)
    return _Batches(images.to(device), None if labels is None else labels.to(device), batch_size)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from vaetune.errors import UserError

        raise UserError("train.device: got 'cuda' but no CUDA device is visible; use auto or cpu")
    return name


def _rng_state(shuffle_gen) -> dict:
    import torch

    state = {"torch": torch.get_rng_state(), "shuffle": shuffle_gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, shuffle_gen) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    shuffle_gen.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest `checkpoint_epochNNNN/` folder under checkpoint_dir, or None."""
    found = sorted(Path(checkpoint_dir).glob("checkpoint_epoch*/" + CHECKPOINT_FILE))
    return found[-1].parent if found else None


def train(
    config,
    report: Reporter | None = None,
    checkpoint_dir: str | Path = "runs/train",
    *,
    data=None,
    resume: str | Path | None = None,
    eval_epochs: Iterable[int] = (),
    keep_checkpoints: int | None = None,
    checkpoint_with_grids: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Train one configuration; returns the last epoch's metrics.

    Args:
        config: a validated `vaetune.spec.Config`.
        report: called after every epoch with the metrics, the checkpoint folder written this
            epoch (or None) and the grid images written this epoch.
        checkpoint_dir: folder for checkpoints (`checkpoint_epochNNNN/`) and grids (`grids/`).
        data: an already loaded `ImageData` (a search shares one); loaded from config if None.
        resume: a checkpoint file or folder to continue from (at its next epoch).
        eval_epochs: extra epochs (1-based) at which FID/KID are computed, e.g. ASHA's rungs.
        keep_checkpoints: delete older checkpoint folders beyond this many (None keeps all).
        checkpoint_with_grids: also checkpoint at every epoch that writes grids, so a caller
            that ships checkpoints elsewhere (Ray Tune) can ship the grids with them.
        progress: show a progress bar per epoch.
    """
    import torch

    from vaetune.data import Augment, load_data
    from vaetune.losses import check_finite, vae_loss
    from vaetune.models import build_model
    from vaetune.schedules import beta_at, capacity_at, lr_factor, make_optimizer, set_lr

    tc = config.train
    out = Path(checkpoint_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    shuffle_gen = torch.Generator().manual_seed(tc.seed)

    data = data if data is not None else load_data(config.data)
    train_x, train_y = data.subset("train")
    val_x, val_y = data.subset("val")
    if not config.model.conditional:
        train_y = val_y = None
    image_shape = tuple(data.images.shape[1:])
    batches = place_batches(train_x, train_y, tc.batch_size, device)
    model = build_model(config.model, image_shape, data.num_classes if config.model.conditional else 0).to(device)
    optimizer = make_optimizer(model, tc)
    augment = Augment(config.data.augment)
    use_bf16 = device == "cuda" and tc.amp == "bf16"

    start_epoch, history = 0, {}
    if resume is not None:
        state = load_checkpoint(resume)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"], shuffle_gen)
        start_epoch, history = state["epoch"], state.get("metrics", {})
        log.info("resumed from %s at epoch %d", resume, start_epoch + 1)

    grid = _GridWriter(model, val_x, val_y, data.num_classes if config.model.conditional else 0, tc.grid_size, device)
    eval_epochs = set(eval_epochs)
    # until the first evaluation the eval/ keys are NaN: present in every report (Tune requires the
    # scheduling metric in each one) but never logged or told to Optuna as a value
    carried = {k: math.nan for k in EVAL_KEYS} if tc.fid_every else {}
    carried.update({k: v for k, v in history.items() if k.startswith("eval/")})
    metrics: dict[str, float] = dict(history)
    steps = len(batches)
    for epoch in range(start_epoch, tc.epochs):
        t0 = time.perf_counter()
        model.train()
        sums = torch.zeros(3, device=device)  # loss, recon, kl summed over batches, no host sync per step
        bar = _progress(progress, steps, epoch, tc.epochs)
        for step, (x, y) in enumerate(batches.epoch(shuffle_gen)):
            t = epoch + step / steps
            # lr at the step's end, so a warm-up never runs a step at lr 0
            beta, lr = beta_at(tc, t), tc.lr * lr_factor(tc, epoch + (step + 1) / steps)
            set_lr(optimizer, lr)
            x = augment(x)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
                out_ = model(x, y)
            terms = vae_loss(out_, x, tc, beta, capacity_at(tc, t))
            if step % 50 == 0 or step == steps - 1:  # a host sync, so only now and then
                check_finite(terms.loss, epoch + 1, step, lr=lr, beta=beta)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            sums += torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach()]).float()
            if bar is not None:
                bar.update(1)
        loss, recon, kl = (sums / steps).tolist()
        check_finite(torch.tensor(loss), epoch + 1, steps - 1, lr=lr, beta=beta)
        done = epoch + 1
        metrics = {"epoch": done, "train/loss": loss, "train/recon": recon, "train/kl": kl, "beta": beta, "lr": lr}
        metrics.update(validate(model, val_x, val_y, tc, device))
        train_time = time.perf_counter() - t0
        if _is_eval_epoch(tc, done, eval_epochs):
            from vaetune.metrics import evaluate_generative

            carried = evaluate_generative(model, data, tc, device, cache_dir=config.data.cache_dir,
                                          background=config.data.background)
        metrics.update(carried)  # the last FID is carried so the scheduling metric is in every report
        metrics["time/epoch_s"] = time.perf_counter() - t0
        metrics["time/train_images_per_s"] = len(train_x) / max(train_time, 1e-9)
        if device == "cuda":  # what one trial needs of a shared GPU (README: many trials per GPU)
            metrics["sys/gpu_peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
            metrics["sys/gpu_peak_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.4g}", val_psnr=f"{metrics['val/psnr']:.2f}")
            bar.close()
        artifacts = grid.write(out / "grids", done) if done % tc.grid_every == 0 or done == tc.epochs else []
        ckpt = None
        if done % tc.checkpoint_every == 0 or done == tc.epochs or (checkpoint_with_grids and artifacts):
            ckpt = save_training_state(out, model, optimizer, shuffle_gen, done, config, data, metrics)
            _prune(out, keep_checkpoints)
        if report is not None:
            report(metrics, ckpt, artifacts)
    return metrics


def _is_eval_epoch(tc, epoch: int, extra: set[int]) -> bool:
    if not tc.fid_every:
        return False
    return epoch % tc.fid_every == 0 or epoch == tc.epochs or epoch in extra


def _progress(enabled: bool, steps: int, epoch: int, epochs: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=True)


def validate(model, val_x, val_y, tc, device: str) -> dict[str, float]:
    """Validation metrics, per image, averaged over the split (units in the module docstring)."""
    import torch

    from vaetune.losses import kl_per_dim, recon_loss

    model.eval()
    from vaetune.quality import mse, psnr_from_mse, ssim

    totals = torch.zeros(6, dtype=torch.float64)  # recon, kl, elbo, mse, psnr, ssim
    mus = []
    with torch.inference_mode():
        for i in range(0, len(val_x), 512):
            x = val_x[i:i + 512].to(device).float().div_(255)
            y = None if val_y is None else val_y[i:i + 512].to(device)
            out = model(x, y)
            kl = kl_per_dim(out.mu, out.logvar).sum(1)
            recon = recon_loss(out, x, tc.recon_loss, tc.recon_reduction)
            recon_sum = recon if tc.recon_reduction == "sum" else recon_loss(out, x, tc.recon_loss, "sum")
            err = mse(out.recon, x)
            batch = torch.stack([recon.sum(), kl.sum(), (recon_sum + kl).sum(), err.sum(),
                                 psnr_from_mse(err).sum(), ssim(out.recon, x).sum()])
            totals += batch.double().cpu()
            mus.append(out.mu.float().cpu())
    n = len(val_x)
    recon, kl, elbo, mse_mean, psnr_db, ssim_mean = (totals / n).tolist()
    mu = torch.cat(mus)
    active = int((mu.var(0, unbiased=len(mu) > 1) > ACTIVE_UNIT_THRESHOLD).sum()) if len(mu) > 1 else 0
    return {"val/recon": recon, "val/kl": kl, "val/elbo": elbo, "val/mse": mse_mean, "val/psnr": psnr_db,
            "val/ssim": ssim_mean, "val/active_units": active}


class _GridWriter:
    """Reconstruction and sample grids from fixed validation images and a fixed z."""

    def __init__(self, model, val_x, val_y, num_classes: int, size: int, device: str):
        import torch
        import torchvision.utils  # noqa: F401  imported now (~0.3 s), not inside the first grid epoch

        self.model, self.device, self.size = model, device, size
        n_pairs = min(size * size // 2, len(val_x))
        self.x = val_x[:n_pairs]
        self.y = None if val_y is None else val_y[:n_pairs]
        g = torch.Generator().manual_seed(GRID_SEED)
        self.z = torch.randn(size * size, model.latent_dim, generator=g)
        # conditional models: one class per row, so rows compare classes
        self.zy = (torch.arange(size * size) // size) % num_classes if num_classes else None

    def write(self, folder: Path, epoch: int) -> list[Path]:
        import torch
        from torchvision.utils import save_image

        folder.mkdir(parents=True, exist_ok=True)
        self.model.eval()
        with torch.inference_mode():
            x = self.x.to(self.device).float() / 255
            y = None if self.y is None else self.y.to(self.device)
            recon = self.model(x, y).recon.float()
            zy = None if self.zy is None else self.zy.to(self.device)
            samples = self.model.decode(self.z.to(self.device), zy).float()
        # rows alternate: originals, then their reconstructions
        pairs = torch.stack([x, recon], 0)  # (2, n, C, H, W)
        rows = []
        for start in range(0, len(x), self.size):
            rows += [pairs[0, start:start + self.size], pairs[1, start:start + self.size]]
        recon_path = folder / f"recon_epoch{epoch:04d}.png"
        sample_path = folder / f"samples_epoch{epoch:04d}.png"
        save_image(torch.cat(rows).cpu(), recon_path, nrow=self.size, padding=1)
        save_image(samples.cpu(), sample_path, nrow=self.size, padding=1)
        return [recon_path, sample_path]


def save_training_state(out: Path, model, optimizer, shuffle_gen, epoch: int, config, data, metrics) -> Path:
    """Write `checkpoint_epochNNNN/checkpoint.pt` (see vaetune.checkpoint) and return its folder."""
    from vaetune import __version__

    folder = out / f"checkpoint_epoch{epoch:04d}"
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "rng": _rng_state(shuffle_gen),
        "config": config.model_dump(mode="json"),
        "data": {
            "image_shape": list(data.images.shape[1:]),
            "num_classes": data.num_classes if config.model.conditional else 0,
            "label_names": data.label_names,
            "fingerprint": data.fingerprint,
        },
        "metrics": {k: float(v) for k, v in metrics.items()},
        "version": __version__,
    }
    atomic_save(state, folder / CHECKPOINT_FILE)
    return folder


def _prune(out: Path, keep: int | None) -> None:
    import shutil

    if not keep:
        return
    folders = sorted(out.glob("checkpoint_epoch*"))
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def cmd_train(args) -> int:
    """`vaetune train SPACE.yaml [--set k=v] [--out DIR] [--resume]`."""
    import yaml

    from vaetune.errors import UserError
    from vaetune.spec import load_space

    space = load_space(args.space, args.overrides)
    config = space.default_config()
    out = Path(args.out or Path("runs") / config.name)
    resume = None
    if args.resume:
        resume = latest_checkpoint(out)
        if resume is None:
            raise UserError(f"{out}: --resume given but there is no checkpoint_epoch*/ folder to resume from")
    elif latest_checkpoint(out) is not None:
        raise UserError(f"{out}: holds checkpoints of an earlier run; use --resume to continue it or --out for a new folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    searched = {k: config_value(config, k) for k in space.params}
    if searched:
        print("searched keys, at their defaults: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                               for k, v in searched.items()))

    def report(metrics, ckpt, artifacts):
        print(_epoch_line(metrics), flush=True)

    final = train(config, report, out, resume=resume, progress=True, keep_checkpoints=None)
    print(f"\nfinished {config.name}: {final['epoch']:.0f} epochs, val/psnr {final['val/psnr']:.2f} dB, "
          f"val/elbo {final['val/elbo']:.4g}, active units {final['val/active_units']:.0f}/{config.model.latent_dim}")
    print(f"checkpoint: {latest_checkpoint(out)}\ngrids:      {out / 'grids'}")
    return 0


def config_value(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _epoch_line(m: dict) -> str:
    keys = ["train/loss", "val/recon", "val/kl", "val/elbo", "val/psnr", "val/active_units", "beta", "lr"]
    keys += sorted(k for k in m if k.startswith("eval/"))
    shown = [k for k in keys if k in m and not math.isnan(m[k])]  # eval/ keys are NaN before the first FID
    return f"epoch {m['epoch']:.0f}: " + "  ".join(f"{k}={m[k]:.4g}" for k in shown)
