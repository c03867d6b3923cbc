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

import hashlib
import logging
import os
import threading
import time
import zipfile
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import torch
from PIL import Image

from vaetune.data.cache import Decoded
from vaetune.data.decode import IMAGE_SUFFIXES, DecodeSettings, InvalidImage, decode_image
from vaetune.data.sprites import generate_sprites
from vaetune.errors import UserError
from vaetune.spec import DataConfig

log = logging.getLogger(__name__)

ACCEPTED = "a folder of images, a .zip, hf:NAME, a folder saved with datasets' save_to_disk, or builtin:sprites"
_CHUNK = 256  # images read, then decoded in parallel, per step
SPRITES_VERSION = 1  # bump when the generator's output changes, so caches are not reused


@dataclass
class Item:
    """One encoded image of a source, not yet read."""

    name: str  # shown in the skipped list and in errors
    read: Callable[[], Any]  # -> bytes, or a PIL image / array for Hugging Face columns
    label: str | None = None


class Source(ABC):
    """A data source named by ``data.source``."""

    def __init__(self, spec: str, cfg: DataConfig):
        self.spec, self.cfg = spec, cfg

    @abstractmethod
    def fingerprint(self) -> str:
        """Changes whenever the source's images change; must not decode anything."""

    @abstractmethod
    def decode(self, settings: DecodeSettings, limit: int | None = None) -> Decoded:
        """Every usable image (at most ``limit``), with labels and the skipped files."""

    def count(self) -> int | None:
        """How many images the source lists, known before decoding (None: not known yet)."""
        return None

    def other_files(self) -> Counter:
        """Files the source holds that are not images it reads: extension -> count."""
        return Counter()


class ItemSource(Source):
    """A source that lists encoded images; reading, decoding and labelling are shared."""

    @abstractmethod
    def items(self) -> list[Item]: ...

    def class_names(self) -> list[str] | None:
        """The label's class names in index order; None: the sorted labels of usable images."""
        return None

    def decode(self, settings: DecodeSettings, limit: int | None = None) -> Decoded:
        return decode_items(self.items(), settings, source=self.spec, limit=limit,
                            class_names=self.class_names())


# --------------------------------------------------------------------------------------------
# Decoding many items


def decode_items(items: list[Item], settings: DecodeSettings, *, source: str, limit: int | None = None,
                 class_names: list[str] | None = None) -> Decoded:
    """Decode items in order on a thread pool (Pillow releases the GIL while decoding/resizing)."""
    start, arrays, kept, skipped = time.perf_counter(), [], [], []
    log.info("decoding %d images from %s", len(items), source)
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        for first in range(0, len(items), _CHUNK):
            chunk = items[first : first + _CHUNK]
            payloads = [_read(item) for item in chunk]  # reads stay on this thread: zips are not thread-safe
            for item, result in zip(chunk, pool.map(partial(_decode_one, settings=settings), payloads), strict=True):
                if isinstance(result, InvalidImage):
                    skipped.append((item.name, result.reason))
                else:
                    arrays.append(result)
                    kept.append(item)
            if limit is not None and len(arrays) >= limit:
                arrays, kept = arrays[:limit], kept[:limit]
                break
    images = _stack(arrays, kept, settings, source)
    labels, names = _item_labels(kept, class_names)
    log.info("decoded %d images from %s in %.1f s, skipped %d", len(images), source,
             time.perf_counter() - start, len(skipped))
    return Decoded(images, labels, names, {}, skipped)


def _read(item: Item) -> Any:
    try:
        return item.read()
    except OSError as exc:
        return InvalidImage(f"unreadable: {exc.strerror or exc}")


def _decode_one(payload: Any, settings: DecodeSettings) -> np.ndarray | InvalidImage:
    if isinstance(payload, InvalidImage):
        return payload
    try:
        return decode_image(payload, settings)
    except InvalidImage as exc:
        return exc


