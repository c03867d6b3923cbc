"""`vaetune data inspect|fetch|prepare`: look at a data source, download or prepare a collection."""

from __future__ import annotations

import argparse

_LISTED = 10  # failed or skipped files printed; the rest are in the files the fetchers write


def register(commands) -> None:
    data = commands.add_parser("data", help="inspect, fetch and prepare image collections",
                               description="Inspect a data source, download a public collection, or prepare a "
                                           "Kaggle download.")
    actions = data.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("inspect", help="count, validate and preview a data source")
    p.add_argument("source", help="folder, .zip, hf:NAME, saved HF dataset, builtin:sprites, or a search-space YAML")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--channels", type=int, default=3, choices=[1, 3, 4])
    p.add_argument("--out", default=None, help="preview grid PNG (default: preview.png in the cache folder)")
    p.set_defaults(run=run_inspect)

    p = actions.add_parser("fetch", help="download a public image collection")
    p.add_argument("collection", choices=["ygo", "pokemon", "emoji", "pokesprite"])
    p.add_argument("--limit", type=int, default=None, help="at most this many images")
    p.add_argument("--out", default=None, help="destination folder (default data/<collection>)")
    p.add_argument("--api", default=None, help="ygo: card-list API URL (default: the public YGOPRODeck API)")
    p.add_argument("--dataset", default=None, help="pokemon: Hugging Face dataset name or local path")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--rate", type=float, default=10.0, help="ygo: at most this many requests per second")
    p.add_argument("--art-crop", action="store_true", help="ygo: fetch the cropped card art instead of full cards")
    p.add_argument("--emoji-set", default="twitter", help="emoji: twitter, google or apple")
    p.add_argument("--size", type=int, default=64, help="emoji: 16, 20, 32 or 64 px")
    p.add_argument("--no-labels", action="store_true", help="emoji: one folder, not one sub-folder per category")
    p.add_argument("--variant", default="both", help="pokesprite: regular, shiny or both (one sub-folder each)")
    p.add_argument("--registry", default=None,
                   help="emoji, pokesprite: npm registry URL (default: the public registry)")
    p.set_defaults(run=run_fetch)

    p = actions.add_parser("prepare", help="turn a Kaggle download into a labelled image folder")
    p.add_argument("collection", choices=["villagers", "apples", "impressionism"])
    p.add_argument("download", help="the downloaded (and unzipped, or .zip) Kaggle dataset")
    p.add_argument("--out", required=True, help="destination image folder")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels", default=None,
                   help="apples: comma-separated varieties; impressionism: comma-separated genres "
                        "(default: the four of the search space)")
    p.set_defaults(run=run_prepare)


def run_inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pydantic import ValidationError

    from vaetune.data.inspect import summary_lines
    from vaetune.data.load import load_data
    from vaetune.errors import UserError
    from vaetune.outputs import output_file
    from vaetune.spec import DataConfig, load_space
    from vaetune.viz import save_preview

    if Path(args.source).suffix.lower() in (".yaml", ".yml"):
        cfg = load_space(args.source).default_config().data
    else:
        try:
            cfg = DataConfig(source=args.source, image_size=args.image_size, channels=args.channels)
        except ValidationError as exc:  # named by its option
            e = exc.errors()[0]
            raise UserError(f"--{str(e['loc'][0]).replace('_', '-')}: got {e['input']!r}; {e['msg'].lower()}") from None
    out = output_file(args.out) if args.out else Path(cfg.cache_dir).expanduser() / "preview.png"
    data = load_data(cfg)
    print("\n".join(summary_lines(data, cfg)))
    save_preview(data, out)
    print(f"preview:  {out}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    """Download a collection; exit 1 when any image failed (they are listed in OUT/failed.txt)."""
    if args.collection == "ygo":
        from vaetune.fetch.ygo import YGO_API, fetch_ygo

        art = "cropped" if args.art_crop else "full"
        out = args.out or ("data/ygo_art" if art == "cropped" else "data/ygo")
        report = fetch_ygo(out, api=args.api or YGO_API, limit=args.limit, art=art,
                           concurrency=args.concurrency, rate=args.rate)
    elif args.collection == "emoji":
        from vaetune.fetch.emoji import NPM_REGISTRY, fetch_emoji

        report = fetch_emoji(args.out or "data/emoji", emoji_set=args.emoji_set, size=args.size,
                             labels=not args.no_labels, limit=args.limit, registry=args.registry or NPM_REGISTRY)
    elif args.collection == "pokesprite":
        from vaetune.fetch.pokesprite import NPM_REGISTRY, fetch_pokesprite

        report = fetch_pokesprite(args.out or "data/pokesprite", variant=args.variant, limit=args.limit,
                                  registry=args.registry or NPM_REGISTRY)
    else:
        from vaetune.fetch.pokemon import DEFAULT_POKEMON_DATASET, fetch_pokemon

        report = fetch_pokemon(args.out or "data/pokemon", dataset=args.dataset or DEFAULT_POKEMON_DATASET,
                               limit=args.limit)
    print(f"vaetune data fetch {args.collection}: {report.summary()}")
    _listed("failed", report.failed)
    return 0 if report.ok else 1


def run_prepare(args: argparse.Namespace) -> int:
    """Turn a Kaggle download into OUT/<label>/* and OUT_test/<label>/*."""
    from vaetune.fetch.prepare import prepare

    options = {}
    if args.labels:
        names = [s.strip() for s in args.labels.split(",") if s.strip()]
        options = {"apples": {"varieties": names}, "impressionism": {"genres": names}}.get(args.collection, {})
    report = prepare(args.collection, args.download, args.out, test_fraction=args.test_fraction,
                     seed=args.seed, **options)
    print(f"vaetune data prepare {args.collection}: {report.summary()}")
    _listed("skipped", report.skipped)
    return 0


def _listed(what: str, items: list[tuple[str, str]]) -> None:
    for rel, reason in items[:_LISTED]:
        print(f"  {what}: {rel}: {reason}")
    if len(items) > _LISTED:
        print(f"  ... and {len(items) - _LISTED} more")
