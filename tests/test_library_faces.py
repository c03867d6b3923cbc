"""vaetune uses Ray and Optuna through their public faces only: no private module of theirs, no
private attribute of their objects. A private name holds only until their next release, and a
user who upgrades either would find the search broken."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

from dotted import resolve

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("ray", "optuna")
DEFINED = re.compile(r"(?:\bself\.|\bcls\.|\bdef )(_[A-Za-z]\w*)")  # a private name a class's code defines


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _library(dotted: str) -> bool:
    return dotted.split(".")[0] in LIBRARIES


# where the objects vaetune holds come from: Tune's (and the Train checkpoints it hands out), Ray's
# own functions, all of Optuna; not Ray Data or the third-party code Ray ships
SOURCES = {"ray": ("tune/**/*.py", "train/**/*.py", "air/**/*.py", "*.py"), "optuna": ("**/*.py",)}


@cache
def _library_private_names() -> frozenset[str]:
    """Every private attribute or method name the libraries' own code gives its objects."""
    names: set[str] = set()
    for library, patterns in SOURCES.items():
        folder = Path(importlib.import_module(library).__file__).parent
        for path in (p for pattern in patterns for p in folder.glob(pattern) if "tests" not in p.parts):
            names.update(n for n in DEFINED.findall(path.read_text(errors="ignore")) if _private(n))
    return frozenset(names)


def _inherited_private_names(cls: type) -> set[str]:
    """The private names the Ray and Optuna classes among `cls`'s ancestors define."""
    names: set[str] = set()
    for ancestor in cls.__mro__:
        if _library(ancestor.__module__):
            names.update(vars(ancestor).keys())
            try:
                names.update(DEFINED.findall(inspect.getsource(ancestor)))
            except (OSError, TypeError):  # a class without Python source
                pass
    return {n for n in names if _private(n)}


def _imports(tree: ast.Module) -> dict[str, str]:
    """The names a module binds by import -> what they are (`optuna`, `ray.tune.search.Searcher`)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None




def _library_bases(node: ast.ClassDef, bound: dict[str, str]) -> set[str]:
    """The private names a class written in vaetune inherits from Ray or Optuna."""
    names: set[str] = set()
    for base in node.bases:
        dotted = _dotted(base)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        full = bound.get(head, head) + (f".{rest}" if rest else "")
        if _library(full) and isinstance(cls := resolve(full), type):
            names |= _inherited_private_names(cls)
    return names


def private_uses(source: str) -> list[tuple[int, str]]:
    """Where a module's source reaches into Ray or Optuna privately: (line, what), in line order."""
    tree = ast.parse(source)
    bound = _imports(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, f"imports {m}") for m in modules if _library(m) and any(map(_private, m.split(".")))]
        elif isinstance(node, ast.ClassDef) and (inherited := _library_bases(node, bound)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.FunctionDef) and inner.name in inherited:
                    found.append((inner.lineno, f"overrides {inner.name} of {node.name}'s Ray/Optuna base"))
                elif isinstance(inner, ast.Attribute) and inner.attr in inherited and _root(inner) in ("self", "cls", "super"):
                    found.append((inner.lineno, f"uses {inner.attr} of {node.name}'s Ray/Optuna base"))
        elif isinstance(node, ast.Attribute) and _private(node.attr) and _root(node) not in ("self", "cls", "super"):
            origin = bound.get(_root(node) or "", "")  # a module the name was imported as, if any
            if _library(origin) or (not origin and node.attr in _library_private_names()):
                found.append((node.lineno, f"uses .{node.attr}"))
        elif isinstance(node, ast.Call) and _dotted(node.func) in ("getattr", "setattr", "hasattr", "delattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                and node.args[1].value in _library_private_names():
            found.append((node.lineno, f"uses {node.args[1].value!r}"))
    return sorted(found)


def _root(node: ast.Attribute) -> str | None:
    """The name an attribute chain starts from: `study` for study._storage.get_all_trials,
    `super` for super()._setup_study."""
    root: ast.expr = node
    while isinstance(root, ast.Attribute | ast.Call | ast.Subscript):
        root = root.func if isinstance(root, ast.Call) else root.value
    return root.id if isinstance(root, ast.Name) else None


def test_vaetune_uses_no_private_name_of_ray_or_optuna():
    broken = [f"{path.relative_to(ROOT)}:{line} {what}" for path in sorted((ROOT / "vaetune").rglob("*.py"))
              for line, what in private_uses(path.read_text())]
    assert not broken, "private names of Ray or Optuna (find a public way):\n" + "\n".join(broken)


PROBE = """
import optuna
from ray._private.state import state
from ray.tune.search import SearchGenerator
from ray.tune.search.optuna import OptunaSearch


class Truthful(OptunaSearch):
    def _setup_study(self, mode):
        super()._setup_study(mode)
        self._ot_study.set_metric_names(["x"])
        return self._mine, self.metric


class Planned(SearchGenerator):
    def grow(self, planned):
        self._total_samples, self._finished = planned, False


def hook(sampler, study, frame):
    study._storage.get_all_trials(study._study_id)
    return getattr(sampler, "_n_min_trials"), optuna.samplers._grid, frame.value
"""


def test_the_check_finds_each_kind_of_private_use():
    """The check itself, on a module reaching into Ray and Optuna the way vaetune once did (its own
    attributes and Ray's public ones are not private uses)."""
    assert private_uses(PROBE) == [
        (3, "imports ray._private.state.state"),
        (9, "overrides _setup_study of Truthful's Ray/Optuna base"),
        (10, "uses _setup_study of Truthful's Ray/Optuna base"),
        (11, "uses _ot_study of Truthful's Ray/Optuna base"),
        (17, "uses _finished of Planned's Ray/Optuna base"),
        (17, "uses _total_samples of Planned's Ray/Optuna base"),
        (21, "uses ._storage"),
        (21, "uses ._study_id"),
        (22, "uses '_n_min_trials'"),
        (22, "uses ._grid"),
    ]
