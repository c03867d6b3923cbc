"""The `vaetune data fetch` and `vaetune data prepare` handlers (arguments in vaetune/cli.py)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def cmd_fetch(args: argparse.Namespace) -> int:
    """Download a collection; exit 1 when any image failed (they are listed in OUT/failed.txt)."""
    if args.collection == "ygo":
        from vaetune.fetch.ygo import YGO_API, fetch_ygo

        # An `--art-crop` flag, where the parser declares one, fetches the art crops instead.
        art = "cropped" if getattr(args, "art_crop", False) else "full"
        out = args.out or ("data/ygo_art" if art == "cropped" else "data/ygo")
        report = fetch_ygo(out, api=args.api or YGO_API, limit=args.limit, art=art,
                           concurrency=args.concurrency, rate=args.rate)
    elif args.collection == "emoji":
        from vaetune.fetch.emoji import NPM_REGISTRY, fetch_emoji

        report = fetch_emoji(args.out or "data/emoji", emoji_set=args.emoji_set, size=args.size,
                             labels=not args.no_labels, limit=args.limit, registry=args.registry or NPM_REGISTRY)
    else:
        from vaetune.fetch.pokemon import DEFAULT_POKEMON_DATASET, fetch_pokemon

        report = fetch_pokemon(args.out or "data/pokemon", dataset=args.dataset or DEFAULT_POKEMON_DATASET,
                               limit=args.limit)
    print(f"vaetune data fetch {args.collection}: {report.summary()}")
    for rel, reason in report.failed[:10]:
        print(f"  failed: {rel}: {reason}")
    if len(report.failed) > 10:
        print(f"  ... and {len(report.failed) - 10} more")
    return 0 if report.ok else 1


def cmd_prepare(args: argparse.Namespace) -> int:
    """Turn a Kaggle download into OUT/<label>/* and OUT_test/<label>/*."""
    from vaetune.fetch.prepare import prepare

    # Label choices (apple varieties, painting genres), where the parser declares `--labels`.
    options = {}
    labels = getattr(args, "labels", None)
    if labels:
        names = [s.strip() for s in labels.split(",") if s.strip()]
        options = {"apples": {"varieties": names}, "impressionism": {"genres": names}}.get(args.collection, {})
    report = prepare(args.collection, args.download, args.out, test_fraction=args.test_fraction,
                     seed=args.seed, **options)
    print(f"vaetune data prepare {args.collection}: {report.summary()}")
    for rel, reason in report.skipped[:10]:
        print(f"  skipped: {rel}: {reason}")
    if len(report.skipped) > 10:
        print(f"  ... and {len(report.skipped) - 10} more")
    return 0
