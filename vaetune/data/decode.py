"""Decoding one image into a uint8 (C, H, W) array: validation, channels, resizing.

Every source (folder, zip, Hugging Face dataset) hands its images to :func:`decode_image`, so a
PNG decodes the same way wherever it comes from. A file that cannot be used raises
:class:`InvalidImage` with a short reason (``empty file``, ``not an image``, ``corrupt: ...``,
``too small: ...``); the caller skips it and lists it.

Channels (``data.channels``):

* ``4`` -- RGBA. Images without alpha get alpha 255; palette transparency (PNG ``tRNS``) and
  grey + alpha (``LA``) become real alpha.
* ``3`` -- RGB. Transparent pixels are composited over ``data.background``.
* ``1`` -- grey (ITU-R 601 luma, as Pillow's ``L``), after the same compositing.

Grey images of more than 8 bits keep their values' range instead of being clipped at 255:
16-bit images (``I;16``) are scaled to 8 bits (value / 257, rounded), so 65535 becomes 255;
32-bit integer images (``I``) are read as 8-bit when every value is at most 255 and as 16-bit
when every value is at most 65535; floating-point images (``F``) are read as 0..1 (times 255)
when every value lies in 0..1 and as 0..255 when every value lies there. An image outside
those ranges, or with values that are not numbers, is skipped with its range as the reason.
Palette images use their palette's colours; bilevel images become 0/255. The first frame of an animated GIF or WebP is used. JPEG EXIF orientation is applied.

Resize modes (``data.resize``), for the square side S = ``data.image_size``:

* ``fit`` -- the whole image is resized to S x S. The aspect ratio is **not** kept: a 421 x 614
  card is squeezed horizontally. Nothing is cut off and no bars are added.
* ``crop`` -- the image is scaled, keeping its aspect ratio, until its **shorter** side is S; the
  centre S x S square is kept, so the ends of the longer side are cut off.
* ``pad`` -- the image is scaled, keeping its aspect ratio, until its **longer** side is S, and
  centred on an S x S canvas of ``data.background``: bars fill the shorter side. With
  ``channels: 4`` the bars are transparent (background colour, alpha 0).

All modes resample with Pillow's bicubic filter, which is antialiased when shrinking; an image
already S x S is not resampled. Alpha is premultiplied while resizing, so transparent pixels do
not bleed colour into the edges.

Sources are untrusted, so memory stays bounded whatever a file claims (:func:`max_pixels`,
:func:`max_file_bytes`, :class:`PixelBudget`): an image whose header declares more pixels than
Pillow's decompression-bomb guard allows (``PIL.Image.MAX_IMAGE_PIXELS``, 89,478,485 by default;
Pillow itself only warns up to twice that) is skipped before a pixel is decoded, as ``too large``;
a file (or zip entry) larger than the raw pixels of the largest image allowed is skipped unread;
and the images decoded at once by parallel threads share a budget of pixels.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Pillow formats that only identify a file and need another library to give pixels (HDF5, GRIB,
# BUFR, WMF stubs) or give none at all (MPEG): such files are not taken for images
_NO_PIXELS = ("MPEG",)


def _readable_suffixes() -> tuple[str, ...]:
    """The file extensions of every format Pillow reads pixels from (PNG, JPEG, WebP, TIFF, BMP,
    GIF, AVIF, ...), as Pillow registers them."""
    Image.init()
    readable = {fmt for fmt, (factory, _accept) in Image.OPEN.items()
                if fmt not in _NO_PIXELS and not (isinstance(factory, type)
                                                  and issubclass(factory, ImageFile.StubImageFile))}
    return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in readable))


IMAGE_SUFFIXES = _readable_suffixes()
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # grey of more than 8 bits
_RESAMPLE = Image.Resampling.BICUBIC


BYTES_PER_PIXEL = 8  # 16-bit RGBA, the widest pixels an image file holds uncompressed
DECODE_PIXELS = 1 << 25  # pixels decoded at once by the threads sharing a PixelBudget (~34 M)


def max_pixels() -> int:
    """The most pixels an image may declare: Pillow's decompression-bomb limit as it stands now."""
    return int(Image.MAX_IMAGE_PIXELS or 0) or DECODE_PIXELS * 64  # None in Pillow: no limit; keep one


def max_file_bytes() -> int:
    """The largest file (or archive entry) read as an image: the raw pixels of the largest image allowed."""
    return BYTES_PER_PIXEL * max_pixels()


def too_large_file(size: int, where: str) -> InvalidImage | None:
    """The reason a file of `size` bytes (as `where` says: its directory entry, the file system) is
    not read, or None."""
    limit = max_file_bytes()
    if size <= limit:
        return None
    return InvalidImage(f"too large: {size:,} bytes by {where}, over the limit of {limit:,} (the raw pixels of the "
                        "largest image allowed); not read")


def read_image_file(path: str | os.PathLike) -> bytes:
    """A file's bytes, unless it is larger than an image file can be (then InvalidImage, nothing read)."""
    with open(path, "rb") as fh:
        too_large = too_large_file(os.fstat(fh.fileno()).st_size, "its size on disk")
        if too_large is not None:
            raise too_large
        return fh.read()


class PixelBudget:
    """The pixels that threads decode at once: an image waits while others hold the budget, and one
    larger than the whole budget decodes alone, so memory stays near the budget whatever the images."""

    def __init__(self, pixels: int = DECODE_PIXELS):
        self.pixels, self.held = pixels, 0
        self._free = threading.Condition()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        with self._free:
            self._free.wait_for(lambda: self.held == 0 or self.held + pixels <= self.pixels)
            self.held += pixels
        try:
            yield
        finally:
            with self._free:
                self.held -= pixels
                self._free.notify_all()


class InvalidImage(Exception):
    """An image that cannot be used; ``reason`` is a short text listed in the skipped file."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DecodeSettings:
    """How an image becomes an array; part of the cache key (see ``vaetune.data.cache``)."""

    image_size: int | None = 32  # square side; None keeps the native size
    channels: int = 3
    background: tuple[int, int, int] = (255, 255, 255)
    resize: str = "fit"
    min_side: int = 1


def decode_image(data: bytes | Image.Image, settings: DecodeSettings, budget: PixelBudget | None = None) -> np.ndarray:
    """Decode encoded bytes (or an already opened PIL image) into uint8 (C, H, W); with a `budget`,
    the decoding waits for its pixels there.

    Raises:
        InvalidImage: empty, not an image, corrupt or truncated, smaller than ``min_side``, or
            declaring more pixels than ``max_pixels()``.
    """
    img = _open(data, settings)
    with budget.hold(img.width * img.height) if budget is not None else contextlib.nullcontext():
        img = _load(img)
        img = _as_standard_mode(img)
        img = _to_channels(img, settings.channels, settings.background)
        if settings.image_size is not None:
            fill = _fill_colour(img.mode, settings.background)
            img = RESIZE_MODES[settings.resize](img, settings.image_size, fill)
        arr = np.asarray(img, dtype=np.uint8)
        return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def image_header(data: bytes) -> Image.Image:
    """The image `data` holds, opened from its header only (no pixel decoded; Pillow's warnings, that
    of a large image among them, silenced: callers check `check_pixels`).

    Raises:
        InvalidImage: empty, not an image, or a header Pillow refuses.
    """
    if len(data) == 0:
        raise InvalidImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InvalidImage("not an image") from None
    except Image.DecompressionBombError:  # past twice the limit: Pillow's own refusal, before any size is kept
        raise InvalidImage(f"too large: over twice the limit of {max_pixels():,} pixels "
                           "(PIL.Image.MAX_IMAGE_PIXELS, Pillow's decompression-bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"corrupt: {exc}") from None


def check_pixels(img: Image.Image) -> None:
    """Refuse an image whose header declares more pixels than `max_pixels()`, before any is decoded."""
    width, height = img.size
    limit = max_pixels()
    if width * height > limit:
        raise InvalidImage(f"too large: {width}x{height} is {width * height:,} pixels, over the limit of {limit:,} "
                           "(PIL.Image.MAX_IMAGE_PIXELS, Pillow's decompression-bomb guard); not decoded")


def _open(data: bytes | Image.Image, settings: DecodeSettings) -> Image.Image:
    img = data if isinstance(data, Image.Image) else image_header(data)
    width, height = img.size  # from the header, before any reduced-size JPEG decoding
    if min(width, height) < settings.min_side:
        raise InvalidImage(f"too small: {width}x{height} < min_side {settings.min_side}")
    if settings.image_size is not None and img.format == "JPEG":
        # Decode large JPEGs at a reduced scale (still >= S on both sides): much faster.
        img.draft(img.mode, (settings.image_size, settings.image_size))
    check_pixels(img)  # after draft: a JPEG is decoded at its reduced size
    return img


def _load(img: Image.Image) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. palette-transparency notices from Pillow
            img.load()
            img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"corrupt: {exc}") from None
    return img


def _as_standard_mode(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> one of L, RGB, RGBA (alpha only when the image has some)."""
    if img.mode in _WIDE_GREY_MODES:
        return Image.fromarray(_eight_bits(np.asarray(img).astype(np.float64), img.mode), "L")
    if img.mode in ALPHA_MODES or "transparency" in img.info:
        return img.convert("RGBA")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV


