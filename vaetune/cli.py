"""The `vaetune` command line.

Every subcommand is declared here with argparse and names the function that runs it as
"module:function"; the module is imported only when that command runs, so `vaetune --help`
answers without importing torch, Ray or MLflow. A handler takes the parsed arguments and
returns an exit code (or None for 0). A UserError (bad file, key or value) is printed in one
line without a traceback, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vaetune.commands import dashboard, ui
from vaetune.errors import UserError

log = logging.getLogger("vaetune")


def _space_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("space", help="search-space YAML file, e.g. search_spaces/sprites.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the file, e.g. --set train.epochs=3 (repeatable)")


def _add(sub, name: str, handler: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(handler=handler)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaetune", description="Hyperparameter search for image VAEs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _add(sub, "search", "vaetune.search:cmd_search", "run a hyperparameter search (Ray Tune + Optuna + ASHA)")
    _space_args(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted search of the same name")
    p.add_argument("--address", default=None, help="join a running Ray cluster: auto or HOST:PORT")
    p.add_argument("--verbose", dest="tune_output", action="store_true",
                   help="Ray Tune's own status tables and trial output instead of the compact console")

    p = _add(sub, "train", "vaetune.train:cmd_train", "train one configuration of a search space")
    _space_args(p)
    p.add_argument("--out", default=None, help="output folder (default runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")

    data = _add(sub, "data", "", "inspect, fetch and prepare image collections")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    p = _add(dsub, "inspect", "vaetune.data.inspect:cmd_inspect", "count, validate and preview a data source")
    p.add_argument("source", help="folder, .zip, hf:NAME, saved HF dataset, builtin:sprites, or a search-space YAML")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--channels", type=int, default=3, choices=[1, 3, 4])
    p.add_argument("--out", default=None, help="preview grid PNG (default: preview.png in the cache folder)")
    p = _add(dsub, "fetch", "vaetune.fetch.cli:cmd_fetch", "download a public image collection")
    p.add_argument("collection", choices=["ygo", "pokemon"])
    p.add_argument("--limit", type=int, default=None, help="at most this many images")
    p.add_argument("--out", default=None, help="destination folder (default data/<collection>)")
    p.add_argument("--api", default=None, help="ygo: card-list API URL (default: the public YGOPRODeck API)")
    p.add_argument("--dataset", default=None, help="pokemon: Hugging Face dataset name or local path")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--rate", type=float, default=10.0, help="ygo: at most this many requests per second")
    p.add_argument("--art-crop", action="store_true", help="ygo: fetch the cropped card art instead of full cards")
    p = _add(dsub, "prepare", "vaetune.fetch.cli:cmd_prepare", "turn a Kaggle download into a labelled image folder")
    p.add_argument("collection", choices=["villagers", "apples", "impressionism"])
    p.add_argument("download", help="the downloaded (and unzipped, or .zip) Kaggle dataset")
    p.add_argument("--out", required=True, help="destination image folder")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels", default=None,
                   help="apples: comma-separated varieties; impressionism: comma-separated genres (default: the four of the search space)")

    p = _add(sub, "fid", "vaetune.metrics.cli:cmd_fid", "FID (and KID) between two image sets, offline")
    p.add_argument("path_a", help="image folder, .zip, or a cached dataset (.pt)")
    p.add_argument("path_b")
    p.add_argument("--kid", action="store_true", help="also report KID with its standard deviation")
    p.add_argument("--n", type=int, default=None, help="use at most N images of each set")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto")

    p = _add(sub, "export", "vaetune.export:cmd_export", "export the best trial's checkpoint of a finished search")
    p.add_argument("results", help="results/<name> folder of a search")
    p.add_argument("--metric", default=None, help="rank trials by this metric (default: the search metric)")
    p.add_argument("--mode", choices=["min", "max"], default=None)
    p.add_argument("--out", default="best.pt")
    p.add_argument("--register", default=None, metavar="NAME", help="also register it as an MLflow model")

    p = _add(sub, "sample", "vaetune.export:cmd_sample", "draw samples from an exported checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--label", type=int, default=None, help="class label for a conditional model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png")

    p = _add(sub, "reconstruct", "vaetune.export:cmd_reconstruct", "encode and decode images with a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--out", default="reconstructions")

    for command in (ui, dashboard):  # commands in the new shape: arguments beside the handler
        command.add_arguments(_add(sub, command.NAME, f"{command.__name__}:run", command.HELP))

    p = _add(sub, "report", "vaetune.report:cmd_report", "KL-weight table, rate-distortion plot and HTML report")
    p.add_argument("results", help="results/<name> folder of a search")
    p.add_argument("--out", default=None, help="output folder (default RESULTS/report)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report to the search's MLflow run")

    p = _add(sub, "interpolate", "vaetune.viz:cmd_interpolate", "interpolate between images in latent space")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="*", help="IMG_A IMG_B")
    p.add_argument("--mode", choices=["lerp", "slerp", "both"], default="both",
                   help="both (default): a lerp row (or grid) and a slerp one side by side")
    p.add_argument("--grid", nargs=4, metavar=("A", "B", "C", "D"), help="10x10 bilinear grid between 4 corners")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--label", type=int, default=None, help="class for a conditional model (default 0)")
    p.add_argument("--out", default="interpolation.png")

    p = _add(sub, "traverse", "vaetune.viz:cmd_traverse", "latent traversals, one row per dimension, by KL")
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None, help="search space whose validation images pick the base code and KL order")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--range", type=float, default=3.0)
    p.add_argument("--label", type=int, default=None,
                   help="class for a conditional model (default: the first validation image's)")
    p.add_argument("--out", default="traversal.png")

    p = _add(sub, "manifold", "vaetune.viz:cmd_manifold", "validation encodings coloured by label")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="search-space YAML of the data")
    p.add_argument("--label", default=None, help="which label colours the points (default: the first)")
    p.add_argument("--grid-steps", type=int, default=10, help="1-D/2-D latent: images per side of the decoded grid")
    p.add_argument("--cond-label", type=int, default=None, help="class decoding the grid of a conditional model (default 0)")
    p.add_argument("--out", default="manifold.png")

    p = _add(sub, "walk", "vaetune.viz:cmd_walk", "an animated walk through latent space (GIF)")
    p.add_argument("checkpoint")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--anchors", type=int, default=5, help="random codes the closed path passes through")
    p.add_argument("--label", type=int, default=None, help="class for a conditional model (default 0)")
    p.add_argument("--out", default="walk.gif")

    p = _add(sub, "progress", "vaetune.viz:cmd_progress", "reconstructions at each saved checkpoint of a trial")
    p.add_argument("trial_dir")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--out", default="progress.png")

    p = _add(sub, "neighbours", "vaetune.viz:cmd_neighbours", "samples beside their nearest training images")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="search-space YAML of the training data")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--pool", type=int, default=None,
                   help="training images searched by Inception distance (default: all on a GPU, 256 on CPU)")
    p.add_argument("--no-inception", action="store_true", help="pixel distances only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="neighbours.png")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.version:
        from vaetune import __version__

        print(__version__)
        return 0
    handler = getattr(args, "handler", "")
    if not handler:
        (parser if args.command is None else parser._subparsers._group_actions[0].choices[args.command]).print_help()
        return 2
    module, func = handler.split(":")
    try:
        code = getattr(importlib.import_module(module), func)(args)
    except UserError as err:
        print(f"vaetune {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaetune: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
