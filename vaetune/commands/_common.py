"""Arguments and formatting that several commands share."""

from __future__ import annotations

import argparse
import logging


def add_space_arguments(p: argparse.ArgumentParser) -> None:
    """A search-space file and its `--set key=value` overrides."""
    p.add_argument("space", help="search-space YAML file, or a shipped space by name (vaetune spaces), e.g. sprites")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the file, e.g. --set train.epochs=3 (repeatable)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """What every command that runs a search takes: --resume, --address, --verbose."""
    p.add_argument("--resume", action="store_true", help="continue an interrupted search of the same name")
    p.add_argument("--address", default=None, help="join a running Ray cluster: auto or HOST:PORT")
    p.add_argument("--verbose", dest="tune_output", action="store_true",
                   help="Ray Tune's own status tables and trial output instead of the compact console")


def fmt(v) -> str:
    """A searched value for a one-line summary."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)



def warn_unused(space, sections: tuple[str, ...] | None = None) -> None:
    """One warning line naming the keys of `space` that nothing reads as it stands (SearchSpace.unused)."""
    unused = space.unused(sections)
    if unused:
        logging.getLogger("vaetune").warning("%s: set but read by nothing as the space stands (remove them, or set "
                                             "what they depend on): %s", space.source, "; ".join(unused))
