"""The house rules of the package's layout, read from its source: docs/architecture.md's module map
lists exactly the modules of vaetune; every package keeps to its face (no private name exported or
imported across packages); and nothing imports itself back, neither between packages nor between
files (module A imports B, which imports A), counting imports inside functions and under
TYPE_CHECKING. A loop found is printed with the file and line of each import in it."""

from __future__ import annotations

import ast
import sys
from collections.abc import Collection
from functools import cache
from itertools import pairwise
from pathlib import Path

from dotted import MISSING, resolve

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vaetune"


def _sources() -> list[Path]:
    return _files_under(PACKAGE)


@cache
def _files_under(package: Path) -> list[Path]:
    return sorted(package.rglob("*.py"))


def test_the_module_map_lists_every_module_of_the_package():
    import re

    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page.split("## Module map", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(vaetune/[\w/]+\.py)` \|", section, flags=re.MULTILINE)
    modules = sorted(str(p.relative_to(ROOT)) for p in _sources())
    assert sorted(listed) == modules, (
        f"docs/architecture.md's module map: missing {sorted(set(modules) - set(listed))}, "
        f"stale {sorted(set(listed) - set(modules))}")
    assert len(listed) == len(set(listed))


def _package_of(path: Path) -> str:
    """vaetune/search/_run.py -> vaetune.search; vaetune/search/__init__.py -> vaetune.search."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1])


def _module_of(path: Path) -> str:
    """vaetune/search/_run.py -> vaetune.search._run; vaetune/search/__init__.py -> vaetune.search."""
    return _package_of(path) if path.name == "__init__.py" else ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _private_part(dotted: str) -> str | None:
    """The package a dotted name reaches privately into (vaetune.metrics for vaetune.metrics._stats), if any."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _imports(path: Path) -> list[tuple[int, list[str]]]:
    """(line, dotted names imported) for every import of vaetune in one file: at the top, inside
    functions and under TYPE_CHECKING alike; `from vaetune.a import b` gives vaetune.a.b, relative
    imports are made absolute."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's own package, one level up per extra dot
                package = _package_of(path).split(".")
                package = package[:len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            if base == "vaetune" or base.startswith("vaetune."):
                found.append((node.lineno, [f"{base}.{a.name}" for a in node.names]))
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name == "vaetune" or a.name.startswith("vaetune.")]
            if names:
                found.append((node.lineno, names))
    return found


def test_the_package_faces_hold():
    """No package exports a private name, and no module imports another package's private module
    or name (counting imports inside functions): a package is used through its __init__."""
    broken = []
    for path in _sources():
        here = _package_of(path)
        for line, names in _imports(path):
            for target in names:
                owner = _private_part(target)
                if owner is not None and here != owner and not here.startswith(owner + "."):
                    broken.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
                    break
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                broken += [f"{path.relative_to(ROOT)} exports {e.value}" for e in getattr(node.value, "elts", [])
                           if isinstance(e, ast.Constant) and e.value.startswith("_")]
    assert not broken, "\n".join(broken)


Graph = dict[str, dict[str, str]]  # {unit: {unit it imports: "file:line" of the first such import}}


def _graph(unit_of) -> Graph:
    """The import graph of vaetune between the units `unit_of` maps a dotted name to (None: not a
    unit of the package), each edge with the first import that makes it."""
    graph: Graph = {}
    for path in _sources():
        here = unit_of(_module_of(path))
        edges = graph.setdefault(here, {})
        for line, names in _imports(path):
            for target in filter(None, map(unit_of, names)):
                if target != here:
                    edges.setdefault(target, f"{path.relative_to(ROOT)}:{line}")
    return graph


def _loops(graph: Graph) -> list[str]:
    """Every loop a depth-first walk of `graph` closes, as `a -> b (by file:line) -> ... -> a (by ...)`."""
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
    return [loop[0] + "".join(f" -> {b} (by {graph[a][b]})" for a, b in pairwise(loop)) for loop in loops]


def _package_unit(dotted: str) -> str:
    """The package or root module a dotted name belongs to: vaetune.search._run -> vaetune.search,
    vaetune.cli -> vaetune.cli, vaetune.__version__ -> vaetune (the package's own face)."""
    parts = dotted.split(".")
    if len(parts) < 2 or not ((PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file()):
        return "vaetune"
    return ".".join(parts[:2])


def test_no_package_imports_one_that_imports_it_back():
    """The packages (and root modules) of vaetune import each other without a loop, counting the
    imports inside functions: each can be read knowing only the floors below it."""
    graph = _graph(_package_unit)
    loops = _loops(graph)
    assert not loops, "\n".join(loops)
    assert {"vaetune.spec", "vaetune.models", "vaetune.search", "vaetune.cli"} <= set(graph)  # it saw the package
    assert "vaetune.models" in graph["vaetune.spec"]  # and the imports: the spec reads the model stage's registries


@cache
def _modules(package: Path) -> frozenset[str]:
    return frozenset(_module_of(p) for p in _files_under(package))


def _file_unit(dotted: str) -> str | None:
    """The file an imported dotted name is read from: vaetune.models._base.VAE -> vaetune.models._base
    (its file), vaetune.models.conv -> vaetune.models.conv (a module, not a name of the package's
    __init__), vaetune.models.VAE -> vaetune.models (the __init__). The packages above a module,
    which Python runs first, are not counted: a package's __init__ imports its own modules."""
    modules = _modules(PACKAGE)
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def test_no_file_imports_one_that_imports_it_back():
    """No loop between the files of vaetune, inside a package as well as across packages, counting
    the imports inside functions and under TYPE_CHECKING (a type-only loop is still two modules
    that cannot be read one without the other)."""
    graph = _graph(_file_unit)
    loops = _loops(graph)
    assert not loops, "import loops between files:\n" + "\n".join(loops)
    # it saw the files and their imports: a type-only one, one inside a function, one of a package's face
    assert "vaetune.models._config" in graph["vaetune.models._schedules"]  # under TYPE_CHECKING
    assert "vaetune.spec" in graph["vaetune.report._table"]  # inside _config_value
    assert "vaetune.models" in graph["vaetune.spec._config"]  # the model stage's __init__


def test_a_file_loop_is_found_and_printed_with_its_imports(tmp_path, monkeypatch):
    """The loop finder on a package of three files, a -> b -> c -> a (the last under TYPE_CHECKING,
    one inside a function): the loop is printed with the file and line of each import."""
    pkg = tmp_path / "vaetune" / "p"
    pkg.mkdir(parents=True)
    (tmp_path / "vaetune" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from vaetune.p.a import A\n")
    (pkg / "a.py").write_text("from vaetune.p.b import B\nA = 1\n")
    (pkg / "b.py").write_text("def f():\n    from vaetune.p import c\n    return c\nB = 2\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vaetune.p.a import A\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "vaetune")
    assert _loops(_graph(_file_unit)) == ["vaetune.p.a -> vaetune.p.b (by vaetune/p/a.py:1) -> vaetune.p.c "
                                          "(by vaetune/p/b.py:2) -> vaetune.p.a (by vaetune/p/c.py:3)"]
    assert _loops(_graph(_package_unit)) == []  # one package: no loop between packages


def _cited_names(text: str) -> set[str]:
    import re

    # vaetune.x.y written out, not a path (vaetune/x.py) nor part of a longer word or file name
    return {m.group(0).rstrip(".") for m in re.finditer(r"(?<![\w/.-])vaetune(?:\.[A-Za-z_]\w*)+", text)}


def _resolves(name: str) -> bool:
    return resolve(name) is not MISSING


def _string_constants() -> set[str]:
    """The strings the package writes out whole (MLflow tags such as vaetune.best_run_id are names
    of tags, not of code)."""
    out = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.add(node.value)
    return out


def test_every_dotted_name_the_docs_and_docstrings_cite_imports():
    pages = [*_sources(), *sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
    tags = _string_constants()
    stale = {}
    for page in pages:
        for name in _cited_names(page.read_text(encoding="utf-8")) - tags:
            if not _resolves(name):
                stale.setdefault(name, []).append(str(page.relative_to(ROOT)))
    assert not stale, "names that moved or never were: " + "; ".join(f"{n} in {', '.join(p)}" for n, p in sorted(stale.items()))


def test_a_stale_name_is_found_and_a_tag_or_path_is_not():
    text = "see `vaetune.search._gone` and vaetune.ranking.pick_best, vaetune/spec/_plan.py, my.vaetune.x"
    assert _cited_names(text) == {"vaetune.search._gone", "vaetune.ranking.pick_best"}
    assert not _resolves("vaetune.search._gone") and _resolves("vaetune.ranking.pick_best")
    assert _resolves("vaetune.spec.SearchPlan.kept_epochs")  # a dataclass's field
    assert "vaetune.best_run_id" in _string_constants()  # an MLflow tag, written out whole


def _metric_literals(package: Path, names: Collection[str]) -> list[str]:
    """`file:line 'name'` of every string constant in the package's files, but the registry's own
    (metrics/registry.py), that is one of `names` written out whole: a docstring or an f-string's
    text that mentions a name is not one, a name inside an f-string's braces is."""
    owner = package / "metrics" / "registry.py"
    found = []
    for path in _files_under(package):
        if path == owner:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{path.relative_to(package.parent)}:{node.lineno} {node.value!r}")
    return found


def _prefixed_metric_names() -> set[str]:
    """The registered metric names with a prefix (val/mse, eval/fid_sample_gmm, time/train_s, ...):
    the bare ones (epoch, beta, lr) are words of other vocabularies too (a checkpoint's keys, torch's
    param groups), so the rule reads only these; the code names them all by the registry's constants."""
    from vaetune.metrics.registry import METRICS

    return {name for name in METRICS if "/" in name}


def test_metric_names_are_written_out_only_in_the_registry():
    """One owner per name: a metric's name is a constant of vaetune.metrics.registry (VAL_MSE,
    FID_SAMPLE, of_sampler(FID_SAMPLE, GMM), ...) that every other file imports."""
    names = _prefixed_metric_names()
    assert {"val/mse", "eval/fid_sample_gmm", "time/train_s", "sys/gpu_peak_mem_mb"} <= names  # it read the registry
    found = _metric_literals(PACKAGE, names)
    assert not found, "metric names written out beside vaetune.metrics.registry (import its constants):\n" + "\n".join(found)


def test_a_metric_name_written_out_is_found_with_its_line(tmp_path):
    """The rule on a package of three files: the registry may write names out; elsewhere a name as a
    value, a key or inside an f-string's braces is found, a docstring or a bare word is not."""
    pkg = tmp_path / "vaetune"
    (pkg / "metrics").mkdir(parents=True)
    (pkg / "metrics" / "registry.py").write_text('VAL_MSE = "val/mse"\n')
    (pkg / "report.py").write_text('"""Shows val/mse."""\nQUALITY = "val/mse"\n'
                                   'def f(m):\n    return f"val/mse {m[\'eval/fid_sample\']}", m["epoch"]\n')
    (pkg / "fine.py").write_text('from vaetune.metrics.registry import VAL_MSE\nQUALITY = VAL_MSE\n')
    assert _metric_literals(pkg, {"val/mse", "eval/fid_sample"}) == [
        "vaetune/report.py:2 'val/mse'", "vaetune/report.py:4 'eval/fid_sample'"]
