"""Shapes, ranges and the contract of every architecture in vaetune.models, and its registry."""

from __future__ import annotations

import pytest
import torch

from vaetune.errors import UserError
from vaetune.models import MODELS, VAE, ModelConfig, VAEOutput, build_model, config_for
from vaetune.models.conv import ConvConfig, conv_depth

D = 8  # latent size used throughout: small, fast

# (arch, extra config, image sizes the arch admits)
CASES = [
    ("conv", {"width": 8}, [16, 32, 40, 64]),
    ("mlp", {"width": 32}, [16, 32, 40, 64]),
    ("resnet", {"width": 8, "downsample": 8}, [32, 64]),
    ("resnet", {"width": 8, "downsample": 16}, [64]),
]
SHAPE_CASES = [(arch, kw, size) for arch, kw, sizes in CASES for size in sizes]


def make(arch: str, shape: tuple[int, int, int], num_classes: int = 0, **kw) -> VAE:
    torch.manual_seed(0)
    return build_model(config_for(arch, latent_dim=D, **kw), shape, num_classes)


def test_registry_lists_all_architectures():
    assert set(MODELS) == {"conv", "mlp", "resnet"}
    assert all(issubclass(cls, VAE) for cls in MODELS.values())
    # each is paired with its own config, which names it and holds only its options
    assert {name: cls.config_class.model_fields["arch"].default for name, cls in MODELS.items()} == \
        {"conv": "conv", "mlp": "mlp", "resnet": "resnet"}
    assert "downsample" not in MODELS["conv"].config_class.model_fields
    assert "depth" not in MODELS["resnet"].config_class.model_fields


def test_conv_depth_halves_until_about_four_pixels():
    # 8 -> 4; 16 -> 4; 32 -> 4; 40 -> 5; 64 -> 4; 12 -> 6 (3 would be under 4); 33 is odd: at least 1
    assert [conv_depth(s) for s in (8, 16, 32, 40, 64, 12, 33)] == [1, 2, 3, 3, 4, 1, 1]
    assert ConvConfig().stages(64) == 4 and ConvConfig(depth=2).stages(64) == 2


def test_a_plain_model_config_builds_its_architecture_with_defaults():
    model = build_model(ModelConfig(arch="mlp", latent_dim=D), (1, 16, 16))
    assert type(model) is MODELS["mlp"] and model.latent_dim == D
    assert sum(isinstance(m, torch.nn.Linear) for m in model.encoder.modules()) == 4  # mlp's default depth


@pytest.mark.parametrize("arch,kw,size", SHAPE_CASES, ids=lambda v: str(v))
def test_output_shapes(arch, kw, size):
    model = make(arch, (3, size, size), **kw)
    x = torch.rand(2, 3, size, size)
    out = model(x)
    assert isinstance(out, VAEOutput)
    assert out.recon.shape == out.logits.shape == (2, 3, size, size)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, D)
    assert torch.allclose(out.recon, torch.sigmoid(out.logits))
    assert isinstance(model, MODELS[arch]) and model.image_shape == (3, size, size)


