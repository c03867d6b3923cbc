"""`vaetune fid PATH_A PATH_B`: FID (and KID) between two image sets, offline.

Like ``python -m pytorch_fid`` (same network, preprocessing and Frechet distance) but without a
download, and for folders, .zip files and cached datasets (.pt uint8 tensors), all read by
``vaetune.data.read_images`` at their native size (grey repeated to RGB; RGBA composited on
white, where pytorch-fid's ``convert('RGB')`` would drop alpha); Inception resizes them to
299x299 itself, as pytorch-fid does. All images of one set must share one size.
"""

from __future__ import annotations

import logging
import time

import torch

from vaetune.errors import UserError

log = logging.getLogger(__name__)


def load_image_set(path: str, limit: int | None = None) -> torch.Tensor:
    """uint8 RGB images (N, 3, H, W) of a folder, .zip or .pt, via ``vaetune.data.read_images``."""
    from vaetune.data import read_images

    return read_images(path, image_size=None, channels=3, limit=limit)


def _images(path: str, n: int | None) -> torch.Tensor:
    images = load_image_set(path, n)
    if len(images) < 2:
        raise UserError(f"{path}: FID needs at least 2 images, found {len(images)}")
    return images


def cmd_fid(args) -> int:
    """Print FID (and KID +- std with --kid) between args.path_a and args.path_b."""
    from vaetune.metrics._features import FeatureExtractor
    from vaetune.metrics._stats import fid_from_features, kid

    if args.n is not None and args.n < 2:
        raise UserError(f"--n: got {args.n}; FID needs at least 2 images per set")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size: got {args.batch_size}; give a positive number")
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UserError(f"--device: got {args.device!r}; accepted: auto, cpu, cuda, cuda:N")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device: got {args.device!r}, but CUDA is not available here")
    images_a, images_b = _images(args.path_a, args.n), _images(args.path_b, args.n)  # bad paths fail fast
    t0 = time.perf_counter()
    extractor = FeatureExtractor(args.device, batch_size=args.batch_size)
    fa, fb = extractor.images(images_a), extractor.images(images_b)
    print(f"FID: {fid_from_features(fa, fb):.4f}")
    if args.kid:
        mean, std = kid(fa, fb)
        print(f"KID: {mean:.6f} +- {std:.6f}")
    print(f"N: {len(fa)} / {len(fb)}")
    log.info("%d images through Inception on %s in %.1fs", extractor.images_seen, extractor.device,
             time.perf_counter() - t0)
    return 0
