"""`vaetune spaces`: the search spaces shipped with vaetune, one line each; any of them runs by
name from any folder (`vaetune search ygo`)."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    what = "list the shipped search spaces (run one by name: vaetune search sprites)"
    p = commands.add_parser("spaces", help=what, description=what)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vaetune.spec import describe, shipped_spaces

    spaces = shipped_spaces()
    width = max(map(len, spaces), default=0)
    for name, path in spaces.items():
        print(f"{name:<{width}}  {describe(path)}")
    example = "sprites" if "sprites" in spaces else next(iter(spaces), "NAME")
    print(f"run one by name from any folder: vaetune search {example}; "
          f"copy one to edit it: {spaces.get(example, 'the file')}")
    return 0
