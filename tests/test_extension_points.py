"""The extension points as docs/architecture.md tells a newcomer to use them: an architecture
added as one config + one class + one decorator (here in this file, as it would be in
vaetune/models/tiny.py), and an objective added as one function (of vaetune/models/_objectives.py);
each validates in a search space, trains through `vaetune train` or `train()`, and loads back. A
metric added as one registry entry and one measure is reported by training, accepted as
`search.metric` and a column of the KL table; a command added as one module runs through
`vaetune`; a report section added as one function is on the HTML and Markdown page of a real
search. Also: README's commands table names every command. (The layout's rules, module map,
faces and import loops, are tests/test_house_rules.py.)"""

from __future__ import annotations

import inspect
import math
import re
import sys
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest
import yaml
from pydantic import Field
from test_report import NAME as REPORTED_SEARCH
from test_report import finished_search
from torch import nn

import vaetune.commands
from vaetune.checkpoint import load_checkpoint, load_model
from vaetune.cli import main
from vaetune.metrics.registry import METRICS, Metric, register_metric
from vaetune.models import (
    MODELS,
    OBJECTIVES,
    VAE,
    LossTerms,
    ModelConfig,
    kl_per_dim,
    recon_loss,
    register_architecture,
    register_objective,
)
from vaetune.report import SECTIONS, PageData, Section, Table, kl_table
from vaetune.results import EPOCHS, STATUS, SearchResults
from vaetune.spec import SpecError, space_from_dict
from vaetune.train import MEASURES, EachEpoch, latest_checkpoint, register_measure, train

ROOT = Path(__file__).resolve().parents[1]


# -- the architecture: what vaetune/models/tiny.py would hold ----------------------------------


class TinyConfig(ModelConfig):
    arch: Literal["tiny"] = "tiny"
    hidden: int = Field(64, ge=1)  # units of the one hidden layer each way

    def check_image_size(self, size: int) -> None:
        if size > 32:
            raise ValueError("tiny takes images of at most 32 px")


class TinyVAE(VAE):
    def __init__(self, cfg: TinyConfig, image_shape, num_classes=0):
        super().__init__(cfg, image_shape, num_classes)
        C, H, W = self.image_shape
        h = cfg.hidden
        n_in = (C + self.num_classes) * H * W  # image and label channels, flattened
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(n_in, h), nn.ReLU())  # (B, h)
        self._init_head(h)
        self.decoder = nn.Sequential(
            nn.Linear(self.latent_dim + self.num_classes, h), nn.ReLU(),  # (B, h)
            nn.Linear(h, C * H * W), nn.Unflatten(1, (C, H, W)))  # (B, C, H, W) logits


# -- the objective: what one more function in vaetune/models/_objectives.py would be -----------


def recon_only(out, x, cfg, epoch):
    """The reconstruction alone: an autoencoder with a posterior it is never pulled towards."""
    recon = recon_loss(out, x, cfg.recon_loss, cfg.recon_reduction).mean()
    kl = kl_per_dim(out.mu, out.logvar).sum(dim=1).mean()
    return LossTerms(loss=cfg.recon_weight * recon, recon=recon, kl=kl)


@pytest.fixture(scope="module", autouse=True)
def registered():
    """`@register_architecture(TinyConfig)` above TinyVAE and `@register_objective("recon_only")`
    above recon_only, as the files in vaetune/ would have them; applied here for this module's
    tests only, so the rest of the suite sees the built-in registries."""
    register_architecture(TinyConfig)(TinyVAE)
    register_objective("recon_only")(recon_only)
    yield
    del MODELS["tiny"], OBJECTIVES["recon_only"]


def space(tmp_path: Path, model: dict | None = None, train: dict | None = None,
          image_size: int = 16) -> dict:
    return {
        "name": "tinyarch",
        "data": {"source": "builtin:sprites", "image_size": image_size, "count": 160,
                 "cache_dir": str(tmp_path.parent / "cache")},
        "model": {"arch": "tiny", "latent_dim": 4, "hidden": 32, **(model or {})},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.003, "num_threads": 1, "grid_size": 2,
                  **(train or {})},
    }


