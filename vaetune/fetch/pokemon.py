"""`vaetune data fetch pokemon`: a Hugging Face image dataset saved as a folder of PNGs.

The default is ``huggan/pokemon`` (about 800 Pokémon images in one ``train`` split with an
``image`` column; the dataset the diffusers unconditional-training examples use). Any other
public dataset name, or a local path written by ``Dataset.save_to_disk``, works the same.

Layout written (``OUT`` defaults to ``data/pokemon``)::

    OUT/00000.png, OUT/00001.png, ...   one PNG per row, transparency kept (RGBA) when present
    OUT/metadata.json                   dataset, split, column, count, and the text columns per file

Images are written to ``<name>.part`` and renamed, and existing files are skipped, so a second
run resumes. Resizing to 40x40 and compositing on white is left to the data module
(``data.image_size``, ``data.channels``), so one download serves every search space.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from vaetune.data.decode import InvalidImage, check_pixels, image_header, read_image_file
from vaetune.errors import UserError
from vaetune.fetch._files import FetchReport, writable_dir, write_failures, write_json

log = logging.getLogger(__name__)

DEFAULT_POKEMON_DATASET = "huggan/pokemon"
METADATA_FILE = "metadata.json"


def fetch_pokemon(
    out: str | Path = "data/pokemon",
    *,
    dataset: str = DEFAULT_POKEMON_DATASET,
    limit: int | None = None,
    split: str = "train",
    image_column: str | None = None,
    progress: bool | None = None,
) -> FetchReport:
    """Save the images of a Hugging Face dataset (hub name or local saved path) as PNGs in `out`.

    Args:
        out: destination folder (created).
        dataset: a hub name such as ``huggan/pokemon`` (``datasets.load_dataset``) or a folder
            written by ``save_to_disk`` (``datasets.load_from_disk``).
        limit: at most this many images (the first rows).
        split: the split to take when the dataset has several (falls back to the only one).
        image_column: the column holding the images; None picks the first ``Image`` feature.
        progress: show a tqdm bar; None shows it on a terminal only.

    Raises:
        UserError: an unknown dataset, no image column, or an unwritable `out`.
    """
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    out = writable_dir(Path(out))
    ds = _load(dataset, split)
    column = _image_column(ds, image_column, dataset)
    n = len(ds) if limit is None else min(limit, len(ds))
    text_columns = [c for c, f in ds.features.items() if getattr(f, "dtype", None) == "string"]
    import datasets

    ds = ds.cast_column(column, datasets.Image(decode=False))  # the encoded bytes: checked before decoding

    from tqdm import tqdm

    report = FetchReport(out=out)
    records = []
    for i in tqdm(range(n), unit="img", desc="pokemon", disable=None if progress is None else not progress):
        name = f"{i:05d}.png"
        dest = out / name
        if dest.is_file():
            records.append({"file": name})
            report.skipped += 1
            continue
        row = ds[i]
        records.append({"file": name, **{c: row[c] for c in text_columns}})
        try:
            _save_png(row[column], dest)
            report.downloaded += 1
        except InvalidImage as exc:
            report.failed.append((name, f"row {i}: {exc.reason}"))
        except (OSError, ValueError, TypeError) as exc:
            report.failed.append((name, f"row {i}: {type(exc).__name__}: {exc}"))
    write_json(out / METADATA_FILE, {"dataset": dataset, "split": split, "image_column": column,
                                      "count": n, "files": records})
    write_failures(out, report.failed)
    return report


def _load(dataset: str, split: str):
    import datasets

    path = Path(dataset).expanduser()
    try:
        if path.exists():
            saved = (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
            ds = datasets.load_from_disk(str(path)) if saved else datasets.load_dataset(str(path))
        else:
            log.info("pokemon: loading %s from the Hugging Face hub", dataset)
            ds = datasets.load_dataset(dataset)
    except FileNotFoundError as exc:
        raise UserError(f"--dataset {dataset!r}: not a local dataset or a hub dataset ({exc})") from None
    except Exception as exc:  # the hub client raises many types: unknown, private, offline
        raise UserError(f"--dataset {dataset!r} could not be loaded ({type(exc).__name__}: {exc}); "
                        "give a public Hugging Face dataset name or a folder written by save_to_disk") from None
    if isinstance(ds, datasets.DatasetDict):
        if split in ds:
            return ds[split]
        if len(ds) == 1:
            return next(iter(ds.values()))
        raise UserError(f"--dataset {dataset!r} has splits {', '.join(ds)}, not {split!r}")
    return ds


def _image_column(ds: Any, wanted: str | None, dataset: str) -> str:
    import datasets

    images = [c for c, f in ds.features.items() if isinstance(f, datasets.Image)]
    if wanted is not None:
        if wanted not in images:
            raise UserError(f"--dataset {dataset!r}: {wanted!r} is not an image column "
                            f"(image columns: {', '.join(images) or 'none'})")
        return wanted
    if not images:
        raise UserError(f"--dataset {dataset!r} has no image column (columns: {', '.join(ds.features)})")
    return "image" if "image" in images else images[0]


def _save_png(cell: dict | None, dest: Path) -> None:
    """Save one encoded image cell (``{"bytes", "path"}``) as PNG, keeping transparency: palette/LA
    images with alpha become RGBA. Its size and declared pixels are checked before it is decoded
    (vaetune.data.decode's limits), so a decompression bomb in a dataset is refused, not inflated."""
    if cell is None or (cell.get("bytes") is None and not cell.get("path")):
        raise ValueError("empty image cell")
    data = cell.get("bytes")
    if data is None:  # an image folder's row: the file itself
        data = read_image_file(cell["path"])
    image = image_header(data)
    check_pixels(image)
    image.load()
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    converted = image.convert("RGBA" if has_alpha else "RGB")
    part = dest.with_name(dest.name + ".part")
    converted.save(part, format="PNG")
    os.replace(part, dest)
