"""Schedule values at chosen fractional epochs, and the optimizer's parameter groups."""

from __future__ import annotations

import math

import pytest
import torch

from vaetune.models import TrainConfig, beta_at, capacity_at, lr_factor, make_optimizer, set_lr


def test_constant_beta():
    cfg = TrainConfig(beta=2.0)
    assert [beta_at(cfg, e) for e in (0, 3.5, 10)] == [2.0, 2.0, 2.0]


def test_linear_warmup():
    cfg = TrainConfig(beta=4.0, beta_schedule="linear", warmup_epochs=2.0)
    assert beta_at(cfg, 0.0) == 0.0
    assert beta_at(cfg, 1.0) == pytest.approx(2.0)  # midpoint
    assert beta_at(cfg, 2.0) == pytest.approx(4.0)
    assert beta_at(cfg, 7.0) == pytest.approx(4.0)
    assert beta_at(TrainConfig(beta=4.0, beta_schedule="linear", warmup_epochs=0), 0.0) == 4.0


def test_cyclical():
    # 8 epochs, 4 cycles of 2 epochs, ramp over the first half (1 epoch) of each
    cfg = TrainConfig(beta=1.0, beta_schedule="cyclical", epochs=8, cycles=4, cycle_ratio=0.5)
    for start in (0.0, 2.0, 4.0, 6.0):
        assert beta_at(cfg, start) == pytest.approx(0.0)  # each cycle starts at 0
        assert beta_at(cfg, start + 0.5) == pytest.approx(0.5)  # ramp midpoint
        assert beta_at(cfg, start + 1.0) == pytest.approx(1.0)  # plateau reached
        assert beta_at(cfg, start + 1.9) == pytest.approx(1.0)  # still on the plateau
    assert beta_at(cfg, 8.0) == pytest.approx(1.0)  # past the end: plateau
    odd = TrainConfig(beta=3.0, beta_schedule="cyclical", epochs=10, cycles=3, cycle_ratio=1.0)
    assert beta_at(odd, 10 / 3) == pytest.approx(0.0, abs=1e-9)
    assert beta_at(odd, 10 / 3 + 10 / 6) == pytest.approx(1.5)


def test_capacity():
    cfg = TrainConfig(beta=5.0, objective="capacity", capacity_max=20.0, capacity_epochs=4.0)
    assert beta_at(cfg, 1.0) == 5.0
    assert capacity_at(cfg, 0.0) == 0.0
    assert capacity_at(cfg, 1.0) == pytest.approx(5.0)
    assert capacity_at(cfg, 4.0) == pytest.approx(20.0)
    assert capacity_at(cfg, 9.0) == pytest.approx(20.0)
    assert capacity_at(TrainConfig(beta_schedule="linear"), 1.0) is None  # the elbo objective


def test_negative_epoch_is_rejected():
    with pytest.raises(ValueError, match="-1"):
        beta_at(TrainConfig(), -1)


def test_constant_lr_with_and_without_warmup():
    assert lr_factor(TrainConfig(), 0.0) == 1.0
    cfg = TrainConfig(lr_warmup_epochs=2.0)
    assert lr_factor(cfg, 0.5) == pytest.approx(0.25)
    assert lr_factor(cfg, 2.0) == 1.0 and lr_factor(cfg, 50.0) == 1.0


def test_cosine_lr():
    cfg = TrainConfig(lr_schedule="cosine", epochs=10, lr_warmup_epochs=2.0)
    assert lr_factor(cfg, 0.0) == 0.0
    assert lr_factor(cfg, 1.0) == pytest.approx(0.5)  # warm-up midpoint
    assert lr_factor(cfg, 2.0) == pytest.approx(1.0)  # warm-up end: peak
    assert lr_factor(cfg, 6.0) == pytest.approx(0.5)  # midpoint of the decay
    assert lr_factor(cfg, 4.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(cfg, 10.0) == pytest.approx(0.0)  # end
    assert lr_factor(TrainConfig(lr_schedule="cosine", epochs=4), 2.0) == pytest.approx(0.5)


def test_optimizer_groups_and_set_lr():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = make_optimizer(model, TrainConfig(lr=0.01, weight_decay=0.1))
    assert isinstance(opt, torch.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and [p.shape for p in decay["params"]] == [(4, 3)]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3
    assert all(g["lr"] == 0.01 for g in opt.param_groups)
    set_lr(opt, 0.5)
    assert all(g["lr"] == 0.5 for g in opt.param_groups)
