"""The key reference of docs/search-spaces.md, generated from the code it describes.

Every section's keys with their defaults (from the pydantic models) and their comments (the
``# ...`` on the field's line in the source, or the comment lines just above it), as a YAML block
that itself loads to the defaults. For ``model``: the keys every architecture takes, the default
architecture's own options, then each other registered architecture's options commented out (a
YAML mapping cannot hold a key twice). ``embed_reference`` puts the block between the page's
markers; scripts/reference.py rewrites the page and tests/test_docs.py checks that it is current.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import textwrap
import tokenize
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from vaetune.models import DEFAULT_ARCH, MODELS, ModelConfig
from vaetune.spec._config import Config
from vaetune.spec._yaml import yaml_load

START = "<!-- reference:start -->"
END = "<!-- reference:end -->"
_COLUMN = 29  # where comments start, unless the key and value are longer
_WIDTH = 100  # longer comments continue on comment lines below


def reference_yaml() -> str:
    """Every key of a search-space file with its default and its comment, as YAML.

    The text loads (with `yaml_load`) to the default configuration: the default architecture's
    options are keys, the other architectures' are comments.
    """
    lines: list[str] = []
    for name, info in Config.model_fields.items():
        if name == "model":
            lines += _model_section()
            continue
        default = info.get_default(call_default_factory=True)
        lines += _entry(Config, name, default, 0)
    return "\n".join(lines) + "\n"


def embed_reference(markdown: str) -> str:
    """`markdown` with the text between its reference markers replaced by `reference_yaml()`.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    head, sep, rest = markdown.partition(START)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError(f"the page needs the markers {START} and {END}, in that order")
    return f"{head}{START}\n```yaml\n{reference_yaml()}```\n{END}{tail}"


def _model_section() -> list[str]:
    common = ModelConfig.model_fields
    lines = [_line("model:", "the keys every architecture takes, then model.arch's own options", 0)]
    for name, info in common.items():
        # arch is a string checked against the registry, not a Literal: its choices are MODELS
        comment = f"{' | '.join(MODELS)}; {_comment(ModelConfig, name)}" if name == "arch" else None
        lines += _entry(ModelConfig, name, info.get_default(), 1, comment)
    archs = [DEFAULT_ARCH, *(a for a in MODELS if a != DEFAULT_ARCH)]
    for arch in archs:
        cls = MODELS[arch].config_class
        own = {k: v for k, v in cls.model_fields.items() if k not in common}
        label = "the default architecture" if arch == DEFAULT_ARCH else f"with model.arch: {arch}"
        lines.append(f"  # {arch}'s own options ({label}; {cls.__module__.replace('.', '/')}.py):")
        prefix = "" if arch == DEFAULT_ARCH else "# "  # the other architectures' keys as comments
        for name, info in own.items():
            default = info.get_default(call_default_factory=True)
            lines += _entry(cls, name, default, 1, prefix=prefix)
    return lines


def _entry(cls: type[BaseModel], name: str, default: Any, depth: int,
           comment: str | None = None, prefix: str = "") -> list[str]:
    """One key's lines: `key: value  # comment`, or a nested section's header and keys."""
    comment = _comment(cls, name) if comment is None else comment
    if isinstance(default, BaseModel):
        lines = [_line(f"{prefix}{name}:", comment, depth)]
        for key in type(default).model_fields:
            lines += _entry(type(default), key, getattr(default, key), depth + 1, prefix=prefix)
        return lines
    choices = _choices(cls.model_fields[name].annotation)
    comment = "; ".join(c for c in (choices, comment) if c)
    return [_line(f"{prefix}{name}: {_scalar(default)}", comment, depth)]


def _line(text: str, comment: str, depth: int) -> str:
    left = "  " * depth + text
    if not comment:
        return left
    column = max(_COLUMN, len(left) + 2)
    first, *more = textwrap.wrap(comment, _WIDTH - column - 2) or [""]
    return "\n".join([f"{left.ljust(column)}# {first}", *(f"{' ' * column}#   {m}" for m in more)])


def _scalar(value: Any) -> str:
    """A default as flow YAML that `yaml_load` reads back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = re.fullmatch(r"[\w./:-]+", text) and not text.startswith(("-", ":"))
    return text if plain and yaml_load(text) == text else json.dumps(text)


def _choices(annotation: Any) -> str:
    """`a | b | c` for a Literal (or an optional Literal), else ''."""
    if get_origin(annotation) is Literal:
        return " | ".join(str(a) for a in get_args(annotation))
    if get_origin(annotation) is list:
        return ""
    literals = [a for a in get_args(annotation) if get_origin(a) is Literal]  # Literal[...] | None
    return _choices(literals[0]) if len(literals) == 1 else ""


def _comment(cls: type[BaseModel], name: str) -> str:
    """The source comment of field `name`, from the first class of `cls`'s bases that declares it;
    Python's None is spelled as YAML's null."""
    for klass in cls.__mro__:
        comments = _source_comments(klass) if issubclass(klass, BaseModel) else {}
        if name in comments:
            return re.sub(r"\bNone\b", "null", comments[name])
    return ""


def _source_comments(klass: type) -> dict[str, str]:
    """Field name -> its comment, for the fields a class declares in its own body."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):  # pydantic's own bases, classes made at run time
        return {}
    node = ast.parse(source).body[0]
    if not isinstance(node, ast.ClassDef):
        return {}
    trailing: dict[int, str] = {}
    alone: dict[int, str] = {}  # lines holding nothing but a comment
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            (trailing if tok.start[0] in code_lines else alone)[tok.start[0]] = text
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.update(range(tok.start[0], tok.end[0] + 1))
    comments = {}
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            above, line = [], stmt.lineno - 1
            while line in alone:
                above.insert(0, alone[line])
                line -= 1
            comments[stmt.target.id] = trailing.get(stmt.lineno) or " ".join(above)
    return comments
