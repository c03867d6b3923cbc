"""Data sources: where images come from, how each is fingerprinted, and how it is decoded.

``data.source`` accepts:

* a folder of images, searched recursively: every format Pillow reads (``.png .jpg .webp .bmp
  .tif .gif`` (first frame) and the rest of ``IMAGE_SUFFIXES``); other files and hidden
  files/folders are ignored;
* a ``.zip`` of images, read in place (``__MACOSX/`` and hidden entries ignored);
* ``hf:NAME`` -- a Hugging Face dataset, ``datasets.load_dataset(NAME)``;
* a folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict);
* ``builtin:sprites`` -- generated shapes (``vaetune.data.sprites``); ``builtin:sprites?seed=N``
  picks another generator seed (default 0), ``data.count`` the number of images.

A Hugging Face DatasetDict's splits are concatenated (vaetune makes its own split with
``data.split_seed``); images come from ``data.hf_image_column``.

Labels (``data.labels``): for folders and zips one class per folder holding images, named by
its path below the folder shared by all images (``cat``, ``dog``, ``big/cat``; images directly
in that shared folder take its name); ``auto`` uses them when images sit in at least two
sub-folders, ``folders`` always, ``none`` never. For a
Hugging Face dataset the class comes from ``data.hf_label_column`` (unless ``labels: none``),
with a ClassLabel's names when it has them. Sprites carry their six binned factors as labels.

A source's fingerprint is cheap (no decoding): relative paths + sizes + modification times for
a folder, member names + sizes + CRCs for a zip, the dataset fingerprint for Hugging Face, the
generator settings for sprites. Sources are looked up in the :data:`SOURCES` registry.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

from vaetune.data._files import FolderSource, ZipSource
from vaetune.data._hub import DiskDatasetSource, HubSource, is_saved_dataset
from vaetune.data._items import Source
from vaetune.data.cache import Decoded
from vaetune.data.decode import DecodeSettings
from vaetune.data.sprites import generate_sprites
from vaetune.errors import UserError
from vaetune.spec import DataConfig

log = logging.getLogger(__name__)

ACCEPTED = "a folder of images, a .zip, hf:NAME, a folder saved with datasets' save_to_disk, or builtin:sprites"
SPRITES_VERSION = 1  # bump when the generator's output changes, so caches are not reused

# --------------------------------------------------------------------------------------------
# Built-in data sets


class SpritesSource(Source):
    """``builtin:sprites[?seed=N]``: see :mod:`vaetune.data.sprites`."""

    def __init__(self, spec: str, cfg: DataConfig):
        super().__init__(spec, cfg)
        _, _, query = spec.partition("?")
        params = dict(parse_qsl(query))
        try:
            self.seed = int(params.pop("seed", 0))
        except ValueError:
            raise UserError(f"builtin:{spec}: seed must be an integer") from None
        if params:
            raise UserError(f"builtin:{spec}: unknown option(s) {', '.join(params)}; accepted: seed")

    def fingerprint(self) -> str:
        return f"builtin:sprites:v{SPRITES_VERSION}:seed={self.seed}:count={self.cfg.count}"

    def count(self) -> int:
        return self.cfg.count

    def decode(self, settings: DecodeSettings, limit: int | None = None) -> Decoded:
        count = self.cfg.count if limit is None else min(limit, self.cfg.count)
        start = time.perf_counter()
        s = generate_sprites(count, settings.image_size or self.cfg.image_size, seed=self.seed,
                             channels=settings.channels, background=settings.background)
        log.info("generated %d sprites in %.1f s", count, time.perf_counter() - start)
        keep_labels = self.cfg.labels != "none"
        return Decoded(s.images, s.labels if keep_labels else {}, s.label_names if keep_labels else {}, s.factors)


BUILTINS: dict[str, type[Source]] = {"sprites": SpritesSource}


def _builtin(spec: str, cfg: DataConfig) -> Source:
    name = spec.partition("?")[0]
    if name not in BUILTINS:
        raise UserError(f"builtin:{spec}: unknown built-in data set; accepted: "
                        + ", ".join(f"builtin:{n}" for n in BUILTINS))
    return BUILTINS[name](spec, cfg)


# --------------------------------------------------------------------------------------------
# The registry


SOURCES: dict[str, Callable[[str, DataConfig], Source]] = {
    "folder": FolderSource,
    "zip": ZipSource,
    "hf": HubSource,
    "hf-disk": DiskDatasetSource,
    "builtin": _builtin,
}


def open_source(spec: str, cfg: DataConfig) -> Source:
    """The source named by ``spec`` (``data.source``); raises UserError naming what is accepted."""
    scheme, rest = source_scheme(spec)
    return SOURCES[scheme](rest, cfg)


def source_scheme(spec: str) -> tuple[str, str]:
    """(registry key, the rest of the spec): an explicit ``scheme:`` prefix, else a path's kind."""
    head, sep, rest = spec.partition(":")
    if sep and len(head) > 1 and head in SOURCES:  # len > 1: "C:\\data" is a Windows path
        return head, rest
    path = Path(spec).expanduser()
    if path.is_dir():
        return ("hf-disk" if is_saved_dataset(path) else "folder"), spec
    if path.is_file() and path.suffix.lower() == ".zip":
        return "zip", spec
    if path.exists():
        raise UserError(f"data source {spec!r} is a file but not a .zip; accepted: {ACCEPTED}")
    if sep and len(head) > 1 and head.isidentifier():
        raise UserError(f"data source {spec!r}: unknown scheme {head + ':'!r}; accepted: {ACCEPTED}")
    if path.is_symlink():  # exists() is False for a link to nothing and for a loop of links
        try:
            path.resolve(strict=True)
        except (RuntimeError, OSError) as exc:  # RuntimeError/ELOOP: a loop; FileNotFoundError: nothing
            loop = isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
            what = "a link that leads back to itself" if loop else f"a link to {os.readlink(path)}, which does not exist"
            raise UserError(f"data source {spec!r} is {what}; point it at an image folder or .zip, or give the "
                            f"folder itself; accepted: {ACCEPTED}") from None
    raise UserError(f"data source {spec!r} does not exist; accepted: {ACCEPTED}")
