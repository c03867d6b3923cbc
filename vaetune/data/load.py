"""Loading data: :func:`load_data` for training (decode once, cache, split) and
:func:`read_images` / :func:`load_image` for the commands that read loose images (FID,
reconstruct, interpolate)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from vaetune.data.cache import Decoded, cache_key, cache_path, load_cached, save_cached
from vaetune.data.decode import IMAGE_SUFFIXES, DecodeSettings, InvalidImage, decode_image
from vaetune.data.imagedata import ImageData
from vaetune.data.sources import open_source, source_scheme
from vaetune.data.splits import split_indices
from vaetune.errors import UserError
from vaetune.spec import DataConfig

log = logging.getLogger(__name__)

_COMMON_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")  # named in messages


def decode_settings(cfg: DataConfig) -> DecodeSettings:
    return DecodeSettings(cfg.image_size, cfg.channels, tuple(cfg.background), cfg.resize, cfg.min_side)


def preprocessing_key(cfg: DataConfig) -> dict:
    """The settings that change decoded pixels or labels: part of the cache key (not split/augment)."""
    return cfg.model_dump(mode="json", include={"image_size", "channels", "background", "resize", "labels",
                                                "hf_image_column", "hf_label_column", "min_side"})


def load_data(cfg: DataConfig) -> ImageData:
    """Decode ``cfg.source`` once (cached under ``cfg.cache_dir``), check it, and split it.

    Raises:
        UserError: unknown or missing source, or fewer than ``cfg.min_images`` usable images.
    """
    source = open_source(cfg.source, cfg)
    check_fits_in_memory(cfg, source.count())
    key = cache_key(source.fingerprint(), preprocessing_key(cfg))
    path = cache_path(cfg.cache_dir, key)
    start = time.perf_counter()
    data = load_cached(path)
    if data is not None:
        log.info("loaded %d images of %s from cache %s in %.2f s", len(data.images), cfg.source, path,
                 time.perf_counter() - start)
    else:
        check_cache_room(cfg, source.count())
        data = source.decode(decode_settings(cfg))
        save_cached(path, data, cfg.source)
        log.info("cached %d images of %s in %s", len(data.images), cfg.source, path)
    _check_enough(cfg, data, path, source.other_files())
    return ImageData(
        images=data.images, labels=data.labels, label_names=data.label_names,
        splits=split_indices(len(data.images), cfg.split, cfg.split_seed), skipped=data.skipped,
        source=cfg.source, fingerprint=key, factors=data.factors,
    )


def check_batch_fits(source: str, batch_sizes, data: ImageData) -> None:
    """Refuse a batch larger than the training split: every epoch would be one smaller batch, not
    the batch size asked for (`source`: the space file, for the message)."""
    from vaetune.spec import SpecError

    n = len(data.splits.get("train", ()))
    too_big = [b for b in batch_sizes if b > n]
    if too_big:
        raise SpecError(source, "train.batch_size", max(too_big),
                        f"the training split holds {n} images (data.count and data.split.train), so an "
                        f"epoch would be one batch of {n}; give at most {n}, or more images")


def check_fits_in_memory(cfg: DataConfig, count: int | None) -> None:
    """Refuse a source whose decoded images cannot fit in this machine's memory, before decoding:
    the uint8 tensor (N, C, S, S), twice while it is stacked."""
    from vaetune.machine import check_fits

    if count:
        check_fits(2 * count * cfg.channels * cfg.image_size**2,
                   f"data: decoding {count} images of {cfg.channels}x{cfg.image_size}x{cfg.image_size} (as uint8, "
                   "twice while they are stacked)",
                   "lower data.image_size, or use fewer images (data.count for builtin:sprites)")


def check_cache_room(cfg: DataConfig, count: int | None) -> None:
    """Refuse to decode a source whose cache file the disk of data.cache_dir has no room for
    (decoding takes minutes on a large folder; the write would fail after them)."""
    from vaetune.machine import check_room

    if count and "://" not in str(cfg.cache_dir):
        check_room(cfg.cache_dir, count * cfg.channels * cfg.image_size**2,
                   f"data.cache_dir: the decoded images of {cfg.source} ({count} of "
                   f"{cfg.channels}x{cfg.image_size}x{cfg.image_size}, as uint8)",
                   "set data.cache_dir to a folder with room")


def _check_enough(cfg: DataConfig, data: Decoded, path: Path, others: Counter) -> None:
    usable = len(data.images)
    if data.skipped:
        log.warning("%s: skipped %d invalid images (%s); list in %s", cfg.source, len(data.skipped),
                    skip_summary(data.skipped), path.with_name(path.stem + ".skipped.tsv"))
    if usable >= cfg.min_images:
        return
    skipped = (f"{len(data.skipped)} files skipped ({skip_summary(data.skipped)}), listed in "
               f"{path.with_name(path.stem + '.skipped.tsv')}") if data.skipped else "no files skipped"
    if not usable and not data.skipped:
        found = ", ".join(f"{n} {ext}" for ext, n in others.most_common(8)) or "no files at all"
        raise UserError(f"data source {cfg.source!r}: no image files there (found {found}); accepted: the formats "
                        f"Pillow reads: {', '.join(_COMMON_SUFFIXES)} and {len(IMAGE_SUFFIXES) - len(_COMMON_SUFFIXES)} more")
    raise UserError(f"data source {cfg.source!r}: only {usable} usable images, fewer than "
                    f"data.min_images={cfg.min_images}; {skipped}")


def skip_summary(skipped: list[tuple[str, str]], top: int = 3) -> str:
    """The most common skip reasons with counts, e.g. '3 not an image, 2 corrupt'."""
    counts = Counter(reason.split(":")[0] for _, reason in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common(top))


def read_images(
    path: str | Path,
    *,
    image_size: int | None = None,
    channels: int = 3,
    background: tuple[int, int, int] = (255, 255, 255),
    limit: int | None = None,
) -> torch.Tensor:
    """Images of a folder, a .zip or a cached tensor file (.pt) as uint8 (N, C, H, W).

    Files are read in sorted path order; invalid ones are skipped with a warning.

    Args:
        path: folder, .zip, or a .pt holding a uint8 (N, C, H, W) tensor or a vaetune cache file.
        image_size: square side to resize to ("fit"); None keeps the native size, which every
            image must then share.
        channels: 1, 3 or 4; alpha is composited on ``background`` for 1 and 3.
        limit: at most this many images (the first ones).

    Raises:
        UserError: missing path, unsupported kind, no usable image, or differing native sizes.
    """
    path = Path(path).expanduser()
    if path.suffix == ".pt" and path.is_file():
        images = _read_tensor_file(path, image_size, channels, background)
        return images[:limit] if limit is not None else images
    scheme, _ = source_scheme(str(path))
    if scheme not in ("folder", "zip"):
        raise UserError(f"{path}: read_images takes an image folder, a .zip or a .pt tensor file")
    cfg = DataConfig(source=str(path), labels="none")
    settings = DecodeSettings(image_size, channels, tuple(background), "fit", 1)
    data = open_source(str(path), cfg).decode(settings, limit=limit)
    if data.skipped:
        log.warning("%s: skipped %d invalid images (%s)", path, len(data.skipped), skip_summary(data.skipped))
    if len(data.images) == 0:
        raise UserError(f"{path}: no usable images")
    return data.images


def _read_tensor_file(path: Path, image_size: int | None, channels: int,
                      background: tuple[int, int, int]) -> torch.Tensor:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not what we need
        raise UserError(f"{path}: cannot load the tensor file ({exc})") from None
    images = raw.get("images") if isinstance(raw, dict) else raw
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        raise UserError(f"{path}: expected a uint8 (N, C, H, W) tensor or a vaetune cache file")
    images = convert_channels(images, channels, background)
    if image_size is not None and images.shape[-2:] != (image_size, image_size):
        resized = F.interpolate(images.float(), size=(image_size, image_size), mode="bilinear",
                                antialias=True, align_corners=False)
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images.contiguous()


def convert_channels(images: torch.Tensor, channels: int, background: tuple[int, int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W) with C in 1/3/4 -> ``channels``, compositing alpha on ``background``."""
    have = images.shape[1]
    if have == channels:
        return images
    x = images.float()
    if have == 4:
        bg = torch.tensor(background, dtype=torch.float32).view(1, 3, 1, 1)
        alpha = x[:, 3:] / 255
        x = x[:, :3] * alpha + bg * (1 - alpha)
    elif have == 1:
        x = x.expand(-1, 3, -1, -1)
    if channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif channels == 4:
        x = torch.cat([x, torch.full_like(x[:, :1], 255.0)], dim=1)
    return x.round().clamp(0, 255).to(torch.uint8)


