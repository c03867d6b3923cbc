"""Loss terms and the registered objectives against small hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from vaetune.models import (
    OBJECTIVES,
    DivergedError,
    TrainConfig,
    VAEOutput,
    capacity,
    check_finite,
    elbo,
    kl_per_dim,
    objective_loss,
    recon_loss,
)


def output(recon: list[float], mu: list[list[float]], logvar: list[list[float]]) -> VAEOutput:
    r = torch.tensor(recon).view(1, 1, 2, 2)
    logits = torch.log(r / (1 - r))
    mu_t, lv_t = torch.tensor(mu), torch.tensor(logvar)
    return VAEOutput(recon=r, logits=logits, mu=mu_t, logvar=lv_t, z=mu_t)


X = torch.tensor([1.0, 0.0, 0.5, 0.5]).view(1, 1, 2, 2)
OUT = output([0.5, 0.25, 0.5, 0.75], mu=[[0.0, 0.0]], logvar=[[0.0, 0.0]])


def test_mse_sum_and_mean():
    # squared errors: 0.25, 0.0625, 0, 0.0625
    assert recon_loss(OUT, X, "mse", "sum").tolist() == pytest.approx([0.375])
    assert recon_loss(OUT, X, "mse", "mean").tolist() == pytest.approx([0.375 / 4])


def test_bce_sum_and_mean():
    # -[x log p + (1 - x) log(1 - p)] per pixel
    terms = [-math.log(0.5), -math.log(0.75), -math.log(0.5), -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))]
    assert recon_loss(OUT, X, "bce", "sum").item() == pytest.approx(sum(terms), rel=1e-5)
    assert recon_loss(OUT, X, "bce", "mean").item() == pytest.approx(sum(terms) / 4, rel=1e-5)


def test_recon_is_per_image():
    x = torch.cat([X, torch.zeros_like(X)])  # (2, 1, 2, 2)
    out = VAEOutput(recon=torch.cat([OUT.recon, OUT.recon]), logits=torch.cat([OUT.logits, OUT.logits]),
                    mu=torch.zeros(2, 2), logvar=torch.zeros(2, 2), z=torch.zeros(2, 2))
    per_image = recon_loss(out, x, "mse", "sum")
    assert per_image.shape == (2,)
    assert per_image.tolist() == pytest.approx([0.375, 0.25 + 0.0625 + 0.25 + 0.5625])


def test_recon_rejects_unknown_kind():
    with pytest.raises(ValueError, match="'l1'"):
        recon_loss(OUT, X, "l1", "sum")
    with pytest.raises(ValueError, match="'max'"):
        recon_loss(OUT, X, "mse", "max")


def test_calibrated_is_a_gaussian_likelihood_at_the_batchs_optimal_variance():
    # squared errors 0.25, 0.0625, 0, 0.0625 -> the optimal shared variance is their mean, 0.09375;
    # each pixel's negative log-likelihood is e^2 / (2 var) + log(2 pi var) / 2 (by hand)
    var = 0.375 / 4
    by_hand = sum(e / (2 * var) + 0.5 * math.log(2 * math.pi * var) for e in (0.25, 0.0625, 0.0, 0.0625))
    assert recon_loss(OUT, X, "calibrated", "sum").tolist() == pytest.approx([by_hand])
    assert recon_loss(OUT, X, "calibrated", "mean").tolist() == pytest.approx([by_hand / 4])
    # at the optimum the batch's mean is D/2 (1 + log 2 pi var), and any other shared variance
    # gives the batch a higher negative log-likelihood (the variance is the maximum-likelihood one)
    assert by_hand == pytest.approx(4 / 2 * (1 + math.log(2 * math.pi * var)))
    for other in (0.5 * var, 0.9 * var, 1.1 * var, 2 * var):
        nll = sum(e / (2 * other) + 0.5 * math.log(2 * math.pi * other) for e in (0.25, 0.0625, 0.0, 0.0625))
        assert nll > by_hand


def test_calibrated_variance_is_shared_by_the_batch_and_held_in_the_gradient():
    x = torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    r = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0.01, 0.99)
    r.requires_grad_(True)
    out = VAEOutput(recon=r, logits=torch.log(r / (1 - r)), mu=torch.zeros(3, 1), logvar=torch.zeros(3, 1),
                    z=torch.zeros(3, 1))
    loss = recon_loss(out, x, "calibrated", "sum")  # (B,)
    var = ((r.detach() - x) ** 2).mean()  # one variance for the whole batch
    first = ((r.detach()[0] - x[0]) ** 2 / (2 * var) + 0.5 * torch.log(2 * math.pi * var)).sum()
    assert loss[0].item() == pytest.approx(first.item(), rel=1e-5)
    loss.sum().backward()
    # the gradient of a Gaussian NLL with the variance held: (recon - x) / var, pixel by pixel
    assert torch.allclose(r.grad, (r.detach() - x) / var, rtol=1e-4, atol=1e-6)


def test_calibrated_variance_has_a_floor():
    exact = output([1.0 - 1e-7, 1e-7, 0.5, 0.5], mu=[[0.0]], logvar=[[0.0]])  # reconstructs X almost exactly
    value = recon_loss(exact, X, "calibrated", "sum").item()
    assert math.isfinite(value)
    assert value == pytest.approx(4 * 0.5 * math.log(2 * math.pi * math.exp(-12.0)), rel=1e-3)


def test_kl_per_dim_known_values():
    mu = torch.tensor([[1.0, 0.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0, math.log(2.0)]])
    # 0.5 * (mu^2 + var - 1 - logvar): 0.5, 0, 0.5 * (1 - ln 2)
    assert kl_per_dim(mu, logvar).tolist()[0] == pytest.approx([0.5, 0.0, 0.5 * (1 - math.log(2))])


def test_elbo_beta_weighting():
    out = output([0.5, 0.25, 0.5, 0.75], mu=[[1.0, 1.0]], logvar=[[0.0, 0.0]])  # KL = 1.0
    terms = elbo(out, X, TrainConfig(recon_loss="mse", recon_weight=2.0, beta=0.5), 0.0)
    assert terms.recon.item() == pytest.approx(0.375)
    assert terms.kl.item() == pytest.approx(1.0)
    assert terms.loss.item() == pytest.approx(2.0 * 0.375 + 0.5 * 1.0)


def test_free_bits_clamp_penalised_kl_only():
    # batch of 2, 2 dims: per-dim KL averaged over the batch = [0.5 * (1 + 0)/2, 0.5 * (9 + 1)/2] = [0.25, 2.5]
    r = torch.full((2, 1, 2, 2), 0.5)
    out = VAEOutput(recon=r, logits=torch.zeros_like(r), mu=torch.tensor([[1.0, 3.0], [0.0, 1.0]]),
                    logvar=torch.zeros(2, 2), z=torch.zeros(2, 2))
    x = torch.full((2, 1, 2, 2), 0.5)  # zero MSE
    terms = elbo(out, x, TrainConfig(free_bits=1.0, beta=1.0), 0.0)
    assert terms.kl.item() == pytest.approx(2.75)  # true KL: mean over images of (0.5+4.5, 0+0.5)
    assert terms.loss.item() == pytest.approx(1.0 + 2.5)  # dim 0 raised to the 1-nat floor
    no_fb = elbo(out, x, TrainConfig(free_bits=0.0, beta=1.0), 0.0)
    assert no_fb.loss.item() == pytest.approx(2.75)


def test_free_bits_stop_gradient_below_the_floor():
    mu = torch.tensor([[0.1, 3.0]], requires_grad=True)
    r = torch.full((1, 1, 2, 2), 0.5)
    out = VAEOutput(recon=r, logits=torch.zeros_like(r), mu=mu, logvar=torch.zeros(1, 2), z=mu)
    elbo(out, r, TrainConfig(free_bits=0.5, beta=1.0), 0.0).loss.backward()
    assert mu.grad[0, 0] == 0 and mu.grad[0, 1] == pytest.approx(3.0)


def test_capacity_objective():
    out = output([0.5, 0.25, 0.5, 0.75], mu=[[1.0, 1.0]], logvar=[[0.0, 0.0]])  # KL = 1.0
    # beta and free bits set to values that would change the loss if the capacity objective read them
    cfg = TrainConfig(objective="capacity", recon_loss="mse", capacity_gamma=10.0, free_bits=5.0, beta=3.0,
                      capacity_max=1.0, capacity_epochs=4.0)
    # C = capacity_max at capacity_epochs and after: 4 nats with capacity_max 4
    assert capacity(out, X, cfg.model_copy(update={"capacity_max": 4.0}), 4.0).loss.item() == \
        pytest.approx(0.375 + 10.0 * 3.0)
    assert capacity(out, X, cfg, 1.0).loss.item() == pytest.approx(0.375 + 10.0 * 0.75)  # C = 1.0 * 1/4
    assert capacity(out, X, cfg, 1.0).kl.item() == pytest.approx(1.0)


def test_objective_loss_follows_train_objective_and_schedules():
    out = output([0.5, 0.25, 0.5, 0.75], mu=[[1.0, 1.0]], logvar=[[0.0, 0.0]])  # recon 0.375, KL = 1.0
    linear = TrainConfig(beta=4.0, beta_schedule="linear", warmup_epochs=2.0)
    assert objective_loss(out, X, linear, 1.0).loss.item() == pytest.approx(0.375 + 2.0 * 1.0)  # beta 2 mid-ramp
    cap = TrainConfig(objective="capacity", capacity_max=2.0, capacity_epochs=2.0, capacity_gamma=3.0)
    assert objective_loss(out, X, cap, 0.0).loss.item() == pytest.approx(0.375 + 3.0 * 1.0)  # C = 0
    assert set(OBJECTIVES) == {"elbo", "capacity"}
    assert OBJECTIVES["elbo"].uses_beta and not OBJECTIVES["capacity"].uses_beta


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_raises_diverged(bad):
    with pytest.raises(DivergedError) as info:
        check_finite(torch.tensor(bad), epoch=3, step=17, lr=0.001, beta=0.5)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.epoch == 3 and err.step == 17
    msg = str(err)
    assert f"loss became {bad} at epoch 3, step 17" in msg
    assert "lr=0.001" in msg and "beta=0.5" in msg and "train.grad_clip" in msg


def test_check_finite_passes_finite():
    check_finite(torch.tensor(1.5), epoch=0, step=0)
    check_finite(0.0, epoch=0, step=0)
