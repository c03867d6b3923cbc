"""YAML as people write it today: the loader every search-space file and `--set` value goes through."""

from __future__ import annotations

import re
from typing import Any

import yaml


class YamlLoader(yaml.SafeLoader):
    """YAML scalars as people write them today (YAML 1.2): `1e-3` is a number, not the string PyYAML's
    YAML 1.1 rules make of it, and only true/false are booleans, so `amp: off` stays the word "off"."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),  # 1e-3, 2.5E4: exponent without a dot
    list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """Parse YAML with :class:`YamlLoader`."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass
