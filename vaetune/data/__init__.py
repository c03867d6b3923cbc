"""Image data for vaetune: sources, decoding, the on-disk cache, splits, augmentation, sprites.

``load_data(cfg.data)`` turns a ``data.source`` (image folder, .zip, Hugging Face dataset or
``builtin:sprites``) into an :class:`ImageData` of uint8 images, labels and a deterministic
train/val/test split, decoding only the first time (see ``vaetune.data.cache``). Decoding,
channels and resize modes are described in ``vaetune.data.decode``, sources and labels in
``vaetune.data.sources``, the sprites in ``vaetune.data.sprites``, augmentation in
``vaetune.data.augment``.
"""

from __future__ import annotations

from vaetune.data.augment import Augment
from vaetune.data.decode import DecodeSettings, InvalidImage, decode_image
from vaetune.data.imagedata import ImageData
from vaetune.data.load import convert_channels, image_from_bytes, load_data, load_image, read_images
from vaetune.data.sources import SOURCES, open_source
from vaetune.data.splits import split_indices
from vaetune.data.sprites import SpriteSet, generate_sprites

__all__ = [
    "SOURCES",
    "Augment",
    "DecodeSettings",
    "ImageData",
    "InvalidImage",
    "SpriteSet",
    "convert_channels",
    "decode_image",
    "generate_sprites",
    "image_from_bytes",
    "load_data",
    "load_image",
    "open_source",
    "read_images",
    "split_indices",
]
