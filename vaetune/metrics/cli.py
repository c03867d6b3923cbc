"""`vaetune fid PATH_A PATH_B`: FID (and KID) between two image sets, offline.

Like ``python -m pytorch_fid`` (same network, preprocessing and Frechet distance) but without a
download, and for folders, .zip files and cached datasets (.pt uint8 tensors (N, C, H, W), or a
dict holding one under "images"). Images of different sizes are fine: the network resizes each
to 299x299. The loader is ``vaetune.data.read_images`` when the data package provides it, else
the small PIL loader below.
"""

from __future__ import annotations

import logging
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from vaetune.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp", ".gif")


def _data_reader():
    """``vaetune.data.read_images`` if the data package has it, else None."""
    try:
        from vaetune.data import read_images
    except ImportError:
        return None
    return read_images


def _decode(raw, name: str) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(raw) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)  # as pytorch-fid: convert('RGB')
    except Exception as exc:
        raise UserError(f"{name}: not a readable image ({exc})") from None
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # (3, H, W)


def _iter_pil(path: Path, limit: int | None) -> Iterator[torch.Tensor]:
    """Images (3, H, W) uint8 of a folder (recursive, sorted) or a .zip, at most ``limit``."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        for p in files[:limit]:
            yield _decode(p, str(p))
        return
    with zipfile.ZipFile(path) as zf:
        names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
        for n in names[:limit]:
            with zf.open(n) as f:
                yield _decode(f, f"{path}:{n}")


def _load_pt(path: Path, limit: int | None) -> torch.Tensor:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    images = obj.get("images") if isinstance(obj, dict) else obj
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise UserError(f"{path}: expected a uint8 tensor (N, C, H, W) or a dict with one under 'images'")
    return images[:limit]


def load_image_set(path: str, limit: int | None = None) -> torch.Tensor | list[torch.Tensor]:
    """The images at ``path``: one uint8 tensor (N, C, H, W), or a list of (3, H, W) when sizes differ."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such file or folder")
    if p.suffix == ".pt":
        return _load_pt(p, limit)
    if not (p.is_dir() or zipfile.is_zipfile(p)):
        raise UserError(f"{path}: expected an image folder, a .zip or a .pt of uint8 images")
    reader = _data_reader()
    if reader is not None:
        return reader(p, image_size=None, channels=3, limit=limit)
    images = list(_iter_pil(p, limit))
    if len({tuple(im.shape) for im in images}) == 1:
        return torch.stack(images)
    return images


def _chunks(images: torch.Tensor | list[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of at most ``batch_size`` images of equal size, in order."""
    if isinstance(images, torch.Tensor):
        yield from images.split(batch_size)
        return
    run: list[torch.Tensor] = []
    for im in images:
        if run and (len(run) == batch_size or im.shape != run[0].shape):
            yield torch.stack(run)
            run = []
        run.append(im)
    if run:
        yield torch.stack(run)


def _features(path: str, n: int | None, extractor) -> np.ndarray:
    images = load_image_set(path, n)
    if len(images) < 2:
        raise UserError(f"{path}: FID needs at least 2 images, found {len(images)}")
    return extractor.stream(_chunks(images, extractor.batch_size))


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
    t0 = time.perf_counter()
    extractor = FeatureExtractor(args.device, batch_size=args.batch_size)
    fa = _features(args.path_a, args.n, extractor)
    fb = _features(args.path_b, args.n, extractor)
    print(f"FID: {fid_from_features(fa, fb):.4f}")
    if args.kid:
        mean, std = kid(fa, fb)
        print(f"KID: {mean:.6f} +- {std:.6f}")
    print(f"N: {len(fa)} / {len(fb)}")
    log.info("%d images through Inception on %s in %.1fs", extractor.images_seen, extractor.device,
             time.perf_counter() - t0)
    return 0