def _stack(arrays: list[np.ndarray], kept: list[Item], settings: DecodeSettings, source: str) -> torch.Tensor:
    if not arrays:
        side = settings.image_size or 0
        return torch.empty((0, settings.channels, side, side), dtype=torch.uint8)
    first = arrays[0].shape
    for array, item in zip(arrays, kept, strict=True):
        if array.shape != first:  # only possible at native size (image_size None)
            raise UserError(
                f"{source}: images differ in size: {kept[0].name} is {first[2]}x{first[1]}, "
                f"{item.name} is {array.shape[2]}x{array.shape[1]}; give an image size to resize them")
    return torch.from_numpy(np.stack(arrays))


def _item_labels(kept: list[Item], class_names: list[str] | None) -> tuple[dict, dict]:
    if not kept or kept[0].label is None:
        return {}, {}
    names = class_names or sorted({item.label for item in kept})
    index = {name: i for i, name in enumerate(names)}
    return {"class": torch.tensor([index[item.label] for item in kept], dtype=torch.int64)}, {"class": names}


def folder_classes(names: list[str], mode: str, root_name: str) -> list[str | None]:
    """Class of each image path: its folder below the folder that all images share."""
    parents = [PurePosixPath(n).parent.parts for n in names]
    common = os.path.commonprefix(parents) if parents else ()
    here = common[-1] if common else root_name  # images directly in the shared folder
    classes = ["/".join(p[len(common):]) or here for p in parents]
    sub_folders = {"/".join(p[len(common):]) for p in parents} - {""}
    if mode == "folders" or (mode == "auto" and len(sub_folders) >= 2):
        return classes
    return [None] * len(names)


