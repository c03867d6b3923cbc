"""YAML as people write it today: the loader every search-space file and `--set` value goes through."""

from __future__ import annotations

import re
from typing import Any

import yaml


class DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping gives one key twice (YAML forbids it; PyYAML would keep the last silently)."""

    def __init__(self, path: str, first: yaml.Mark, second: yaml.Mark):
        self.path, self.first_line, self.second_line = path, first.line + 1, second.line + 1
        same = first.line == second.line  # a flow mapping: the columns tell the two apart
        at = [f"line {m.line + 1}" + (f" column {m.column + 1}" if same else "") for m in (first, second)]
        super().__init__(None, None, f"the key {path} is given twice, at {at[0]} and {at[1]}", second)


class YamlLoader(yaml.SafeLoader):
    """YAML scalars as people write them today (YAML 1.2): `1e-3` is a number, not the string PyYAML's
    YAML 1.1 rules make of it, and only true/false are booleans, so `amp: off` stays the word "off".
    A mapping with a key given twice (`epochs: 1` ... `epochs: 50`, two `train:` sections) raises
    :class:`DuplicateKey` naming the dotted key and both lines."""

    def construct_document(self, node):
        _check_unique_keys(node, "")
        return super().construct_document(node)


def _check_unique_keys(node: yaml.Node, path: str) -> None:
    """Walk the composed tree (before construction, so the dotted path of every key is known)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, yaml.Mark] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            child = f"{path}.{name}" if path else str(name)
            if name is not None and key.tag != "tag:yaml.org,2002:merge":
                if name in seen:
                    raise DuplicateKey(child, seen[name], key.start_mark)
                seen[name] = key.start_mark
            _check_unique_keys(value, child)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, f"{path}[{i}]")


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
