"""`vaetune data prepare`: a Kaggle download turned into labelled image folders.

Each collection has a labeller that reads the download's own layout and metadata and says which
images to keep under which label; the rest is shared: a deterministic held-out test split,
decode-checking every image, and one layout the data module reads with folder labels::

    OUT/<label>/<file>         the training pool: ``data.source: OUT`` sees exactly these
    OUT_test/<label>/<file>    the held-out test images (``held_out_dir(OUT)``), never trained on
    OUT/manifest.json          counts per label and split, skipped count, options (also in OUT_test)
    OUT/skipped.txt            each skipped file with its reason (only when something was skipped)

Files are copied byte for byte (no re-encoding; the data module resizes). The output is built
in ``OUT.partial`` and moved into place at the end, so an interrupted run leaves no half folder.
Only a folder prepare provably wrote is replaced (or, for ``OUT.partial``, removed): its manifest
says ``"written_by": "vaetune data prepare"`` (the staging folder gets it when it is made) and it
holds nothing but label folders of files, the manifest and the skipped list. Anything else, a web
site's folder with a ``manifest.json`` of its own included, is refused.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vaetune.data import InvalidImage
from vaetune.errors import UserError
from vaetune.fetch._files import write_json
from vaetune.fetch._images import check_image
from vaetune.fetch._labellers import Item, Selection, apples, impressionism, villagers
from vaetune.fetch._source import SourceTree

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
SKIPPED_FILE = "skipped.txt"
WRITTEN_BY = "vaetune data prepare"  # the manifest's mark: only folders carrying it are replaced


@dataclass
class PrepareReport:
    out: Path
    test_out: Path
    counts: dict[str, dict[str, int]]  # label -> {"train": n, "test": m}
    skipped: list[tuple[str, str]]
    ignored: int

    def summary(self) -> str:
        train = sum(c["train"] for c in self.counts.values())
        test = sum(c["test"] for c in self.counts.values())
        labels = ", ".join(f"{k} {v['train']}+{v['test']}" for k, v in self.counts.items())
        text = (f"{train} training images in {self.out}, {test} held-out test images in {self.test_out} "
                f"({labels}); {len(self.skipped)} skipped")
        if self.skipped:
            text += f" (listed in {self.out / SKIPPED_FILE})"
        return text


def held_out_dir(out: str | Path) -> Path:
    """Where the held-out test images of `out` go: the sibling ``<out>_test``."""
    out = Path(out)
    return out.with_name(out.name + "_test")


def prepare(
    collection: str,
    download: str | Path,
    out: str | Path,
    *,
    test_fraction: float = 0.1,
    seed: int = 0,
    min_side: int = 8,
    progress: bool | None = None,
    **options,
) -> PrepareReport:
    """Turn the download of `collection` into ``out/<label>/*`` and ``out_test/<label>/*``.

    Args:
        collection: ``villagers``, ``apples`` or ``impressionism`` (a key of PREPARERS).
        download: the Kaggle download, as the .zip or the folder it unzips to.
        out: the training-pool folder; the test split goes to ``held_out_dir(out)``.
        test_fraction: share of each label held out, where the download has no split of its own.
        seed: the held-out choice is a function of (seed, label, valid files of the label) only.
        min_side: images smaller than this (either side) are skipped.
        progress: show a tqdm bar; None shows it on a terminal only.
        **options: the labeller's options (``varieties`` for apples; ``style``/``genres``
            for impressionism; ``metadata`` for villagers).

    Raises:
        UserError: unknown collection, a download without the expected layout or metadata, or
            an `out` folder that holds something other than an earlier prepare's output.
    """
    if collection not in PREPARERS:
        raise UserError(f"unknown collection {collection!r}; prepare knows {', '.join(PREPARERS)}")
    if not 0 <= test_fraction < 1:
        raise UserError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    out = Path(out)
    test_out = held_out_dir(out)
    for folder in (out, test_out, _partial(out), _partial(test_out)):
        _check_replaceable(folder)

    with SourceTree(download) as tree:
        selection = PREPARERS[collection](tree, **options)
        if not selection.items:
            raise UserError(f"no {collection} images were found in {download} "
                            f"({len(selection.skipped)} rejected, {selection.ignored} outside the chosen labels)")
        stage, stage_test = _staging(out), _staging(test_out)
        counts, skipped = _copy(tree, selection.items, stage, stage_test, test_fraction=test_fraction,
                                seed=seed, min_side=min_side, progress=progress)

    skipped = selection.skipped + skipped
    counts = {label: counts[label] for label in sorted(counts)}
    manifest = {
        "written_by": WRITTEN_BY, "collection": collection, "download": str(download), "out": str(out), "test_out": str(test_out),
        "test_fraction": test_fraction, "seed": seed, "options": {k: v for k, v in options.items() if v is not None},
        "labels": counts,
        "total": {s: sum(c[s] for c in counts.values()) for s in ("train", "test")},
        "skipped": len(skipped), "ignored": selection.ignored, **selection.notes,
    }
    for folder in (stage, stage_test):
        write_json(folder / MANIFEST_FILE, manifest)
    if skipped:
        (stage / SKIPPED_FILE).write_text("# file\treason\n" + "".join(f"{r}\t{why}\n" for r, why in skipped))
    for staged, final in ((stage, out), (stage_test, test_out)):
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
    return PrepareReport(out=out, test_out=test_out, counts=counts, skipped=skipped, ignored=selection.ignored)


def _check_replaceable(folder: Path) -> None:
    """Refuse a folder that exists, is not empty and is not provably prepare's own."""
    if folder.is_symlink() or folder.exists() and (not folder.is_dir() or (any(folder.iterdir())
                                                                            and not _written_by_prepare(folder))):
        raise UserError(f"{folder} exists and was not written by `vaetune data prepare` (it lacks prepare's "
                        f"{MANIFEST_FILE} or holds other files); choose another --out or move it away")


def _written_by_prepare(folder: Path) -> bool:
    """prepare's own layout: its marked manifest, its skipped list, and label folders of plain files."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        entries = list(folder.iterdir())
        if not isinstance(manifest, dict) or manifest.get("written_by") != WRITTEN_BY:
            return False
        for entry in entries:
            if entry.name in (MANIFEST_FILE, SKIPPED_FILE):
                if entry.is_symlink() or not entry.is_file():
                    return False
            elif entry.is_symlink() or not entry.is_dir() or any(
                    f.is_symlink() or not f.is_file() for f in entry.iterdir()):
                return False
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return True


def _partial(folder: Path) -> Path:
    return folder.with_name(folder.name + ".partial")


def _staging(folder: Path) -> Path:
    """A fresh ``folder.partial`` carrying prepare's mark (checked to be ours by `_check_replaceable`)."""
    stage = _partial(folder)
    try:
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        write_json(stage / MANIFEST_FILE, {"written_by": WRITTEN_BY, "complete": False})
    except OSError as exc:
        raise UserError(f"cannot write to the output folder {folder.parent}: {exc.strerror or exc}") from None
    return stage


def _copy(tree: SourceTree, items: list[Item], out: Path, test_out: Path, *, test_fraction: float,
          seed: int, min_side: int, progress: bool | None) -> tuple[dict[str, dict[str, int]], list[tuple[str, str]]]:
    """Decode-check and copy every item; then hold out, per label, round(n * test_fraction) of
    the valid images without a split of their own, chosen by a shuffle seeded with (seed, label)."""
    from tqdm import tqdm

    skipped: list[tuple[str, str]] = []
    used: set[tuple[str, str]] = set()  # (label, file name): unique over both splits
    placed: list[tuple[Item, str]] = []
    for item in tqdm(items, unit="img", desc="prepare", disable=None if progress is None else not progress):
        too_large = tree.too_large(item.rel)
        if too_large is not None:  # not read: its size is known from the directory or the file system
            skipped.append((item.rel, too_large.reason))
            continue
        data = tree.read(item.rel)
        try:
            check_image(data, min_side=min_side)
        except InvalidImage as exc:
            skipped.append((item.rel, str(exc)))
            continue
        name = _unique(item.label, _safe_name(item.rel), used)
        folder = (test_out if item.split == "test" else out) / item.label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        placed.append((item, name))

    undecided: dict[str, list[tuple[Item, str]]] = {}
    for item, name in placed:
        if item.split is None:
            undecided.setdefault(item.label, []).append((item, name))
    for label, group in undecided.items():
        group.sort(key=lambda pair: pair[0].rel)
        random.Random(f"{seed}/{label}").shuffle(group)
        n_test = round(len(group) * test_fraction)
        for i, (item, name) in enumerate(group):
            item.split = "test" if i < n_test else "train"
            if item.split == "test":
                (test_out / label).mkdir(parents=True, exist_ok=True)
                (out / label / name).rename(test_out / label / name)

    counts: dict[str, dict[str, int]] = {}
    for item, _ in placed:
        counts.setdefault(item.label, {"train": 0, "test": 0})[item.split] += 1
    return counts, skipped


def _safe_name(rel: str) -> str:
    p = PurePosixPath(rel)
    return re.sub(r"[\\/:*?\"<>|\x00-\x1f]+", "_", p.stem) + p.suffix.lower()


def _unique(label: str, name: str, used: set[tuple[str, str]]) -> str:
    stem, dot, suffix = name.rpartition(".")
    candidate, n = name, 1
    while (label, candidate) in used:
        n += 1
        candidate = f"{stem}_{n}{dot}{suffix}" if dot else f"{name}_{n}"
    used.add((label, candidate))
    return candidate


PREPARERS: dict[str, Callable[..., Selection]] = {
    "villagers": villagers,
    "apples": apples,
    "impressionism": impressionism,
}
