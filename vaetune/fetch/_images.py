"""Checking that bytes are a whole, decodable image before they are kept."""

from __future__ import annotations

import warnings

# what vaetune.data reads, its exception for an unusable image (the message is the reason), and its
# limits on what a header may declare
from vaetune.data.decode import IMAGE_SUFFIXES, InvalidImage, check_pixels, image_header


def check_image(data: bytes, *, min_side: int = 8) -> tuple[int, int]:
    """Decode `data` completely and return its (width, height).

    A truncated body usually still has a valid header, so opening is not enough: the pixels are
    decoded (`load()`), which fails on a cut-off PNG or JPEG. JPEGs are decoded at a reduced
    scale (`draft`), which still reads the whole stream but is several times faster on paintings.
    An image declaring more pixels than the data module decodes (`check_pixels`: Pillow's
    decompression-bomb limit) is refused from its header, before a pixel is decoded.

    Raises:
        InvalidImage: the bytes do not decode, are too large, or a side is shorter than `min_side`.
    """
    try:
        im = image_header(data)
    except InvalidImage as exc:
        if exc.reason.startswith(("empty", "too large")):
            raise
        raise InvalidImage(f"not a decodable image ({exc.reason})") from None
    with im:
        size = im.size
        if im.format == "JPEG":
            im.draft(im.mode, (64, 64))
        check_pixels(im)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im.load()
        except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
            raise InvalidImage(f"not a decodable image ({type(exc).__name__}: {exc})") from None
    if min(size) < min_side:
        raise InvalidImage(f"too small ({size[0]}x{size[1]} px, need at least {min_side} px a side)")
    return size


def is_image_name(name: str) -> bool:
    """Whether a file name has an image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_SUFFIXES)