def load_image(path: str | Path, *, image_size: int | None = None, channels: int = 3,
               background: tuple[int, int, int] = (255, 255, 255), resize: str = "fit",
               min_side: int = 1) -> torch.Tensor:
    """One image file as uint8 (C, H, W), decoded exactly as data sets are.

    Raises:
        UserError: the file is missing or not a usable image.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir() and not path.is_file():  # reading a named pipe would wait forever
        raise UserError(f"{path}: not a regular file (a named pipe, socket or device); give an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the image ({exc.strerror or exc})") from None
    return image_from_bytes(data, str(path), image_size=image_size, channels=channels, background=background,
                            resize=resize, min_side=min_side)


def image_from_bytes(data: bytes, name: str, *, image_size: int | None = None, channels: int = 3,
                     background: tuple[int, int, int] = (255, 255, 255), resize: str = "fit",
                     min_side: int = 1) -> torch.Tensor:
    """An image file's bytes (an upload) as uint8 (C, H, W), decoded exactly as data sets are.

    Raises:
        UserError: naming `name`, when the bytes are not a usable image.
    """
    try:
        return torch.from_numpy(decode_image(data, DecodeSettings(image_size, channels, tuple(background), resize,
                                                                  min_side)))
    except InvalidImage as exc:
        raise UserError(f"{name}: not a usable image ({exc.reason})") from None