def _eight_bits(values: np.ndarray, mode: str) -> np.ndarray:
    """The grey values of a 16-bit, 32-bit integer or floating-point image as uint8, their range
    read as the module's docstring says; InvalidImage for a range it does not read."""
    kind = {"F": "floating-point", "I": "32-bit"}.get(mode, "16-bit")
    if not np.isfinite(values).all():
        raise InvalidImage(f"{kind} image with values that are not numbers (NaN or infinite)")
    lo, hi = float(values.min()), float(values.max())
    if mode == "F":
        ranges = ((1.0, 255.0), (255.0, 1.0))  # (largest value, factor to 0..255)
        accepted = "0..1 or 0..255"
    elif mode == "I":
        ranges = ((255.0, 1.0), (65535.0, 1 / 257))
        accepted = "0..255 or 0..65535"
    else:  # I;16 and its byte orders
        ranges = ((65535.0, 1 / 257),)
        accepted = "0..65535"
    scale = next((factor for top, factor in ranges if lo >= 0 and hi <= top), None)
    if scale is None:
        raise InvalidImage(f"{kind} image with values from {lo:g} to {hi:g}; vaetune reads {accepted}")
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _to_channels(img: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    if channels == 4:
        return img.convert("RGBA")
    if img.mode == "RGBA":
        canvas = Image.new("RGBA", img.size, (*background, 255))
        img = Image.alpha_composite(canvas, img).convert("RGB")
    return img.convert("RGB" if channels == 3 else "L")


def _fill_colour(mode: str, background: tuple[int, int, int]) -> int | tuple[int, ...]:
    if mode == "RGBA":
        return (*background, 0)
    if mode == "L":
        return Image.new("RGB", (1, 1), background).convert("L").getpixel((0, 0))
    return background


def _fit(img: Image.Image, size: int, fill) -> Image.Image:
    return img if img.size == (size, size) else img.resize((size, size), _RESAMPLE)


def _crop(img: Image.Image, size: int, fill) -> Image.Image:
    return img if img.size == (size, size) else ImageOps.fit(img, (size, size), _RESAMPLE)


def _pad(img: Image.Image, size: int, fill) -> Image.Image:
    return img if img.size == (size, size) else ImageOps.pad(img, (size, size), _RESAMPLE, color=fill)


RESIZE_MODES: dict[str, Callable[[Image.Image, int, object], Image.Image]] = {
    "fit": _fit,
    "crop": _crop,
    "pad": _pad,
}
