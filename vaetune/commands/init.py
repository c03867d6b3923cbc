"""`vaetune init PATH`: write a commented first search space for a folder or .zip of images.

The library (:mod:`vaetune.init_space`) inspects the images and the machine and chooses; this
command checks the arguments, refuses to overwrite, writes the file and prints what it found.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands) -> None:
    what = "write a first search space sized to a folder (or .zip) of images and to this machine"
    p = commands.add_parser("init", help=what, description=what)
    p.add_argument("path", help="a folder of images (sub-folders are labels) or a .zip of images")
    p.add_argument("--out", default="space.yaml", help="the search-space YAML to write (never overwritten)")
    p.add_argument("--gpu", type=int, default=None, metavar="N",
                   help="GPUs the search will use (default: those torch sees here)")
    p.add_argument("--name", default=None, help="the search's name (default: the folder's name)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vaetune.errors import UserError
    from vaetune.init_space import detect_machine, inspect_source, render, suggest
    from vaetune.spec import space_from_dict

    out = Path(args.out)
    exists = UserError(
        f"--out {out}: the file exists; init never overwrites it: remove it or give another --out"
    )
    if out.exists():
        raise exists
    machine = detect_machine(gpus=args.gpu)
    facts = inspect_source(args.path)
    suggestion = suggest(facts, machine, name=args.name)
    space_from_dict(
        suggestion.space, f"vaetune init {args.path}"
    )  # a --name it cannot use fails here
    text = render(suggestion, out)
    try:
        with open(out, "x") as fh:  # "x": a file that appeared meanwhile is still not overwritten
            fh.write(text)
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        raise UserError(f"--out {out}: cannot be written ({exc.strerror or exc})") from None
    data, search = suggestion.space["data"], suggestion.space["search"]
    print(
        f"{facts.source}: {facts.usable} usable images, {len(facts.skipped)} skipped; "
        f"{len(facts.labels)} labels"
    )
    print(
        f"chose: {data['image_size']} px, {data['resize']}, {data['channels']} channels, "
        f"{suggestion.space['model']['arch']}, {suggestion.space['train']['epochs']} epochs, "
        f"{search['num_samples']} trials ({search['max_concurrent']} at a time), "
        f"metric {search['metric']}"
    )
    print(f"wrote {out}; run: vaetune search {out}")
    return 0