def spec_error(raw: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        space_from_dict(raw, "tiny.yaml")
    return info.value


def test_a_new_architecture_is_validated_by_its_own_config(tmp_path):
    config = space_from_dict(space(tmp_path)).default_config()
    assert type(config.model) is TinyConfig and config.model.hidden == 32
    err = spec_error(space(tmp_path, {"hidden": 0}))
    assert (err.key, err.value) == ("model.hidden", 0)
    assert "greater than or equal to 1" in err.accepted
    err = spec_error(space(tmp_path, {"width": 8}))  # conv's option, not tiny's
    assert err.key == "model.width" and "hidden" in err.accepted and "depth" not in err.accepted
    err = spec_error(space(tmp_path, image_size=64))  # its size rule, reported on data.image_size
    assert (err.key, err.value) == ("data.image_size", 64)
    assert err.accepted == "tiny takes images of at most 32 px"
    err = spec_error(space(tmp_path, {"arch": "huge"}))
    assert err.key == "model.arch" and "'conv', 'mlp', 'resnet' or 'tiny'" in err.accepted
    # searched against a built-in architecture, each option must suit each choice
    err = spec_error(space(tmp_path, {"arch": {"choice": ["mlp", "tiny"]}}))
    assert err.key == "model.hidden" and "unknown key for model.arch 'mlp'" in err.accepted


@pytest.mark.slow
def test_vaetune_train_trains_the_new_architecture_and_its_checkpoint_loads(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space(tmp_path)))
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "finished tinyarch: 1 epochs" in capsys.readouterr().out
    checkpoint = latest_checkpoint(tmp_path / "out")
    assert load_checkpoint(checkpoint)["config"]["model"] == {
        "arch": "tiny", "latent_dim": 4, "conditional": False, "logvar_clamp": 10.0, "hidden": 32}
    model, config, _ = load_model(checkpoint)
    assert type(model) is TinyVAE and config.model.hidden == 32
    assert model.encoder[1].out_features == 32 and model.sample(2).shape == (2, 3, 16, 16)


def test_vaetune_init_offers_the_new_architecture_where_it_takes_the_images(tmp_path):
    """init picks conv below 64 px and resnet from there, and names the other registered
    architectures that take the folder's size: tiny (at most 32 px) at 16 px, not at 64."""
    from PIL import Image

    for size in (16, 64):
        folder = tmp_path / f"px{size}"
        folder.mkdir()
        for i in range(20):
            Image.new("RGB", (size, size), (12 * i, 200 - 9 * i, 90)).save(folder / f"{i:02d}.png")
        out = tmp_path / f"space{size}.yaml"
        assert main(["init", str(folder), "--out", str(out), "--gpu", "0"]) == 0
        lines = out.read_text().splitlines()
        i = next(i for i, line in enumerate(lines) if line.startswith("  arch:"))
        above = []  # the comment init wrote above the key, its lines joined
        while lines[i - 1].startswith("  #"):
            i -= 1
            above.insert(0, lines[i].strip().lstrip("#").strip())
        text = " ".join(above)
        assert ("tiny" in text) == (size <= 32), text
        assert "also registered" in text and "set model.arch" in text


def test_a_new_objective_is_chosen_by_train_objective(tmp_path):
    err = spec_error(space(tmp_path, train={"objective": "nope"}))
    assert err.key == "train.objective" and "'recon_only'" in err.accepted
    raw = space(tmp_path, train={"objective": "recon_only", "beta": 4.0})
    config = space_from_dict(raw).default_config()
    epochs = []
    final = train(config, [EachEpoch(lambda end: epochs.append(end.metrics))])
    # the loss is the reconstruction alone (recon_weight 1): the KL, though reported, is not in it
    assert final["train/loss"] == pytest.approx(final["train/recon"], rel=1e-6)
    assert final["train/kl"] > 0 and len(epochs) == 1
    # the default objective, elbo, has the KL in the loss with weight beta
    elbo = train(space_from_dict(space(tmp_path, train={"beta": 4.0})).default_config())
    kl_in_loss = 4.0 * elbo["train/kl"]
    assert elbo["train/loss"] == pytest.approx(elbo["train/recon"] + kl_in_loss, rel=1e-5)


def test_the_recipes_on_the_page_are_the_code_of_this_test():
    page = (ROOT / "docs" / "architecture.md").read_text()
    for obj in (TinyConfig, TinyVAE, recon_only):
        assert inspect.getsource(obj) in page, f"the page no longer shows {obj.__name__}"
    assert "@register_architecture(TinyConfig)\nclass TinyVAE(VAE):" in page
    assert '@register_objective("recon_only")\ndef recon_only(' in page


# -- the metric: one entry in vaetune/metrics/registry.py, its measure in vaetune/train/_validate.py

MAE = Metric("val/mae", "val MAE", "min", "{:.4g}", "validation", "mean absolute error per pixel, [0, 1] units",
             table="quality")


def mae(recon, x):
    """(B,) mean absolute error per image, over all its values."""
    return (recon - x).abs().flatten(1).mean(1)


