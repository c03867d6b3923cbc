"""The extension points as docs/architecture.md tells a newcomer to use them: an architecture
added as one config + one class + one decorator (here in this file, as it would be in
vaetune/models/tiny.py), and an objective added as one function (of vaetune/models/_objectives.py);
each validates in a search space, trains through `vaetune train` or `train()`, and loads back.
Also: the page's module map lists exactly the modules of the package, the packages keep to their
faces, and no package imports one that imports it back."""

from __future__ import annotations

import inspect
import re
from itertools import pairwise
from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import Field
from torch import nn

from vaetune.checkpoint import load_checkpoint, load_model
from vaetune.cli import main
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
from vaetune.spec import SpecError, space_from_dict
from vaetune.train import EachEpoch, latest_checkpoint, train

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


def test_the_module_map_lists_every_module_of_the_package():
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page.split("## Module map", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(vaetune/[\w/]+\.py)` \|", section, flags=re.MULTILINE)
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "vaetune").rglob("*.py"))
    assert sorted(listed) == modules, (
        f"docs/architecture.md's module map: missing {sorted(set(modules) - set(listed))}, "
        f"stale {sorted(set(listed) - set(modules))}")
    assert len(listed) == len(set(listed))


def _package_of(path: Path) -> str:
    """vaetune/search/_run.py -> vaetune.search; vaetune/search/__init__.py -> vaetune.search."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1])


def _private_part(dotted: str) -> str | None:
    """The package a dotted name reaches privately into (vaetune.metrics for vaetune.metrics._stats), if any."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_the_package_faces_hold():
    """No package exports a private name, and no module imports another package's private module
    or name (counting imports inside functions): a package is used through its __init__."""
    import ast

    broken = []
    for path in sorted((ROOT / "vaetune").rglob("*.py")):
        here = _package_of(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vaetune"):
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("vaetune")]
            else:
                continue
            for target in targets:
                owner = _private_part(target)
                if owner is not None and here != owner and not here.startswith(owner + "."):
                    broken.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
                    break
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                broken += [f"{path.relative_to(ROOT)} exports {e.value}" for e in getattr(node.value, "elts", [])
                           if isinstance(e, ast.Constant) and e.value.startswith("_")]
    assert not broken, "\n".join(broken)


def _unit(dotted: str) -> str:
    """The package or root module a dotted name belongs to: vaetune.search._run -> vaetune.search,
    vaetune.cli -> vaetune.cli, vaetune.__version__ -> vaetune (the package's own face)."""
    parts = dotted.split(".")
    if len(parts) < 2 or not ((ROOT / "vaetune" / parts[1]).is_dir() or (ROOT / "vaetune" / f"{parts[1]}.py").is_file()):
        return "vaetune"
    return ".".join(parts[:2])


def _imports_between_packages() -> dict[str, dict[str, str]]:
    """{package: {package it imports: where, the first time}} over every import of vaetune in the
    package: at the top, inside functions and under TYPE_CHECKING alike."""
    import ast

    graph: dict[str, dict[str, str]] = {}
    for path in sorted((ROOT / "vaetune").rglob("*.py")):
        here = _unit(_package_of(path) if path.name == "__init__.py" else
                     ".".join(path.relative_to(ROOT).with_suffix("").parts))
        edges = graph.setdefault(here, {})
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("vaetune"):
                targets = [f"{node.module}.{a.name}" for a in node.names] if node.module == "vaetune" else [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("vaetune")]
            else:
                continue
            for target in map(_unit, targets):
                if target != here:
                    edges.setdefault(target, f"{path.relative_to(ROOT)}:{node.lineno}")
    return graph


def test_no_package_imports_one_that_imports_it_back():
    """The packages (and root modules) of vaetune import each other without a loop, counting the
    imports inside functions: each can be read knowing only the floors below it. A loop found is
    printed with the line of each import in it."""
    graph = _imports_between_packages()
    state: dict[str, str] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == "open":
                loops.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not loops, "\n".join(loop[0] + "".join(f" -> {b} (by {graph[a][b]})" for a, b in pairwise(loop))
                                 for loop in loops)
    assert {"vaetune.spec", "vaetune.models", "vaetune.search", "vaetune.cli"} <= set(graph)  # it saw the package
    assert "vaetune.models" in graph["vaetune.spec"]  # and the imports: the spec reads the model stage's registries

