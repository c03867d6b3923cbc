"""Validation metrics of one epoch, per image, averaged over the validation split.

Units:
- `val/recon`: the configured reconstruction loss with the configured reduction.
- `val/kl`: KL(q(z|x) || N(0, I)) in nats.
- `val/elbo`: negative ELBO, the reconstruction loss summed over pixels plus KL. With BCE this is
  -ELBO in nats under a Bernoulli decoder; with MSE it is -ELBO under a Gaussian decoder of
  variance 1/2, up to a constant.
- `val/mse`: mean squared error per pixel in [0, 1] units; `val/psnr`: 10 log10(1 / mse), in dB,
  averaged over images; `val/ssim`: mean SSIM (vaetune.metrics).
- `val/active_units`: latent dimensions with Cov_x(E[z|x]) > 0.01 (Burda et al. 2016).
- a measure registered with `@register_measure(name)` (a metric of the registry whose producer
  is validation): its per-image values averaged over the split.
"""

from __future__ import annotations

from collections.abc import Callable

from vaetune.metrics.registry import (
    METRICS,
    VAL_ACTIVE_UNITS,
    VAL_ELBO,
    VAL_KL,
    VAL_MSE,
    VAL_PSNR,
    VAL_RECON,
    VAL_SSIM,
)

ACTIVE_UNIT_THRESHOLD = 0.01
_CHUNK = 512  # validation images per forward pass

# The further val/ metrics: name -> measure(recon, x) -> (B,), recon the decoded means and x the
# images, both (B, C, H, W) in [0, 1]; each reported per image, averaged over the split.
MEASURES: dict[str, Callable] = {}


def register_measure(name: str):
    """Decorator: every epoch's validation reports `fn(recon, x)` as `name`, which the metric
    registry must know as a metric of the validation producer."""
    metric = METRICS.get(name)
    if metric is None or metric.producer != "validation":
        raise ValueError(f"{name!r} is not a validation metric of vaetune.metrics.registry: register it "
                         "there first, with producer 'validation'")

    def add(fn: Callable) -> Callable:
        MEASURES[name] = fn
        return fn
    return add


def validate(model, val_x, val_y, tc, device: str) -> dict[str, float]:
    """Validation metrics, per image, averaged over the split (units in the module docstring).

    Args:
        model: the VAE, on `device`; left in eval mode.
        val_x: uint8 images (N, C, H, W) of the validation split, on any device.
        val_y: int64 labels (N,) for a conditional model, else None.
        tc: the `TrainConfig` (recon_loss, recon_reduction).
        device: where the model runs.
    """
    import torch

    from vaetune.metrics import mse, psnr_from_mse, ssim
    from vaetune.models import kl_per_dim, recon_loss

    model.eval()
    totals = torch.zeros(6, dtype=torch.float64)  # recon, kl, elbo, mse, psnr, ssim
    measured = torch.zeros(len(MEASURES), dtype=torch.float64)  # MEASURES' sums, in order
    mus = []
    with torch.inference_mode():
        for i in range(0, len(val_x), _CHUNK):
            x = val_x[i:i + _CHUNK].to(device).float().div_(255)  # (B, C, H, W)
            y = None if val_y is None else val_y[i:i + _CHUNK].to(device)
            out = model(x, y)
            kl = kl_per_dim(out.mu, out.logvar).sum(1)  # (B,)
            recon = recon_loss(out, x, tc.recon_loss, tc.recon_reduction)  # (B,)
            summed = tc.recon_reduction == "sum"
            recon_sum = recon if summed else recon_loss(out, x, tc.recon_loss, "sum")  # (B,)
            err = mse(out.recon, x)  # (B,)
            batch = torch.stack([recon.sum(), kl.sum(), (recon_sum + kl).sum(), err.sum(),
                                 psnr_from_mse(err).sum(), ssim(out.recon, x).sum()])  # (6,)
            totals += batch.double().cpu()
            if MEASURES:
                measured += torch.stack([fn(out.recon, x).sum() for fn in MEASURES.values()]).double().cpu()
            mus.append(out.mu.float().cpu())
    n = len(val_x)
    recon, kl, elbo, mse_mean, psnr_db, ssim_mean = (totals / n).tolist()
    mu = torch.cat(mus)  # (N, D)
    active = int((mu.var(0) > ACTIVE_UNIT_THRESHOLD).sum()) if len(mu) > 1 else 0
    return {VAL_RECON: recon, VAL_KL: kl, VAL_ELBO: elbo, VAL_MSE: mse_mean,
            VAL_PSNR: psnr_db, VAL_SSIM: ssim_mean, VAL_ACTIVE_UNITS: active,
            **dict(zip(MEASURES, (measured / n).tolist(), strict=True))}