def _trained_search(tmp_path: Path, betas: list[float]) -> SearchResults:
    """A search of `betas` (grid), each trial a real 2-epoch `train()` whose every epoch's
    metrics are its history, as results/<name>/ would hold them."""
    raw = {**space(tmp_path, train={"epochs": 2, "beta": {"grid": betas}}), "search": {"metric": "val/mae"}}
    searched = space_from_dict(raw)
    rows, histories = [], {}
    for i, beta in enumerate(betas):
        config = space_from_dict({**raw, "train": {**raw["train"], "beta": beta}}).default_config()
        epochs = []
        train(config, [EachEpoch(lambda end, into=epochs: into.append(dict(end.metrics)))])
        trial = f"t{i}"
        histories[trial] = pd.DataFrame(epochs)
        rows.append({"trial_id": trial, "train.beta": beta, "status": "completed", "epochs": 2,
                     **{f"final/{m}": v for m, v in epochs[-1].items()}, f"best/{MAE.name}": epochs[-1][MAE.name],
                     "checkpoint": "", "trial_path": "", "mlflow_run_id": ""})
    state = {"name": "maesearch", "metric": MAE.name, "mode": MAE.mode, "searched": ["train.beta"], "max_epochs": 2}
    return SearchResults(folder=tmp_path, state=state, summary=pd.DataFrame(rows), tracking={}, space=searched,
                         histories=histories)


def test_a_new_metric_is_reported_ranks_a_search_and_is_a_kl_table_column(tmp_path):
    raw = {**space(tmp_path), "search": {"metric": "val/mae"}}
    err = spec_error(raw)  # not registered yet: no trial reports it
    assert (err.key, err.value) == ("search.metric", "val/mae")
    # what the entry in _METRICS and `@register_measure("val/mae")` above mae would do in vaetune/
    register_metric(MAE)
    register_measure(MAE.name)(mae)
    try:
        config = space_from_dict(raw).default_config()
        assert (config.search.metric, config.search.mode) == ("val/mae", "min")  # its direction: the registry's
        results = _trained_search(tmp_path, [0.01, 0.1, 1.0])
        for history in results.histories.values():
            assert list(history["epoch"]) == [1, 2]
            # every epoch reports it: the per-image mean |error|, which lies between MSE and its root
            for _, epoch in history.iterrows():
                assert epoch["val/mse"] <= epoch["val/mae"] <= math.sqrt(epoch["val/mse"])
        table = kl_table(results)
        header = table.header()
        assert header[header.index("SSIM") + 1] == "val MAE"  # its group's (quality) last column
        column = header.index("val MAE")
        measured = [results.histories[r.trial_id]["val/mae"].iloc[-1] for r in table.rows]
        assert [cells[column] for cells in table.cells()] == [MAE.format(v) for v in measured]
        best = min(range(len(measured)), key=measured.__getitem__)
        assert (best, column) in table.best_cells()
        assert "| val MAE |" in table.markdown().splitlines()[0]
        assert list(table.frame()["val/mae"]) == measured
        assert "val/mae" not in table.missing
    finally:
        del METRICS[MAE.name], MEASURES[MAE.name]


def test_a_measure_needs_its_metric_in_the_registry():
    with pytest.raises(ValueError, match="val/nope"):
        register_measure("val/nope")
    with pytest.raises(ValueError, match="eval/fid_sample"):
        register_measure("eval/fid_sample")  # registered, but measured by the generative evaluation


# -- the command: what vaetune/commands/metric.py would hold ---------------------------------------

COMMAND_FILE = '''"""`vaetune metric NAME`: what a metric a trial reports means, from the metric registry."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    what = "what a metric means: its label, its units, which way is better"
    p = commands.add_parser("metric", help=what, description=what)
    p.add_argument("name", help="a metric's name, e.g. val/psnr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vaetune.errors import UserError
    from vaetune.metrics.registry import METRICS

    metric = METRICS.get(args.name)
    if metric is None:
        raise UserError(f"unknown metric {args.name!r}; known: {', '.join(METRICS)}")
    better = "no value is best" if metric.descriptive else f"{metric.mode} is better"
    print(f"{metric.name} ({metric.label}): {metric.doc}; {better}")
    return 0
'''


def _help(capsys) -> tuple[str, list[str]]:
    """`vaetune --help`: its text and the commands it lists, in order."""
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    listed = text.split("COMMAND\n", 1)[1].split("\noptions:", 1)[0]
    return text, re.findall(r"^    (\S+)", listed, flags=re.MULTILINE)