@pytest.mark.parametrize("arch,kw,_", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channels(arch, kw, _, channels):
    size = 64 if kw.get("downsample") == 16 else 32
    model = make(arch, (channels, size, size), **kw).eval()
    out = model(torch.rand(2, channels, size, size))
    assert out.recon.shape == (2, channels, size, size)
    samples = model.sample(3)
    assert samples.shape == (3, channels, size, size)
    assert samples.min() >= 0 and samples.max() <= 1


def test_conv_depth_follows_image_size_and_config():
    convs = lambda m: [c for c in m.encoder if isinstance(c, torch.nn.Conv2d)]  # noqa: E731
    assert len(convs(make("conv", (3, 40, 40), width=8))) == 3  # 40 -> 20 -> 10 -> 5
    assert len(convs(make("conv", (3, 64, 64), width=8))) == 4  # 64 -> 4
    m = make("conv", (3, 64, 64), width=8, depth=2)
    assert [c.out_channels for c in convs(m)] == [8, 16]
    assert m(torch.rand(2, 3, 64, 64)).recon.shape == (2, 3, 64, 64)


def test_mlp_depth_means_encoder_hidden_layers():
    linears = lambda seq: [mod for mod in seq.modules() if isinstance(mod, torch.nn.Linear)]  # noqa: E731
    m = make("mlp", (3, 40, 40), width=16)
    assert len(linears(m.encoder)) == 4 and len(linears(m.decoder)) == 3 + 1  # + output layer
    m = make("mlp", (3, 40, 40), width=16, depth=1)
    assert len(linears(m.encoder)) == 1 and len(linears(m.decoder)) == 1 + 1


@pytest.mark.parametrize("arch,size", [("conv", 12), ("resnet", 36)])
def test_indivisible_size_is_rejected(arch, size):
    with pytest.raises(ValueError, match="multiple of"):
        make(arch, (3, size, size), **({"depth": 3} if arch == "conv" else {}))


def test_logvar_is_clamped():
    model = make("mlp", (1, 16, 16), width=16, logvar_clamp=0.5)
    with torch.no_grad():
        model.to_stats.bias.fill_(100.0)  # logvar far above the clamp
    _, logvar = model.encode(torch.rand(4, 1, 16, 16))
    assert torch.all(logvar == 0.5)
    with torch.no_grad():
        model.to_stats.bias.fill_(-100.0)
    _, logvar = model.encode(torch.rand(4, 1, 16, 16))
    assert torch.all(logvar == -0.5)


@pytest.mark.parametrize("arch,kw", [("conv", {"width": 8}), ("mlp", {"width": 16})])
def test_eval_mode_z_is_mu_train_mode_samples(arch, kw):
    model = make(arch, (3, 16, 16), **kw)
    x = torch.rand(4, 3, 16, 16)
    model.eval()
    out = model(x)
    assert torch.equal(out.z, out.mu)
    assert torch.equal(model(x).recon, out.recon)  # deterministic
    model.train()
    out = model(x)
    assert not torch.allclose(out.z, out.mu)


def test_sample_is_reproducible_with_a_generator():
    model = make("conv", (3, 16, 16), width=8).eval()
    a = model.sample(5, generator=torch.Generator().manual_seed(1))
    b = model.sample(5, generator=torch.Generator().manual_seed(1))
    c = model.sample(5, generator=torch.Generator().manual_seed(2))
    assert a.shape == (5, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("arch,kw,size", [("conv", {"width": 8}, 16), ("mlp", {"width": 32}, 16),
                                          ("resnet", {"width": 8}, 32)])
def test_conditional_model_uses_labels(arch, kw, size):
    K = 5
    model = make(arch, (3, size, size), num_classes=K, conditional=True, **kw).eval()
    assert model.num_classes == K
    x, y = torch.rand(4, 3, size, size), torch.tensor([0, 1, 2, 4])
    mu, logvar = model.encode(x, y)
    assert mu.shape == logvar.shape == (4, D)
    mu_other, _ = model.encode(x, (y + 1) % K)
    assert not torch.allclose(mu, mu_other)  # labels reach the encoder
    out = model(x, y)
    assert out.recon.shape == (4, 3, size, size)

    z = torch.randn(4, D)
    a, b = model.decode(z, torch.zeros(4, dtype=torch.long)), model.decode(z, torch.full((4,), 3))
    assert a.shape == (4, 3, size, size) and (a - b).abs().max() > 1e-4  # labels reach the decoder

    s = model.sample(4, y=y)
    assert s.shape == (4, 3, size, size) and s.min() >= 0 and s.max() <= 1
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    r1, r2 = model.sample(6, generator=g()), model.sample(6, generator=g())  # y=None: random labels
    assert r1.shape == (6, 3, size, size) and torch.equal(r1, r2)


def test_conditional_model_requires_labels():
    model = make("conv", (3, 16, 16), num_classes=3, conditional=True, width=8).eval()
    with pytest.raises(ValueError, match="pass y"):
        model.encode(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="pass y"):
        model.decode(torch.randn(2, D))
    with pytest.raises(ValueError, match="shape"):
        model.encode(torch.rand(2, 3, 16, 16), torch.tensor([0, 1, 2]))


def test_unconditional_model_ignores_labels():
    model = make("conv", (3, 16, 16), num_classes=3, width=8).eval()
    assert model.num_classes == 0
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(model(x).recon, model(x, torch.tensor([0, 2])).recon)


def test_build_model_conditional_without_labels_is_a_user_error():
    with pytest.raises(UserError, match="model.conditional needs labels; the data has none"):
        build_model(ModelConfig(conditional=True), (3, 32, 32), num_classes=0)


def test_gradients_reach_every_parameter():
    model = make("resnet", (3, 32, 32), width=8, num_classes=2, conditional=True)
    out = model(torch.rand(2, 3, 32, 32), torch.tensor([0, 1]))
    (out.logits.mean() + out.mu.pow(2).mean() + out.logvar.mean()).backward()
    assert all(p.grad is not None for p in model.parameters())
