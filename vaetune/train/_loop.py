"""The training loop: plain PyTorch; no Ray, no MLflow, and no files of its own.

`train(config, callbacks)` trains one configuration. Each epoch runs the optimiser steps and
the validation (vaetune.train._validate), then hands one `EpochEnd` record to the callbacks in
order (vaetune.train.callbacks): further evaluation, grids, checkpoints and reporting are theirs.
The same loop runs in `vaetune train`, in the tests and inside a Ray Tune trial, each composing
its own callbacks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vaetune.machine import resolve_device
from vaetune.metrics.registry import (
    BETA,
    CHECKPOINT_TIME,
    EPOCH,
    EPOCH_TIME,
    EVAL_TIME,
    IMAGES_PER_S,
    LR,
    TRAIN_KL,
    TRAIN_LOSS,
    TRAIN_RECON,
    TRAIN_TIME,
)
from vaetune.train._device import peak_memory, place_batches
from vaetune.train._state import restore_training_state
from vaetune.train._validate import validate
from vaetune.train.callbacks import Callback, EpochEnd, TrainStart

if TYPE_CHECKING:
    from vaetune.data import ImageData
    from vaetune.spec import Config

log = logging.getLogger(__name__)


def train(config: Config, callbacks: Sequence[Callback] = (), *, data: ImageData | None = None,
          resume: str | Path | None = None) -> dict[str, float]:
    """Train one configuration; returns the last epoch's metrics (with what callbacks added).

    Args:
        config: a validated `vaetune.spec.Config`.
        callbacks: called in this order at the start, after every step and after every epoch
            (see vaetune.train.callbacks); `standard_callbacks(config, folder)` writes grids and
            checkpoints as `vaetune train` does.
        data: an already loaded `ImageData` (a search shares one); loaded from config if None.
        resume: a checkpoint file or folder to continue from (at its next epoch).
    """
    import torch

    from vaetune.data import Augment, load_data
    from vaetune.models import build_model, make_optimizer

    tc = config.train
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
    batches = place_batches(train_x, train_y, tc.batch_size, device)
    num_classes = data.num_classes if config.model.conditional else 0
    model = build_model(config.model, tuple(data.images.shape[1:]), num_classes).to(device)
    optimizer = make_optimizer(model, tc)
    augment = Augment(config.data.augment)

    start_epoch, metrics = 0, {}
    if resume is not None:
        start_epoch, metrics = restore_training_state(resume, model, optimizer, shuffle_gen)
        log.info("resumed from %s at epoch %d", resume, start_epoch + 1)
    start = TrainStart(config, model, data, device, start_epoch, dict(metrics), len(batches),
                       (val_x, val_y))
    for cb in callbacks:
        cb.on_train_start(start)

    for epoch in range(start_epoch, tc.epochs):
        t0 = time.perf_counter()
        metrics = _train_epoch(model, optimizer, batches, shuffle_gen, augment, tc, epoch, device,
                               callbacks)
        metrics.update(validate(model, val_x, val_y, tc, device))
        metrics[EPOCH_TIME] = metrics[TRAIN_TIME] = seconds = time.perf_counter() - t0
        metrics[EVAL_TIME] = metrics[CHECKPOINT_TIME] = 0.0  # callbacks add theirs
        metrics[IMAGES_PER_S] = len(train_x) / max(seconds, 1e-9)
        metrics.update(peak_memory(device))  # what one trial needs of a shared GPU
        end = EpochEnd(epoch + 1, metrics, model, optimizer, shuffle_gen, config, data, device)
        for cb in callbacks:
            cb.on_epoch_end(end)
    return metrics


def _train_epoch(model, optimizer, batches, shuffle_gen, augment, tc, epoch: int, device: str,
                 callbacks: Sequence[Callback]) -> dict[str, float]:
    """One pass over the training split (epoch is 0-based); returns the train/ metrics, beta, lr."""
    import torch

    from vaetune.models import beta_at, check_finite, lr_factor, objective_loss, set_lr

    use_bf16 = device == "cuda" and tc.amp == "bf16"
    model.train()
    sums = torch.zeros(3, device=device)  # loss, recon, kl summed over batches: no sync per step
    steps = len(batches)
    for step, (x, y) in enumerate(batches.epoch(shuffle_gen)):
        t = epoch + step / steps
        # lr at the step's end, so a warm-up never runs a step at lr 0
        beta, lr = beta_at(tc, t), tc.lr * lr_factor(tc, epoch + (step + 1) / steps)
        set_lr(optimizer, lr)
        x = augment(x)  # (B, C, H, W)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16):
            out = model(x, y)
        terms = objective_loss(out, x, tc, t)  # train.objective's loss
        if step % 50 == 0 or step == steps - 1:  # a host sync, so only now and then
            check_finite(terms.loss, epoch + 1, step, lr=lr, beta=beta)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        sums += torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach()]).float()
        for cb in callbacks:
            cb.on_step_end(epoch + 1, step + 1)
    loss, recon, kl = (sums / steps).tolist()
    check_finite(torch.tensor(loss), epoch + 1, steps - 1, lr=lr, beta=beta)
    return {EPOCH: epoch + 1, TRAIN_LOSS: loss, TRAIN_RECON: recon, TRAIN_KL: kl, BETA: beta, LR: lr}
