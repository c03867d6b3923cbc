"""The fitted latent prior: recovery of a known mixture, checkpoint round trips, determinism,
degenerate inputs, and a tiny real VAE (encode_means, evaluate_generative with the prior)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture

from vaetune.checkpoint import load_model
from vaetune.data import load_data
from vaetune.metrics import GMM_KEYS, PR_KEYS, evaluate_generative
from vaetune.models import (
    COVARIANCES,
    REG_COVAR,
    LatentMixture,
    encode_means,
    fit_model_prior,
    fit_prior,
)
from vaetune.spec import space_from_dict
from vaetune.train import latest_checkpoint, standard_callbacks, train

SIGMAS = 5  # tolerance of every moment comparison, in standard errors

# Three well-separated 2-D Gaussians: weights, means, covariances
WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0], [12.0, 0.0], [0.0, 12.0]])
COVS = np.array([[[1.0, 0.6], [0.6, 1.5]], [[0.5, -0.2], [-0.2, 0.8]], [[2.0, 0.0], [0.0, 0.3]]])


def _known_mixture(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    comp = rng.choice(3, size=n, p=WEIGHTS)
    return np.stack([rng.multivariate_normal(MEANS[c], COVS[c]) for c in comp])  # (n, 2)


def _blobs(n: int = 400, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 4
    return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.5


def _moments_within_sampling_error(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> None:
    """Sample mean and covariance of z (M, D) agree with the exact ``mean``/``cov`` of the
    distribution z was drawn from. Standard errors: sqrt(Var(z_i)/M) for a mean; for a covariance
    entry sqrt(Var((z_i - m_i)(z_j - m_j))/M), estimated from z (fourth moments, no Gaussian
    assumption: a mixture is far from Gaussian)."""
    m = len(z)
    centred = z - z.mean(axis=0)
    se_mean = np.sqrt(z.var(axis=0) / m)
    products = centred[:, :, None] * centred[:, None, :]  # (M, D, D)
    se_cov = np.sqrt(products.var(axis=0) / m)
    assert np.all(np.abs(z.mean(axis=0) - mean) < SIGMAS * se_mean), (z.mean(axis=0), mean, se_mean)
    assert np.all(np.abs(np.cov(z, rowvar=False) - cov) < SIGMAS * se_cov), (np.cov(z, rowvar=False), cov)


def test_fit_recovers_a_known_mixture_and_samples_its_moments():
    n = 6000
    x = _known_mixture(n)
    prior = fit_prior(x, components=3, covariance="full", seed=0, max_points=None)
    # Match components to the truth by their means (the order of a fit is arbitrary)
    order = [int(np.argmin(np.linalg.norm(prior.means.numpy() - mu, axis=1))) for mu in MEANS]
    assert sorted(order) == [0, 1, 2]
    weights, means = prior.weights.numpy()[order], prior.means.numpy()[order]
    scale = prior.scale.numpy()[order]
    covs = scale @ scale.transpose(0, 2, 1)
    # Sampling error of the fit: sqrt(w(1-w)/N) for a weight, sqrt(Sigma_ii / (N w)) for a mean
    # coordinate, sqrt((Sigma_ii Sigma_jj + Sigma_ij^2) / (N w)) for a covariance entry (Gaussian).
    assert np.all(np.abs(weights - WEIGHTS) < SIGMAS * np.sqrt(WEIGHTS * (1 - WEIGHTS) / n))
    for w, mu, cov, true_mu, true_cov in zip(WEIGHTS, means, covs, MEANS, COVS, strict=True):
        var = np.diag(true_cov)
        assert np.all(np.abs(mu - true_mu) < SIGMAS * np.sqrt(var / (n * w)))
        se = np.sqrt((np.outer(var, var) + true_cov**2) / (n * w))
        assert np.all(np.abs(cov - true_cov) < SIGMAS * se + REG_COVAR)
    z = prior.sample(20_000, generator=torch.Generator().manual_seed(1)).double().numpy()
    assert z.shape == (20_000, 2) and prior.sample(3).dtype == torch.float32
    # After any M-step of EM, whatever the responsibilities r_nk (sum_k r_nk = 1), the mixture's
    # mean sum_k w_k mu_k is the data's mean and its covariance sum_k w_k (C_k + mu_k mu_k^T) -
    # mean mean^T the data's (1/N) covariance, plus reg_covar: only the draw of z errs.
    _moments_within_sampling_error(z, x.mean(axis=0), np.cov(x, rowvar=False, bias=True) + REG_COVAR * np.eye(2))


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_each_covariance_type_matches_scikit_learn_and_samples_its_moments(covariance):
    x = _blobs(600)
    prior = fit_prior(x, components=3, covariance=covariance, seed=4)
    gm = GaussianMixture(3, covariance_type=covariance, reg_covar=REG_COVAR, random_state=4).fit(x)
    np.testing.assert_allclose(prior.weights.numpy(), gm.weights_, rtol=1e-7)  # BLAS threads may differ
    np.testing.assert_allclose(prior.means.numpy(), gm.means_, rtol=1e-7, atol=1e-9)
    s = prior.scale.numpy()
    cov = {"full": lambda: s @ s.transpose(0, 2, 1), "tied": lambda: s @ s.T,
           "diag": lambda: s**2, "spherical": lambda: s**2}[covariance]()
    np.testing.assert_allclose(cov, gm.covariances_, rtol=1e-7, atol=1e-9)
    # Moments of the mixture, from scikit-learn's parameters
    c = gm.covariances_
    full_covs = {"full": lambda: c, "tied": lambda: np.broadcast_to(c, (3, 3, 3)),
                 "diag": lambda: np.stack([np.diag(v) for v in c]),
                 "spherical": lambda: np.stack([v * np.eye(3) for v in c])}[covariance]()  # (K, D, D)
    mean = gm.weights_ @ gm.means_
    second = sum(w * (c + np.outer(m, m)) for w, m, c in zip(gm.weights_, gm.means_, full_covs, strict=True))
    z = prior.sample(20_000, generator=torch.Generator().manual_seed(0)).double().numpy()
    _moments_within_sampling_error(z, mean, second - np.outer(mean, mean))


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_a_mixture_survives_a_weights_only_checkpoint_and_samples_the_same(covariance, tmp_path):
    prior = fit_prior(_blobs(), components=3, covariance=covariance, seed=1)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.ones(2)}, "prior": prior.to_state()}, path)
    loaded = LatentMixture.from_state(torch.load(path, weights_only=True)["prior"])
    assert loaded.covariance == covariance and loaded.components == 3 and loaded.dim == 3
    for name in ("weights", "means", "scale"):
        assert torch.equal(getattr(loaded, name), getattr(prior, name)), name
    draw = torch.Generator().manual_seed(7)
    before = prior.sample(50, generator=torch.Generator().manual_seed(7))
    assert torch.equal(loaded.sample(50, generator=draw), before)
    assert not torch.equal(loaded.sample(50, generator=draw), before)  # the generator moved on


def test_from_state_rejects_inconsistent_states():
    state = fit_prior(_blobs(), components=2, covariance="diag").to_state()
    with pytest.raises(ValueError, match=r"needs scale of shape \(2, 3\), got \(2, 3, 3\)"):
        LatentMixture.from_state({**state, "scale": torch.ones(2, 3, 3)})
    with pytest.raises(ValueError, match="version 99"):
        LatentMixture.from_state({**state, "version": 99})
    with pytest.raises(ValueError, match="lacks means"):
        LatentMixture.from_state({k: v for k, v in state.items() if k != "means"})


def test_the_same_seed_gives_the_same_fit_and_samples():
    x = _blobs(800, d=4)
    a, b = (fit_prior(x, components=4, covariance="full", seed=3, max_points=300) for _ in range(2))
    for name in ("weights", "means", "scale"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.sample(20, torch.Generator().manual_seed(0)), b.sample(20, torch.Generator().manual_seed(0)))
    other = fit_prior(x, components=4, covariance="full", seed=4, max_points=300)
    assert not torch.equal(other.means, a.means)


def test_max_points_subsamples_the_codes_it_fits(monkeypatch):
    fitted: list[np.ndarray] = []
    real_fit = GaussianMixture.fit

    def recording_fit(self, x, y=None):
        fitted.append(np.array(x))
        return real_fit(self, x, y)

    monkeypatch.setattr(GaussianMixture, "fit", recording_fit)
    x = _blobs(1000, d=2)
    fit_prior(x, components=3, max_points=250, seed=0)
    fit_prior(x, components=3, max_points=250, seed=1)
    fit_prior(x, components=3, max_points=None)
    first, second, everything = fitted
    rows = {tuple(r) for r in x}
    assert len(first) == len(second) == 250 and len(everything) == 1000
    assert {tuple(r) for r in first} <= rows and len({tuple(r) for r in first}) == 250  # distinct codes of x
    assert {tuple(r) for r in first} != {tuple(r) for r in second}  # the seed picks the subset


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_degenerate_codes_do_not_raise(covariance):
    few = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 5.0]])
    prior = fit_prior(few, components=10, covariance=covariance)
    assert prior.components == 3 and torch.isfinite(prior.sample(100)).all()

    one = fit_prior(np.array([[1.5, -2.0]]), components=10, covariance=covariance)
    assert one.components == 1 and torch.allclose(one.means, torch.tensor([[1.5, -2.0]], dtype=torch.float64))

    collapsed = _blobs(300, d=3)
    collapsed[:, 1] = 0.7  # an inactive latent unit: its mean never moves
    prior = fit_prior(collapsed, components=3, covariance=covariance)
    z = prior.sample(500, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(z).all()
    if covariance != "spherical":  # a spherical component spreads every dimension alike, by design
        assert (z[:, 1] - 0.7).abs().max() < 10 * np.sqrt(REG_COVAR)

    same = fit_prior(np.ones((20, 4)), components=5, covariance=covariance)
    assert torch.allclose(same.sample(10), torch.ones(10, 4), atol=0.01)


def test_a_mixture_that_cannot_be_fitted_falls_back_to_one_diagonal_gaussian():
    t = np.random.default_rng(0).normal(size=(200, 1)) * 1e7
    x = np.hstack([t, t, 2 * t])  # collinear at a scale where reg_covar is below rounding
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(3, covariance_type="full", random_state=0).fit(x)  # why a fallback is needed
    prior = fit_prior(x, components=3, covariance="full")
    assert prior.covariance == "diag" and prior.components == 1
    np.testing.assert_allclose(prior.means.numpy()[0], x.mean(axis=0))
    np.testing.assert_allclose(prior.scale.numpy()[0], np.sqrt(x.var(axis=0) + REG_COVAR))


@pytest.mark.parametrize(("means", "kwargs", "message"), [
    (np.zeros((0, 3)), {}, r"N, D >= 1, got shape \(0, 3\)"),
    (np.full((5, 2), np.nan), {}, "NaN or infinite"),
    (np.zeros((5, 2)), {"components": 0}, "components must be at least 1, got 0"),
    (np.zeros((5, 2)), {"covariance": "banded"}, "full, diag, spherical, tied, got 'banded'"),
    (np.zeros((5, 2)), {"max_points": 0}, "max_points must be at least 1"),
])
def test_bad_fit_arguments_are_clear_errors(means, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_prior(means, **kwargs)


# ---------------------------------------------------------------------------------------------
# A tiny conditional conv VAE trained one epoch on 16 px sprites (tests/test_train.py's size)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("prior_vae")
    raw = {
        "name": "tiny-prior",
        "data": {"source": "builtin:sprites", "image_size": 16, "count": 200, "cache_dir": str(root / "cache")},
        "model": {"arch": "conv", "width": 8, "latent_dim": 4, "conditional": True},
        "train": {"epochs": 1, "batch_size": 64, "lr": 0.003, "num_threads": 1, "grid_size": 2,
                  "fid_samples": 6, "fid_reference": "val", "seed": 2},
    }
    config = space_from_dict(raw).resolve()
    data = load_data(config.data)
    train(config, standard_callbacks(config, root / "run"), data=data)
    model, _, _ = load_model(latest_checkpoint(root / "run"))
    return model, data, config


def test_encode_means_equals_the_posterior_means_in_eval_mode(trained):
    model, data, _ = trained
    images, labels = data.subset("train")
    model.train()  # BatchNorm in train mode would use batch statistics: encode_means must not
    means = encode_means(model, images, labels, device="cpu", batch_size=7)  # ragged last batch
    assert model.training  # restored
    assert means.shape == (len(images), model.latent_dim) and means.dtype == torch.float32
    model.eval()
    with torch.no_grad():
        expected, _ = model.encode(images.float() / 255, labels)  # one batch, eval mode
    torch.testing.assert_close(means, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="conditional: give labels"):
        encode_means(model, images, None, device="cpu")
    with pytest.raises(ValueError, match="must be uint8"):
        encode_means(model, images.float(), labels, device="cpu")


def test_a_models_prior_encodes_only_the_subset_it_fits(trained):
    """fit_model_prior = fit_prior(encode_means(all images)) with max_points: the same seeded
    subset, but only those images go through the encoder."""
    model, data, _ = trained
    images, labels = data.subset("train")
    encoded: list[int] = []
    real_encode = model.encode

    def counting_encode(x, y=None):
        encoded.append(len(x))
        return real_encode(x, y)

    model.encode = counting_encode
    try:
        prior = fit_model_prior(model, images, labels, device="cpu", components=3, seed=5,
                                max_points=50)
    finally:
        del model.encode
    assert sum(encoded) == 50 < len(images)
    means = encode_means(model, images, labels, device="cpu")  # every image
    expected = fit_prior(means, components=3, seed=5, max_points=50)
    for key in ("weights", "means", "scale"):
        torch.testing.assert_close(getattr(prior, key), getattr(expected, key), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.slow
def test_evaluate_generative_with_a_fitted_prior(trained, tmp_path):
    model, data, config = trained
    images, labels = data.subset("train")
    prior = fit_prior(encode_means(model, images, labels, device="cpu"), components=3, seed=0)
    decoded: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_decode = model.decode

    def recording_decode(z, y=None):
        decoded.append((z.clone(), y.clone()))
        return real_decode(z, y)

    model.decode = recording_decode  # model.sample decodes through it too
    try:
        out = evaluate_generative(model, data, config.train, "cpu", cache_dir=tmp_path, prior=prior)
    finally:
        del model.decode
    assert set(GMM_KEYS) | set(PR_KEYS) <= set(out) and "eval/fid_sample" in out
    for key in (*GMM_KEYS, *PR_KEYS):
        assert np.isfinite(out[key]), key
    assert 0 <= out["eval/precision_gmm"] <= 1 and 0 <= out["eval/recall_gmm"] <= 1
    assert out["eval/fid_sample_gmm"] > 0
    # Two decodes of 6: N(0, I) samples, then the prior's, with the same labels; the prior's
    # codes are its draw from a generator seeded like the N(0, I) samples'.
    (z_normal, y_normal), (z_gmm, y_gmm) = decoded
    n = config.train.fid_samples
    assert len(z_gmm) == n and torch.equal(y_gmm, y_normal)
    torch.testing.assert_close(z_gmm, prior.sample(n, torch.Generator().manual_seed(config.train.seed)))
    assert not torch.equal(z_gmm, z_normal)
    wrong = fit_prior(np.random.default_rng(0).normal(size=(50, 3)), components=2)
    with pytest.raises(ValueError, match="latent prior has 3 dimensions, the model's latent 4"):
        evaluate_generative(model, data, config.train, "cpu", cache_dir=tmp_path, prior=wrong)


def test_latent_mixture_checks_its_shapes():
    with pytest.raises(ValueError, match="covariance must be one of"):
        LatentMixture(torch.ones(1), torch.zeros(1, 2), torch.ones(1, 2), "banded")
    for cov in COVARIANCES:
        with pytest.raises(ValueError, match="needs scale of shape"):
            LatentMixture(torch.ones(2) / 2, torch.zeros(2, 3), torch.ones(5), cov)
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        LatentMixture(torch.tensor([1.5, -0.5]), torch.zeros(2, 3), torch.ones(2, 3), "diag")
    built = LatentMixture(torch.ones(1, dtype=torch.float32), torch.zeros(1, 3), torch.ones(1, 3), "diag")
    assert built.means.dtype == torch.float64 and built.sample(0).shape == (0, 3)
