"""The search spaces shipped with vaetune, found by name from any folder.

Their source is search_spaces/ at the top of the repository; the package reaches them as
vaetune/spaces (a link to that folder in a checkout, copies in an installed wheel), so
`vaetune search ygo` reads the same file after `pip install vaetune` as in the repository.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

SHIPPED_DIR = "spaces"  # inside the vaetune package
SUFFIX = ".yaml"


def shipped_spaces() -> dict[str, Path]:
    """Name -> file of every shipped space, by name."""
    folder = Path(str(files("vaetune") / SHIPPED_DIR))
    return {p.stem: p.resolve() for p in sorted(folder.glob(f"*{SUFFIX}"))} if folder.is_dir() else {}


def shipped_space(given: str) -> Path | None:
    """The shipped space a space argument names: a bare name (`ygo`, `ygo.yaml`) that is not a
    file here; None for anything else (a path is always the user's own file)."""
    if "/" in given or Path(given).exists():
        return None
    return shipped_spaces().get(given.removesuffix(SUFFIX))


def describe(path: Path) -> str:
    """A shipped space's one line: the first sentence of its opening comment."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or not text:
            break
        words.append(text)
    match = re.match(r"(.+?\.)(\s|$)", " ".join(words))
    return match.group(1) if match else " ".join(words)
