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
    """The shipped space a space argument names: a bare name (`ygo`, `ygo.yaml`) when no file here
    has that name (`ygo.yaml` for `ygo`); None for anything else (a path is always the user's own
    file, and so is a file here of the name)."""
    if "/" in given or Path(given).exists() or own_file(given) is not None:
        return None
    return shipped_spaces().get(given.removesuffix(SUFFIX))


def own_file(given: str) -> Path | None:
    """The user's file a bare name without its suffix names here: `sprites` -> ./sprites.yaml."""
    if "/" in given or given.endswith(SUFFIX) or Path(given).exists():
        return None
    mine = Path(given + SUFFIX)
    return mine if mine.is_file() else None


def which_space(given: str) -> tuple[Path, str | None]:
    """The file a space argument names, and a line saying which one when a name (not a path) chose it:
    the shipped space, or the user's NAME.yaml here (which a shipped space of that name never shadows)."""
    shipped = shipped_space(given)
    if shipped is not None:
        return shipped, f"{given}: the shipped space {shipped}"
    mine = own_file(given)
    if mine is None:
        return Path(given), None
    other = shipped_spaces().get(given)
    also = f" (not the shipped space of that name, {other}; give its path to run that one)" if other else ""
    return mine, f"{given}: ./{mine}, the file in the working folder{also}"


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
