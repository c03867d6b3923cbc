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
    """uint8 RGB images (N, 3, H, W) of a folder, .zip or .pt; at least 2 of them."""
    from vaetune.data import read_images
    from vaetune.errors import UserError

    images = read_images(path, image_size=None, channels=3, limit=limit)
    if len(images) < 2:
        raise UserError(f"{path}: FID needs at least 2 images, found {len(images)}")
    return images