def _is_image_name(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return not hidden and PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Folders and zips


class FolderSource(ItemSource):
    def __init__(self, spec: str, cfg: DataConfig):
        super().__init__(spec, cfg)
        self.root = Path(spec).expanduser()
        self._others: Counter = Counter()
        self.files = sorted(_walk(self.root, self._others))  # relative POSIX paths

    def count(self) -> int:
        return len(self.files)

    def other_files(self) -> Counter:
        return self._others

    def fingerprint(self) -> str:
        lines = []
        for rel in self.files:
            st = (self.root / rel).stat()
            lines.append(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}")
        return "folder:" + _digest(lines)

    def items(self) -> list[Item]:
        classes = folder_classes(self.files, self.cfg.labels, self.root.resolve().name)
        return [Item(rel, (self.root / rel).read_bytes, c) for rel, c in zip(self.files, classes, strict=True)]


def _walk(root: Path, others: Counter) -> list[str]:
    """Image files below root (relative POSIX paths); the extensions of the other files go to `others`."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_folder = Path(folder).relative_to(root)
        for f in files:
            if _is_image_name(f):
                out.append((rel_folder / f).as_posix())
            elif not f.startswith("."):
                others[_suffix(f)] += 1
    return out


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower() or "(no extension)"


class ZipSource(ItemSource):
    def __init__(self, spec: str, cfg: DataConfig):
        super().__init__(spec, cfg)
        try:
            self.zip = zipfile.ZipFile(Path(spec).expanduser())
        except (zipfile.BadZipFile, OSError) as exc:
            raise UserError(f"{spec}: not a readable zip file ({exc})") from None
        files = [i for i in self.zip.infolist() if not i.is_dir()]
        self.infos = sorted((i for i in files if _is_image_name(i.filename)), key=lambda i: i.filename)
        self._others = Counter(_suffix(i.filename) for i in files
                               if not _is_image_name(i.filename) and not PurePosixPath(i.filename).name.startswith("."))
        self._lock = threading.Lock()

    def count(self) -> int:
        return len(self.infos)

    def other_files(self) -> Counter:
        return self._others

    def fingerprint(self) -> str:
        return "zip:" + _digest([f"{i.filename}\t{i.file_size}\t{i.CRC}" for i in self.infos])

    def items(self) -> list[Item]:
        names = [i.filename for i in self.infos]
        classes = folder_classes(names, self.cfg.labels, Path(self.spec).stem)
        return [Item(n, partial(self._read, n), c) for n, c in zip(names, classes, strict=True)]

    def _read(self, name: str) -> bytes:
        with self._lock:
            try:
                return self.zip.read(name)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                raise OSError(f"bad zip entry: {exc}") from None


# --------------------------------------------------------------------------------------------
# Hugging Face datasets


class HubSource(ItemSource):
    """``hf:NAME``: ``datasets.load_dataset(NAME)`` (from the local Hugging Face cache offline)."""

    def __init__(self, spec: str, cfg: DataConfig):
        super().__init__(spec, cfg)
        self._splits: list[tuple[str, Any]] | None = None

    def _load(self) -> Any:
        import datasets

        return datasets.load_dataset(self.spec)

    def splits(self) -> list[tuple[str, Any]]:
        """(split name, Dataset) pairs, loaded once."""
        if self._splits is None:
            try:
                ds = self._load()
            except Exception as exc:  # datasets raises many kinds; the user needs the message
                raise UserError(f"{self.describe()}: cannot load the dataset ({type(exc).__name__}: {exc})") from None
            pairs = list(ds.items()) if hasattr(ds, "items") else [("data", ds)]
            self._check_columns(pairs)
            self._splits = pairs
        return self._splits

    def describe(self) -> str:
        return f"hf:{self.spec}"

    def _check_columns(self, pairs: list[tuple[str, Any]]) -> None:
        wanted = [self.cfg.hf_image_column] + ([self._label_column()] if self._label_column() else [])
        for split, ds in pairs:
            for column in wanted:
                if column not in ds.column_names:
                    raise UserError(f"{self.describe()}: split {split!r} has no column {column!r}; "
                                    f"its columns are {', '.join(ds.column_names)}")

    def _label_column(self) -> str | None:
        return self.cfg.hf_label_column if self.cfg.labels != "none" else None

    def fingerprint(self) -> str:
        parts = [f"{name}:{getattr(ds, '_fingerprint', None) or len(ds)}" for name, ds in self.splits()]
        return "hf:" + _digest([self.spec, *parts])

    def class_names(self) -> list[str] | None:
        column = self._label_column()
        if column is None:
            return None
        feature = self.splits()[0][1].features[column]
        return list(feature.names) if hasattr(feature, "names") else None

    def items(self) -> list[Item]:
        import datasets

        out = []
        column, names = self.cfg.hf_image_column, self.class_names()
        for split, ds in self.splits():
            if isinstance(ds.features[column], datasets.Image):
                ds = ds.cast_column(column, datasets.Image(decode=False))  # bytes: decoded by us, like files
            images = ds.select_columns([column])
            labels = self._labels(ds, names)
            out.extend(Item(f"{split}[{i}]", partial(_hf_payload, images, i, column), labels[i])
                       for i in range(len(ds)))
        return out

    def _labels(self, ds: Any, names: list[str] | None) -> list[str | None]:
        column = self._label_column()
        if column is None:
            return [None] * len(ds)
        values = ds[column]
        return [names[v] if names is not None else str(v) for v in values]


class DiskDatasetSource(HubSource):
    """A folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""

    def _load(self) -> Any:
        import datasets

        return datasets.load_from_disk(str(Path(self.spec).expanduser()))

    def describe(self) -> str:
        return self.spec


def _hf_payload(images: Any, index: int, column: str) -> Any:
    value = images[index][column]
    if isinstance(value, dict):  # datasets.Image(decode=False): {"bytes": ..., "path": ...}
        return value["bytes"] if value.get("bytes") is not None else Path(value["path"]).read_bytes()
    if isinstance(value, Image.Image):
        return value
    return Image.fromarray(np.asarray(value, dtype=np.uint8))  # arrays of pixels


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


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
    raise UserError(f"data source {spec!r} does not exist; accepted: {ACCEPTED}")
