"""What every data source shares: items read then decoded in parallel chunks, labels, fingerprints."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import torch

from vaetune.data._progress import Progress
from vaetune.data.cache import Decoded
from vaetune.data.decode import (
    IMAGE_SUFFIXES,
    DecodeSettings,
    InvalidImage,
    PixelBudget,
    decode_image,
)
from vaetune.errors import UserError
from vaetune.machine import cpu_count
from vaetune.spec import DataConfig

log = logging.getLogger(__name__)

_CHUNK = 256  # images read, then decoded in parallel, per step
_CHUNK_BYTES = 256 << 20  # ... or fewer, once their files hold this many bytes (one file may pass it)


@dataclass
class Item:
    """One encoded image of a source, not yet read."""

    name: str  # shown in the skipped list and in errors
    # -> bytes, or a PIL image / array for Hugging Face columns; InvalidImage when known unusable unread
    read: Callable[[], Any]
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
    """Decode items in order on a thread pool (Pillow releases the GIL while decoding/resizing), a
    chunk at a time: at most _CHUNK files or _CHUNK_BYTES read ahead, their pixels decoded within
    one PixelBudget, a progress line every few seconds."""
    start, arrays, kept, skipped = time.perf_counter(), [], [], []
    log.info("decoding %d images from %s", len(items), source)
    progress = Progress(f"decoding {source}", total=len(items) if limit is None else min(limit, len(items)))
    decode = partial(_decode_one, settings=settings, budget=PixelBudget())
    with ThreadPoolExecutor(min(8, cpu_count())) as pool:
        todo = iter(items)
        while chunk := _read_chunk(todo):  # reads stay on this thread: zips are not thread-safe
            for (item, _), result in zip(chunk, pool.map(decode, [payload for _, payload in chunk]), strict=True):
                if isinstance(result, InvalidImage):
                    skipped.append((item.name, result.reason))
                else:
                    arrays.append(result)
                    kept.append(item)
            progress.add(len(chunk))
            if limit is not None and len(arrays) >= limit:
                arrays, kept = arrays[:limit], kept[:limit]
                break
    images = _stack(arrays, kept, settings, source)
    labels, names = _item_labels(kept, class_names)
    log.info("decoded %d images from %s in %.1f s, skipped %d", len(images), source,
             time.perf_counter() - start, len(skipped))
    return Decoded(images, labels, names, {}, skipped)


def _read_chunk(items: Iterator[Item]) -> list[tuple[Item, Any]]:
    """The next items with what they read, until _CHUNK of them or _CHUNK_BYTES of bytes."""
    chunk, size = [], 0
    for item in items:
        payload = _read(item)
        chunk.append((item, payload))
        size += len(payload) if isinstance(payload, bytes) else 0
        if len(chunk) >= _CHUNK or size >= _CHUNK_BYTES:
            break
    return chunk


def _read(item: Item) -> Any:
    try:
        return item.read()
    except InvalidImage as exc:  # known unusable before reading (too large by its size)
        return exc
    except OSError as exc:
        return InvalidImage(f"unreadable: {exc.strerror or exc}")


def _decode_one(payload: Any, settings: DecodeSettings, budget: PixelBudget) -> np.ndarray | InvalidImage:
    if isinstance(payload, InvalidImage):
        return payload
    try:
        return decode_image(payload, settings, budget)
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


