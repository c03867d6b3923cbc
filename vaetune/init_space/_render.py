"""A suggested search space as YAML with a comment on every choice and the facts in a header."""

from __future__ import annotations

import logging
import os
import textwrap
from typing import Any

import yaml

from vaetune.init_space._choices import Suggestion
from vaetune.init_space._facts import Spread

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# YAML with comments


_COMMENT_COLUMN = 40
_WIDTH = 100


def render(s: Suggestion, out: str | os.PathLike) -> str:
    """The commented YAML of a suggestion: facts in the header, a why per choice, the command last.

    Args:
        s: from :func:`suggest`.
        out: where the file will be written, for the closing command line.
    """
    lines = [f"# {line}" if line else "#" for line in _header(s)]
    lines.append("")
    for key, value in s.space.items():
        if isinstance(value, dict):
            lines.append("")
            lines.append(f"{key}:")
            for sub, sub_value in value.items():
                lines.extend(_key_lines(f"{key}.{sub}", sub, sub_value, s.comments, indent="  "))
        else:
            lines.extend(_key_lines(key, key, value, s.comments, indent=""))
    lines += ["", f"# Run it: vaetune search {out}"]
    return "\n".join(lines) + "\n"


def _key_lines(
    dotted: str, key: str, value: Any, comments: dict[str, str], indent: str
) -> list[str]:
    if isinstance(value, list) and value and isinstance(value[0], dict):  # points_to_evaluate
        body = [f"{indent}{key}:"] + [f"{indent}  - {_flow(v)}" for v in value]
    else:
        body = [f"{indent}{key}: {_flow(value)}"]
    comment = comments.get(dotted)
    if not comment:
        return body
    if len(body) == 1 and len(comment) + max(len(body[0]), _COMMENT_COLUMN) + 3 <= _WIDTH:
        return [body[0].ljust(_COMMENT_COLUMN) + " # " + comment]
    wrapped = textwrap.wrap(comment, _WIDTH - len(indent) - 2)
    return [f"{indent}# {line}" for line in wrapped] + body


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _header(s: Suggestion) -> list[str]:
    f, m = s.facts, s.machine
    lines = [
        f"A first search space for {f.source}, written by `vaetune init` from what it found there",
        "and on this machine. Every choice below says which fact it follows from; edit freely.",
        "",
        f"Images: {f.usable} usable, {len(f.skipped)} skipped",
    ]
    for name, reason in f.skipped[:10]:
        lines.append(f"  skipped {name}: {reason}")
    if len(f.skipped) > 10:
        lines.append(f"  ... and {len(f.skipped) - 10} more (vaetune data inspect lists them all)")
    w, h, a = f.width, f.height, f.aspect
    lines += [
        f"Size: width median {w.median:.0f} px ({_range(w)}), "
        f"height median {h.median:.0f} px ({_range(h)})",
        f"Aspect ratio w/h: median {a.median:.2f} (10-90% {a.p10:.2f}..{a.p90:.2f}); "
        f"{f.square_share:.0%} square within 10%",
        "Modes: "
        + ", ".join(f"{mode} {k}" for mode, k in sorted(f.modes.items(), key=lambda kv: -kv[1])),
    ]
    al = f.alpha
    lines.append(
        f"Alpha: {al.with_channel} images have an alpha channel; a seeded sample of {al.sampled} "
        f"decoded images (transparency needs pixels; sizes come from headers alone) has "
        f"{al.transparent} with transparent pixels"
    )
    if f.labels:
        shown = ", ".join(f"{k} {v}" for k, v in list(f.labels.items())[:12])
        more = f", ... ({len(f.labels)} in all)" if len(f.labels) > 12 else ""
        lines.append(f"Labels (sub-folders): {shown}{more}")
    else:
        lines.append("Labels: none (images are not in two or more sub-folders)")
    gpus = (
        (
            f"{m.gpus} GPU(s)"
            + (" (--gpu)" if m.gpus_given else "")
            + (f", {m.gpu_name}" if m.gpu_name else "")
            + (f", {m.gpu_memory_gib:.0f} GiB" if m.gpu_memory_gib else "")
        )
        if m.gpus
        else "no GPU"
    )
    lines.append(f"Machine: {m.cpus} CPU cores, {gpus}")
    wrapped: list[str] = []
    for line in lines:
        cont = "  " if line.startswith("  ") else ""
        wrapped += textwrap.wrap(line, _WIDTH - 2, subsequent_indent=cont + "  ") or [""]
    return wrapped


def _range(s: Spread) -> str:
    return f"10-90% {s.p10:.0f}..{s.p90:.0f}, {s.low:.0f}..{s.high:.0f}"
