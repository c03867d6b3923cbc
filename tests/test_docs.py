"""The documentation against the code and the tree: the README stays a front door whose links
lead somewhere, and the key reference in docs/search-spaces.md is the one the code generates."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from vaetune.models import DEFAULT_ARCH, ModelConfig
from vaetune.spec import (
    Config,
    embed_reference,
    reference_yaml,
    validate_config,
    yaml_load,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SPACES_PAGE = ROOT / "docs" / "search-spaces.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _dotted(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            keys |= _dotted(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def _headings(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings (code blocks left out)."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    titles = re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", t.strip().lower()).replace(" ", "-") for t in titles}


def test_the_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 220, f"README.md has {len(lines)} lines: move detail to docs/"
    linked = {m for m in LINK.findall("\n".join(lines)) if not m.startswith(("http", "#"))}
    for page in ["docs/search-spaces.md", "docs/data.md", "docs/reports.md", "docs/tracking.md",
                 "docs/cluster.md", "docs/architecture.md", "benchmarks/README.md"]:
        assert any(link.split("#")[0] == page for link in linked), f"README does not link {page}"
    assert "docs/images/sweep_sprites.png" in linked


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page):
    text = page.read_text(encoding="utf-8")
    for link in LINK.findall(text):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {link} leads nowhere"
        if anchor and target.suffix == ".md":
            assert anchor in _headings(target.read_text(encoding="utf-8")), (
                f"{page.name}: {link}: no such heading in {target.name}")


def test_the_key_reference_on_the_page_is_the_one_the_code_generates():
    page = SPACES_PAGE.read_text(encoding="utf-8")
    assert embed_reference(page) == page, (
        "docs/search-spaces.md's key reference is out of date: run scripts/reference.py")


def test_a_page_showing_an_old_default_is_out_of_date():
    page = SPACES_PAGE.read_text(encoding="utf-8")
    assert "\n  lr: 0.001 " in page or "\n  lr: 0.001\n" in page
    assert embed_reference(page.replace("\n  lr: 0.001", "\n  lr: 0.002", 1)) == page


def test_the_reference_loads_to_the_default_configuration():
    raw = yaml_load(reference_yaml())
    # values as the pre-generated README documented them (YAML 1.2: `off` stays a word)
    assert raw["train"]["amp"] == "off" and raw["train"]["lr"] == 0.001
    assert raw["data"]["split"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert raw["data"]["background"] == [255, 255, 255]
    assert raw["model"]["arch"] == DEFAULT_ARCH == "conv" and raw["model"]["width"] == 32
    assert raw["search"]["sampler"] == "auto" and raw["tracking"]["uri"] is None
    # every key of the configuration is shown, and shown with its default
    defaults = Config().model_dump()
    assert _dotted(raw) == _dotted(defaults)
    assert validate_config(raw, "reference").model_dump() == defaults


def test_each_other_architecture_options_are_valid_with_their_defaults():
    from vaetune.models import MODELS, config_for

    text = reference_yaml()
    for arch in (a for a in MODELS if a != DEFAULT_ARCH):
        block = text.split(f"  # {arch}'s own options", 1)[1].split("\n", 1)[1]
        lines = []
        for line in block.splitlines():
            if not line.startswith("  # ") or "own options" in line:
                break
            if not line.startswith("  #   "):  # a wrapped comment's continuation
                lines.append("  " + line[4:])
        options = yaml_load("\n".join(lines))
        assert options, f"no options listed for {arch}"
        expected = config_for(arch).model_dump()
        own = set(expected) - set(ModelConfig.model_fields)
        assert options == {k: expected[k] for k in own}, arch


def test_the_metrics_section_names_every_metric():
    from vaetune.metrics import registry

    section = SPACES_PAGE.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in registry.METRICS if f"`{name}`" not in section]
    assert not missing, f"docs/search-spaces.md, Metrics: not named {missing}"


@pytest.mark.slow
def test_the_script_rewrites_a_stale_page_and_checks_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Keys\n\n<!-- reference:start -->\nstale block\n<!-- reference:end -->\n\nAfter.\n")
    script = [sys.executable, str(ROOT / "scripts" / "reference.py"), "--page", str(page)]
    stale = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "out of date" in stale.stdout
    assert subprocess.run(script, capture_output=True, text=True).returncode == 0
    text = page.read_text()
    assert "  amp: off" in text and "stale block" not in text and text.endswith("<!-- reference:end -->\n\nAfter.\n")
    assert embed_reference(text) == text  # what --check compares: the page is now current
