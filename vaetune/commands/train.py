"""`vaetune train SPACE.yaml`: train one configuration of a search space."""

from __future__ import annotations

import argparse

from vaetune.commands._common import add_space_arguments


def register(commands) -> None:
    p = commands.add_parser("train", help="train one configuration of a search space",
                            description="Train one configuration: the space's fixed values, each searched key at "
                                        "its default, the first point to evaluate over them.")
    add_space_arguments(p)
    p.add_argument("--out", default=None, help="output folder (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vaetune.train import cmd_train

    return cmd_train(args)
