"""Hugging Face datasets: `hf:NAME` from the hub, or a folder written by `save_to_disk`."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vaetune.data._items import Item, ItemSource, _digest
from vaetune.data.decode import read_image_file
from vaetune.errors import UserError
from vaetune.spec import DataConfig

log = logging.getLogger(__name__)

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
        return value["bytes"] if value.get("bytes") is not None else read_image_file(value["path"])
    if isinstance(value, Image.Image):
        return value
    return Image.fromarray(np.asarray(value, dtype=np.uint8))  # arrays of pixels


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


