"""Checking that bytes are a whole, decodable image before they are kept."""

from __future__ import annotations

import io

from PIL import Image

# what vaetune.data reads, and its exception for an unusable image (the message is the reason)
from vaetune.data.decode import IMAGE_SUFFIXES, InvalidImage


def check_image(data: bytes, *, min_side: int = 8) -> tuple[int, int]:
    """Decode `data` completely and return its (width, height).

    A truncated body usually still has a valid header, so opening is not enough: the pixels are
    decoded (`load()`), which fails on a cut-off PNG or JPEG. JPEGs are decoded at a reduced
    scale (`draft`), which still reads the whole stream but is several times faster on paintings.

    Raises:
        InvalidImage: the bytes do not decode, or a side is shorter than `min_side` pixels.
    """
    if not data:
        raise InvalidImage("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
            if im.format == "JPEG":
                im.draft(im.mode, (64, 64))
            im.load()
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"too large to decode safely ({exc})") from None
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        raise InvalidImage(f"not a decodable image ({type(exc).__name__}: {exc})") from None
    if min(size) < min_side:
        raise InvalidImage(f"too small ({size[0]}x{size[1]} px, need at least {min_side} px a side)")
    return size


def is_image_name(name: str) -> bool:
    """Whether a file name has an image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_SUFFIXES)
