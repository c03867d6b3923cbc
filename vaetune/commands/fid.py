"""`vaetune fid A B`: FID (and KID, precision and recall) between two image sets, offline.

Like ``python -m pytorch_fid`` (same network, preprocessing and Frechet distance) but without a
download, and for folders, .zip files and cached datasets (.pt uint8 tensors), all read by
``vaetune.data.read_images`` at their native size (grey repeated to RGB; RGBA composited on
white, where pytorch-fid's ``convert('RGB')`` would drop alpha); Inception resizes them to
299x299 itself, as pytorch-fid does. All images of one set must share one size.
"""

from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("fid", help="FID (and KID) between two image sets, offline",
                            description="FID (and KID) between two image folders, zips or cached datasets.")
    p.add_argument("path_a", help="image folder, .zip, or a cached dataset (.pt)")
    p.add_argument("path_b")
    p.add_argument("--kid", action="store_true", help="also report KID with its standard deviation")
    p.add_argument("--pr", action="store_true", help="also report precision and recall of PATH_B's images against PATH_A's")
    p.add_argument("--n", type=int, default=None, help="use at most N images of each set")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print FID (and KID +- std with --kid; with --pr, precision and recall of path_b's images
    against path_a's, path_a playing the real images) between args.path_a and args.path_b."""
    import logging
    import time

    from vaetune.errors import UserError
    from vaetune.machine import resolve_device
    from vaetune.metrics import PR_K, FeatureExtractor, fid_from_features, kid, precision_recall

    if args.n is not None and args.n < 2:
        raise UserError(f"--n: got {args.n}; FID needs at least 2 images per set")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size: got {args.batch_size}; give a positive number")
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UserError(f"--device: got {args.device!r}; accepted: auto, cpu, cuda, cuda:N")
    resolve_device(args.device, what="--device")  # CUDA asked for where there is none: the reason, not a crash
    images_a, images_b = load_image_set(args.path_a, args.n), load_image_set(args.path_b, args.n)  # bad paths fail fast
    for path, images in ((args.path_a, images_a), (args.path_b, images_b)):
        if args.pr and len(images) <= PR_K:
            raise UserError(f"{path}: --pr needs at least {PR_K + 1} images (k={PR_K} neighbours), "
                            f"found {len(images)}")
    t0 = time.perf_counter()
    extractor = FeatureExtractor(args.device, batch_size=args.batch_size)
    fa, fb = extractor.images(images_a), extractor.images(images_b)
    print(f"FID: {fid_from_features(fa, fb):.4f}")
    if args.kid:
        mean, std = kid(fa, fb)
        print(f"KID: {mean:.6f} +- {std:.6f}")
    if args.pr:
        precision, recall = precision_recall(fa, fb, k=PR_K)
        print(f"Precision: {precision:.6f}")
        print(f"Recall: {recall:.6f}")
        print(f"k: {PR_K}")
    print(f"N: {len(fa)} / {len(fb)}")
    logging.getLogger(__name__).info("%d images through Inception on %s in %.1fs", extractor.images_seen,
                                     extractor.device, time.perf_counter() - t0)
    return 0


def load_image_set(path: str, limit: int | None = None):
    """uint8 RGB images (N, 3, H, W) of a folder, .zip or .pt; at least 2 of them, none of them a
    picture vaetune drew (check_not_drawn)."""
    from vaetune.data import read_images
    from vaetune.errors import UserError

    check_not_drawn(path, limit)
    images = read_images(path, image_size=None, channels=3, limit=limit)
    if len(images) < 2:
        raise UserError(f"{path}: FID needs at least 2 images, found {len(images)}")
    return images


ACCEPTED = ("give a folder (or .zip) of images, one image a file: the real images (e.g. the data's folder) "
            "and the images to measure against them")


def check_not_drawn(path: str, limit: int | None = None) -> None:
    """Refuse a set whose images are pictures vaetune drew: a search's results folder (or a folder in
    one), or a folder holding marked pictures (grids, figures: vaetune.outputs' mark), each many
    images at once; FID of them would be a number about grids, not about samples."""
    import io
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    from vaetune.checkpoint import CHECKPOINT_FILE
    from vaetune.data import open_source
    from vaetune.data.sources import source_scheme
    from vaetune.errors import UserError
    from vaetune.outputs import carries_mark
    from vaetune.results import SEARCH_FILE
    from vaetune.spec import DataConfig
    from vaetune.train import latest_checkpoint

    given = Path(path).expanduser()
    if given.is_dir():
        for depth, folder in enumerate((given, *given.resolve().parents)):
            where = "" if depth == 0 else f" (in {folder})"
            if (folder / SEARCH_FILE).is_file():
                raise UserError(f"{path}: a search's results folder{where}: its images are the search's picture "
                                f"grids, each many samples at once, not samples; {ACCEPTED}")
            # vaetune train --out: checkpoint_epochNNNN/ folders, each with checkpoint.pt and its grids
            if depth <= 2 and ((folder / CHECKPOINT_FILE).is_file() or latest_checkpoint(folder) is not None):
                raise UserError(f"{path}: a training run's folder{where}: its images are the run's picture grids, "
                                f"each many samples at once, not samples; {ACCEPTED}")
    if given.suffix == ".pt" or source_scheme(str(given))[0] not in ("folder", "zip"):
        return  # read_images says what it takes
    source = open_source(str(given), DataConfig(source=str(given), labels="none"))
    for item in source.items()[:limit]:
        if not item.name.lower().endswith((".png", ".gif")):
            continue
        try:
            opened = Image.open(given / item.name) if given.is_dir() else Image.open(io.BytesIO(item.read()))
            with opened as im:  # the header only: the mark is a chunk before the pixels
                drawn = carries_mark(im)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            continue  # read_images skips it, with its reason
        if drawn:
            raise UserError(f"{path}: {item.name} is a picture vaetune drew (a grid or figure of many images, marked "
                            f"Software: vaetune), not one image; {ACCEPTED}")
