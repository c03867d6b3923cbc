"""Search-space loading: every class of bad input fails with file, key, value and what is accepted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vaetune.metrics import registry
from vaetune.spec import (
    SpecError,
    flatten,
    load_space,
    space_from_dict,
    stored_config,
    validate_config,
)

GOOD = {
    "name": "demo",
    "data": {"source": "builtin:sprites", "image_size": 32, "count": 256},
    "model": {"arch": "conv", "latent_dim": {"choice": [4, 8, 16]}},
    "train": {"epochs": 2, "beta": {"loguniform": [0.001, 10]}, "lr": {"loguniform": [1e-4, 3e-3]},
              "warmup_epochs": {"uniform": [0, 2]}},
    "search": {"num_samples": 4, "points_to_evaluate": [{"train.beta": 1.0, "model.latent_dim": 8}]},
}


def write(tmp_path: Path, raw, name="space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def error_for(tmp_path: Path, raw, overrides=None) -> SpecError:
    path = write(tmp_path, raw)
    with pytest.raises(SpecError) as info:
        load_space(path, overrides)
    assert str(path) in str(info.value)
    return info.value


def test_good_space_splits_fixed_values_and_distributions(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    assert set(space.params) == {"model.latent_dim", "train.beta", "train.lr", "train.warmup_epochs"}
    assert space.params["train.beta"].kind == "loguniform"
    config = space.default_config()  # first point to evaluate over the defaults
    assert config.train.beta == 1.0 and config.model.latent_dim == 8
    assert config.train.lr == pytest.approx((1e-4 * 3e-3) ** 0.5)  # geometric mean of a loguniform
    assert config.train.warmup_epochs == 1.0  # midpoint of a uniform
    trial = space.resolve({"train.beta": 0.5, "model.latent_dim": 16})
    assert trial.train.beta == 0.5 and trial.model.latent_dim == 16 and trial.train.epochs == 2


@pytest.mark.parametrize(
    "patch, key, value, accepted",
    [
        ({"train": {"lr": -0.001}}, "train.lr", "-0.001", "greater than 0"),
        ({"train": {"lr": 0}}, "train.lr", "0", "greater than 0"),
        ({"model": {"latent_dim": 0}}, "model.latent_dim", "0", "greater than or equal to 1"),
        ({"train": {"epochs": "many"}}, "train.epochs", "'many'", "valid integer"),
        ({"train": {"lrr": 0.1}}, "train.lrr", "'lrr'", "accepted keys here: epochs"),
        ({"colour": 1}, "colour", "'colour'", "accepted keys here: name, data"),
        ({"model": {"arch": "transformer"}}, "model.arch", "'transformer'", "'conv', 'mlp' or 'resnet'"),
        ({"model": {"arch": {"choice": ["conv", "vit"]}}}, "model.arch", "'vit'", "a value of choice"),
        ({"model": {"arch": "conv", "downsample": 16}}, "model.downsample", "'downsample'",
         "unknown key for model.arch 'conv'; accepted keys here: arch, latent_dim, conditional, logvar_clamp, width, "
         "depth"),
        ({"model": {"arch": "resnet", "depth": 3}}, "model.depth", "'depth'",
         "accepted keys here: arch, latent_dim, conditional, logvar_clamp, width, downsample"),
        ({"model": {"arch": "mlp", "width": 0}}, "model.width", "0", "greater than or equal to 1"),
        ({"train": {"objective": "vae"}}, "train.objective", "'vae'", "'elbo' or 'capacity'"),
        ({"train": {"beta_schedule": "capacity"}}, "train.beta_schedule", "'capacity'", "set train.objective: capacity"),
        ({"data": {"augment": {"hflip": 1.5}}}, "data.augment.hflip", "1.5", "less than or equal to 1"),
        ({"data": {"image_size": 33}}, "data.image_size", "33", "needs a multiple of 2"),
        ({"model": {"arch": "resnet", "downsample": 16}, "data": {"image_size": 40}}, "data.image_size", "40",
         "multiple of 16"),
        ({"train": {"beta": {"uniform": [2, 1]}}}, "train.beta", "'uniform': [2, 1]", "low < high"),
        ({"train": {"lr": {"loguniform": [0, 1e-3]}}}, "train.lr", "loguniform", "0 < low < high"),
        ({"train": {"lr": {"loguniform": [-1, 1e-3]}}}, "train.lr", "loguniform", "0 < low < high"),
        ({"model": {"latent_dim": {"choice": [8, 0]}}}, "model.latent_dim", "0", "a value of choice [8, 0]"),
        ({"train": {"cycle_ratio": {"uniform": [0.5, 1.5]}}}, "train.cycle_ratio", "1.5", "less than or equal to 1"),
        ({"search": {"num_samples": {"choice": [1, 2]}}}, "search.num_samples", "choice", "only keys under data"),
        ({"data": {"split": {"train": 0.5, "val": 0.1, "test": 0.1}}}, "data.split", "0.5", "sum to 1"),
        ({"search": {"points_to_evaluate": [{"train.epochs": 3}]}}, "search.points_to_evaluate[0].train.epochs",
         "3", "only set searched keys"),
        ({"search": {"points_to_evaluate": [{"train.beta": -1}]}}, "search.points_to_evaluate[0].train.beta", "-1",
         "greater than or equal to 0"),
    ],
)
def test_bad_values_name_file_key_value_and_accepted(tmp_path, patch, key, value, accepted):
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    for section, sub in patch.items():
        if isinstance(sub, dict) and isinstance(raw.get(section), dict):
            raw[section].update(sub)
        else:
            raw[section] = sub
    err = error_for(tmp_path, raw)
    assert err.key == key, str(err)
    assert value in str(err), str(err)
    assert accepted in str(err), str(err)


def test_bad_yaml_and_missing_file(tmp_path):
    err = error_for(tmp_path, "name: x\ntrain: [unclosed\n")
    assert "line" in err.key and "valid YAML" in str(err)
    with pytest.raises(SpecError, match="does not exist"):
        load_space(tmp_path / "nope.yaml")
    assert "YAML mapping" in str(error_for(tmp_path, "- a\n- b\n"))


def test_overrides_are_validated_like_the_file(tmp_path):
    path = write(tmp_path, GOOD)
    space = load_space(path, ["train.epochs=5", "model.latent_dim=12", "train.beta={grid: [0.1, 1.0]}"])
    assert space.default_config().train.epochs == 5
    assert "model.latent_dim" not in space.params and space.default_config().model.latent_dim == 12
    assert space.params["train.beta"].kind == "grid"
    with pytest.raises(SpecError, match=r"train.lr: got -1.0; input should be greater than 0"):
        load_space(path, ["train.lr=-1.0"])
    with pytest.raises(SpecError, match=r"\(--set\).*key.path=value"):
        load_space(path, ["train.lr"])


def test_flatten_gives_dotted_leaves():
    config = space_from_dict(GOOD).default_config()
    flat = flatten(config)
    assert flat["train.beta"] == 1.0 and flat["data.split.train"] == 0.8 and flat["model.arch"] == "conv"


def test_each_architecture_flattens_to_its_own_keys_and_round_trips():
    for model in ({"arch": "conv", "depth": 2}, {"arch": "mlp", "width": 64}, {"arch": "resnet", "downsample": 16}):
        config = space_from_dict({**GOOD, "model": {**GOOD["model"], **model}, "data": {"image_size": 64}}).default_config()
        assert validate_config(config.model_dump(mode="json")) == config  # what checkpoints store
        keys = {k for k in flatten(config) if k.startswith("model.")}
        own = {"depth"} if model["arch"] != "resnet" else {"downsample"}
        assert keys == {"model.arch", "model.latent_dim", "model.conditional", "model.logvar_clamp", "model.width",
                        *(f"model.{k}" for k in own)}


# The model and train sections exactly as the layout before per-architecture configs and
# train.objective stored them in checkpoints (Config().model_dump(mode="json") of that version).
PREVIOUS_LAYOUT = {
    "name": "old",
    "data": {"image_size": 16},
    "model": {"arch": "conv", "latent_dim": 4, "width": 8, "depth": None, "downsample": 8, "conditional": False,
              "logvar_clamp": 10.0},
    "train": {"epochs": 10, "batch_size": 128, "lr": 0.001, "lr_schedule": "constant", "lr_warmup_epochs": 0.0,
              "weight_decay": 0.0, "grad_clip": None, "recon_loss": "mse", "recon_reduction": "sum",
              "recon_weight": 1.0, "beta": 1.0, "beta_schedule": "capacity", "warmup_epochs": 0.0, "cycles": 4,
              "cycle_ratio": 0.5, "capacity_max": 25.0, "capacity_epochs": 10.0, "capacity_gamma": 100.0,
              "free_bits": 0.0, "device": "auto", "amp": "off", "num_threads": None, "checkpoint_every": 1,
              "grid_every": 1, "grid_size": 8, "fid_every": 0, "fid_samples": 1000, "fid_reference": "val",
              "seed": 0},
}


def test_a_stored_config_of_the_previous_layout_is_translated():
    config = stored_config(PREVIOUS_LAYOUT)
    assert config.model.arch == "conv" and config.model.width == 8 and config.model.depth is None
    assert "downsample" not in config.model.model_dump()  # conv never read it
    assert config.train.objective == "capacity" and config.train.beta_schedule == "constant"
    assert config.train.beta == 1.0 and config.train.capacity_gamma == 100.0
    resnet = {**PREVIOUS_LAYOUT, "model": {**PREVIOUS_LAYOUT["model"], "arch": "resnet", "downsample": 16},
              "data": {"image_size": 32}}
    assert stored_config(resnet).model.downsample == 16 and "depth" not in stored_config(resnet).model.model_dump()
    # the same dict written by a person is not translated: each mistake is named
    with pytest.raises(SpecError, match="model.downsample: got 'downsample'; unknown key for model.arch 'conv'"):
        validate_config(PREVIOUS_LAYOUT, "old.yaml")
    assert stored_config(config.model_dump(mode="json")) == config  # the current layout passes unchanged


def test_a_checkpoint_of_the_previous_layout_loads(tmp_path):
    import torch

    from vaetune.checkpoint import atomic_save, load_model
    from vaetune.models import build_model, config_for

    torch.manual_seed(0)
    weights = build_model(config_for("conv", latent_dim=4, width=8), (3, 16, 16)).state_dict()
    atomic_save({"model": weights, "config": PREVIOUS_LAYOUT, "data": {"image_shape": [3, 16, 16], "num_classes": 0},
                 "epoch": 1, "version": "0.1.0"}, tmp_path / "old.pt")
    model, config, _ = load_model(tmp_path / "old.pt")
    assert config.model.width == 8 and config.train.objective == "capacity"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), weights.values(), strict=True))


def test_repo_demo_space_loads():
    root = Path(__file__).resolve().parents[1]
    space = load_space(root / "search_spaces" / "sprites.yaml")
    assert {"train.beta", "model.latent_dim", "train.lr", "train.warmup_epochs"} <= set(space.params)
    assert space.params["train.beta"].args == (0.001, 10)


@pytest.mark.slow
def test_cli_prints_one_line_error_without_traceback(tmp_path):
    path = write(tmp_path, {**GOOD, "train": {"lr": -1}})
    proc = subprocess.run([sys.executable, "-m", "vaetune.cli", "train", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}: train.lr: got -1" in proc.stderr


def test_help_answers_without_heavy_imports():
    code = ("import sys; from vaetune.cli import build_parser; build_parser().format_help(); "
            "bad = [m for m in ('torch', 'ray', 'mlflow', 'optuna', 'pandas') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    for cmd in ("search", "train", "fid", "report", "data"):
        proc = subprocess.run([sys.executable, "-m", "vaetune.cli", cmd, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage: vaetune" in proc.stdout


# ---------------------------------------------------------------------------------------------
# YAML as people write it, and metrics a trial reports


def test_yaml_reads_exponent_numbers_and_keeps_off_a_word(tmp_path):
    # PyYAML's YAML 1.1 rules read `1e-3` as a string and `off` as False; users write both
    text = ("train:\n  lr: 1e-3\n  amp: off\n  beta: {loguniform: [1e-4, 3e-3]}\n  epochs: 2\n"
            "search:\n  num_samples: 2\n")
    space = load_space(write(tmp_path, text))
    assert space.params["train.beta"].args == (1e-4, 3e-3)
    config = space.default_config()
    assert config.train.lr == 1e-3 and config.train.amp == "off"
    assert load_space(write(tmp_path, GOOD), ["train.lr=2e-4"]).resolve().train.lr == 2e-4


@pytest.mark.parametrize("section, key", [("train", "batch_size"), ("train", "lr"), ("data", "channels"),
                                          ("train", "grad_clip")])
def test_a_boolean_is_not_a_number(tmp_path, section, key):
    err = error_for(tmp_path, {**GOOD, section: {**GOOD.get(section, {}), key: True}})
    assert err.key == f"{section}.{key}" and err.value is True and "boolean is not a number" in err.accepted


def test_search_metric_must_be_one_a_trial_reports(tmp_path):
    err = error_for(tmp_path, {**GOOD, "search": {**GOOD["search"], "metric": "val/bogus"}})
    assert err.key == "search.metric" and err.value == "val/bogus"
    assert "val/elbo" in err.accepted and "val/psnr" in err.accepted
    assert "when" not in str(err)  # a fixed key's mistake is not blamed on a searched key
    err = error_for(tmp_path, {**GOOD, "search": {**GOOD["search"], "metric": "eval/kid_sample"}})
    assert "train.fid_every > 0" in err.accepted


def test_search_mode_defaults_to_the_metrics_own_direction(tmp_path):
    config = load_space(write(tmp_path, GOOD), ["search.metric=val/psnr"]).default_config()
    assert config.search.mode == "max"
    config = load_space(write(tmp_path, GOOD), ["search.metric=val/psnr", "search.mode=min"]).default_config()
    assert config.search.mode == "min"
    assert load_space(write(tmp_path, GOOD)).default_config().search.mode == "min"  # val/elbo


def test_a_metric_of_the_fitted_prior_needs_fid_and_the_prior(tmp_path):
    fid_on = {**GOOD, "train": {**GOOD["train"], "fid_every": 1}}
    for metric, mode in [("eval/fid_sample_gmm", "min"), ("eval/kid_sample_gmm", "min"),
                         ("eval/recall_gmm", "max"), ("eval/precision", "max"),
                         ("eval/recall", "max")]:
        config = load_space(write(tmp_path, fid_on), [f"search.metric={metric}"]).default_config()
        assert (config.search.metric, config.search.mode) == (metric, mode)
    err = error_for(tmp_path, fid_on, ["search.metric=eval/fid_sample_gmm", "train.prior=none"])
    assert (err.key, err.value) == ("search.metric", "eval/fid_sample_gmm")
    assert "needs train.prior: gmm" in err.accepted
    assert "eval/precision" in error_for(tmp_path, fid_on, ["search.metric=eval/nope"]).accepted
    err = error_for(tmp_path, GOOD, ["search.metric=eval/fid_sample_gmm"])  # FID off
    assert "train.fid_every > 0" in err.accepted
    err = error_for(tmp_path, fid_on, ["train.prior_covariance=banded"])
    assert err.key == "train.prior_covariance"
    assert "'full', 'diag', 'spherical' or 'tied'" in err.accepted
    assert error_for(tmp_path, fid_on, ["train.prior_components=0"]).key == "train.prior_components"
    config = load_space(write(tmp_path, fid_on)).default_config()
    t = config.train
    assert (t.prior, t.prior_components, t.prior_covariance) == ("gmm", 10, "diag")


def test_a_search_ranks_by_the_samples_its_user_is_handed_unless_told_otherwise(tmp_path):
    fid_on = {**GOOD, "train": {**GOOD["train"], "fid_every": 1}}
    config = load_space(write(tmp_path, fid_on)).default_config()  # train.prior: gmm, the default
    assert config.search.metric == "eval/fid_sample_gmm" and config.handed_sampler.name == "gmm"
    config = load_space(write(tmp_path, fid_on), ["train.prior=none"]).default_config()
    assert config.search.metric == "eval/fid_sample" and config.handed_sampler.name == "normal"
    # N(0, I) one setting away: ranked by its samples, the search hands N(0, I) out
    config = load_space(write(tmp_path, fid_on), ["search.metric=eval/kid_sample"]).default_config()
    assert config.handed_sampler.name == "normal"
    # a metric that measures no samples: the fitted mixture where there is one
    config = load_space(write(tmp_path, fid_on), ["search.metric=val/mse"]).default_config()
    assert config.handed_sampler.name == "gmm"
    config = load_space(write(tmp_path, fid_on), ["search.metric=val/mse", "train.prior=none"]).default_config()
    assert config.handed_sampler.name == "normal"
    # several objectives: the first that measures samples
    config = load_space(write(tmp_path, fid_on), ["search.metrics=[val/mse, eval/fid_sample]"]).default_config()
    assert config.handed_sampler.name == "normal"


def test_the_latent_samplers_have_one_name_each():
    from vaetune import samplers

    assert [s.name for s in samplers.SAMPLERS.values()] == ["normal", "gmm"]
    assert samplers.get("prior") is samplers.NORMAL  # N(0, I)'s older name on the command line
    with pytest.raises(ValueError, match="got 'mixture'; accepted: normal, gmm"):
        samplers.get("mixture")
    # each sample measure names its sampler, and the two measures of a kind differ by its suffix
    for name, metric in registry.METRICS.items():
        if metric.sampler is not None and name.endswith(samplers.GMM.suffix):
            assert metric.sampler == "gmm" and name.removesuffix("_gmm") in registry.METRICS
    assert registry.get("eval/fid_sample").sampler == "normal"


def test_the_registry_owns_the_sample_measures():
    from vaetune.metrics import GMM_KEYS, PR_KEYS
    from vaetune.metrics.registry import GENERATIVE, METRICS, SAMPLE_KEYS, generative, rankable

    assert PR_KEYS == ("eval/precision", "eval/recall")
    assert GMM_KEYS == ("eval/fid_sample_gmm", "eval/kid_sample_gmm", "eval/precision_gmm",
                        "eval/recall_gmm")
    assert {m.name for m in METRICS.values() if m.fitted} == set(GMM_KEYS)
    assert set(SAMPLE_KEYS) | set(GMM_KEYS) <= set(GENERATIVE)
    assert {k: METRICS[k].mode for k in (*PR_KEYS, *GMM_KEYS)} == {
        "eval/precision": "max", "eval/recall": "max", "eval/fid_sample_gmm": "min",
        "eval/kid_sample_gmm": "min", "eval/precision_gmm": "max", "eval/recall_gmm": "max"}
    assert set(generative(True)) - set(generative(False)) == set(GMM_KEYS)
    assert set(rankable(True, True)) - set(rankable(True, False)) == set(GMM_KEYS)
    assert not set(rankable(False, True)) & set(GENERATIVE)