def test_a_new_command_module_is_a_vaetune_command(tmp_path, capsys):
    """vaetune/commands/metric.py, written to a folder on the package's path (the package's own
    folder is left as it is), is found, imported and registered by `vaetune.cli` like the others."""
    _, shipped = _help(capsys)
    folder = tmp_path / "commands"
    folder.mkdir()
    (folder / "metric.py").write_text(COMMAND_FILE)
    path = vaetune.commands.__path__
    vaetune.commands.__path__ = [*path, str(folder)]
    try:
        text, listed = _help(capsys)
        assert listed == [*shipped, "metric"]  # after the shipped commands, whose order stays
        assert "metric what a metric means: its label, its units, which way is better" in " ".join(text.split())

        assert main(["metric", "val/psnr"]) == 0
        assert capsys.readouterr().out == (
            "val/psnr (PSNR (dB)): 10 log10(1 / MSE) in dB, averaged over images; max is better\n")

        assert main(["metric", "val/nope"]) == 2  # a user mistake: one line, exit code 2
        err = capsys.readouterr().err
        assert err.startswith("vaetune metric: error: unknown metric 'val/nope'; known: train/loss, ")
        assert err.count("\n") == 1 and "Traceback" not in err
        with pytest.raises(SystemExit) as exit_:  # a missing argument: argparse's one line
            main(["metric"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and "(see vaetune metric --help)" in err
    finally:
        vaetune.commands.__path__ = path
        sys.modules.pop("vaetune.commands.metric", None)
        vars(vaetune.commands).pop("metric", None)
    assert "metric" not in _help(capsys)[1]


def test_the_readme_lists_every_command(capsys):
    section = (ROOT / "README.md").read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    _, commands = _help(capsys)
    assert len(commands) > 10
    missing = [name for name in commands if not re.search(rf"(vaetune |\\\|){name}\b", section)]
    assert not missing, f"README.md's Commands table does not name {missing}"


# -- the report section: what one more function in vaetune/report/_page.py would be ---------------


def ends_section(page: PageData) -> Section | None:
    """How the trials ended: one row per status, with its trials and the epochs they trained."""
    s = page.results.summary
    if s.empty:
        return None
    rows = [[status, str(len(trials)), f"{trials[EPOCHS].mean():.1f}"] for status, trials in s.groupby(STATUS)]
    return Section("How the trials ended", [Table(["status", "trials", "mean epochs"], rows)])


@pytest.fixture(scope="module")
def reported_search(tmp_path_factory) -> Path:
    """tests/test_report.py's search (sprites, a β grid of three, 3 epochs): its results folder."""
    return finished_search(tmp_path_factory) / "results" / REPORTED_SEARCH


@pytest.mark.slow
def test_a_new_report_section_is_on_both_pages(reported_search, tmp_path, capsys):
    out = tmp_path / "report"
    SECTIONS.append(ends_section)  # `ends_section` at the end of SECTIONS, as _page.py would list it
    try:
        assert main(["report", str(reported_search), "--out", str(out), "--no-mlflow"]) == 0
    finally:
        SECTIONS.remove(ends_section)
    capsys.readouterr()
    html = (out / "report.html").read_text()
    assert html.index('<section id="all-trials">') < html.index('<section id="how-the-trials-ended">')
    assert ('<h2>How the trials ended</h2>\n<table class="data"><thead><tr><th class="l">status</th><th class="">'
            'trials</th><th class="">mean epochs</th></tr></thead><tbody><tr><td class="l">completed</td>'
            '<td class="">3</td><td class="">3.0</td></tr></tbody></table>\n</section>') in html
    markdown = (out / "report.md").read_text()
    assert markdown.endswith("## How the trials ended\n\n\n| status | trials | mean epochs |\n|---|---|---|\n"
                             "| completed | 3 | 3.0 |\n\n")


def test_the_metric_command_and_report_table_recipes_are_the_code_of_this_test():
    page = (ROOT / "docs" / "architecture.md").read_text()
    for obj in (mae, ends_section):
        assert inspect.getsource(obj) in page, f"the page no longer shows {obj.__name__}"
    assert '@register_measure("val/mae")\ndef mae(' in page
    entry = page.split('    Metric("val/mae", ', 1)[1].split("\n```", 1)[0]
    for value in (MAE.label, MAE.mode, MAE.fmt, MAE.producer, MAE.doc):
        assert f'"{value}"' in entry, f"the page's entry for val/mae is not MAE's: {value}"
    assert f'table="{MAE.table}"' in entry
    assert COMMAND_FILE in page, "the page no longer shows vaetune/commands/metric.py as this test runs it"
