"""What `vaetune data prepare` keeps of each Kaggle download, and under which label.

A labeller reads a download's own layout and metadata (villagers: a table of species; apples:
Fruit360's variety folders and its own train/test split; impressionism: WikiArt's style folder
and a genre table) and returns a :class:`Selection`; vaetune.fetch.prepare does the rest.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from vaetune.errors import UserError
from vaetune.fetch._images import is_image_name
from vaetune.fetch._source import SourceTree

log = logging.getLogger(__name__)

DEFAULT_APPLES = ("Apple Braeburn", "Apple Golden 1", "Apple Granny Smith")
DEFAULT_GENRES = ("landscape", "portrait", "still_life", "genre_painting")
DEFAULT_STYLE = "Impressionism"


@dataclass
class Item:
    rel: str  # path inside the download
    label: str  # output sub-folder
    split: str | None = None  # "train"/"test" when the download has its own split; None: random


@dataclass
class Selection:
    """A labeller's answer: images to keep, images rejected with a reason, and a count of images
    that are simply outside the chosen labels (other varieties, genres or styles)."""

    items: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0
    notes: dict = field(default_factory=dict)


def folder_label(text: str) -> str:
    """A label as a folder name: readable, but without path separators or control characters."""
    label = re.sub(r"[\\/:*?\"<>|\x00-\x1f]+", "_", text.strip()).strip(". ")
    return label or "unknown"


def _key(text: str) -> str:
    """Match key for names and file stems: accents folded, lower case, letters and digits only."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())


def _name_key(text: str) -> str:
    """_key of a name, or of a file's stem when `text` is an image path ("ant00.png" -> "ant00")."""
    return _key(PurePosixPath(text).stem if is_image_name(text) else text)


def _read_text(tree: SourceTree, rel: str) -> str:
    return tree.read(rel).decode("utf-8-sig", errors="replace")


# --------------------------------------------------------------------------------------------
# Villagers: images matched to a metadata table by file name or villager name; label = species


def villagers(tree: SourceTree, *, metadata: str | None = None) -> Selection:
    """Label villager images with their species from a CSV/JSON table in the download.

    The table needs a ``Species`` column (any case) and a name or file-name column (``Name``,
    ``Filename``, ``Icon Filename``, ...); an image matches a row when its file stem equals the
    row's file name or villager name, compared without case, accents or punctuation.
    """
    tables = [f for f in tree.files if f.lower().endswith((".csv", ".json"))]
    if metadata:
        tables = [f for f in tables if f == metadata or f.endswith("/" + metadata) or PurePosixPath(f).name == metadata]
    tables.sort(key=lambda f: ("villager" not in f.lower(), f))  # villagers.csv first
    species: dict[str, tuple[int, str]] = {}
    for rel in tables:
        species = _species_table(tree, rel)
        if species:
            break
    if not species:
        raise UserError(f"no villager metadata in {tree.path}: expected a CSV or JSON table with a Species "
                        "column and a Name or Filename column (e.g. villagers.csv)")
    sel = Selection(notes={"metadata": rel})
    matched: set[int] = set()
    for img in (f for f in tree.files if is_image_name(f)):
        row = species.get(_name_key(img))
        if row is not None:
            sel.items.append(Item(img, folder_label(row[1])))
            matched.add(row[0])
        else:
            sel.skipped.append((img, f"no row for this image in {rel}"))
    sel.notes["rows_without_image"] = len({row for row, _ in species.values()} - matched)
    return sel


def _species_table(tree: SourceTree, rel: str) -> dict[str, tuple[int, str]]:
    """key (normalised name or file stem) -> (row, species), from one CSV or JSON file; {} if unusable."""
    text = _read_text(tree, rel)
    if rel.lower().endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        try:
            data = json.loads(text)
        except ValueError:
            return {}
        if isinstance(data, dict):  # {name: species} or {id: {name..., species...}}
            rows = [{"name": k, "species": v} if isinstance(v, str) else {"name": k, **v}
                    for k, v in data.items() if isinstance(v, (str, dict))]
        else:
            rows = [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
    table: dict[str, tuple[int, str]] = {}
    for i, row in enumerate(rows):
        fields = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
        kind = fields.get("species")
        if not isinstance(kind, str) or not kind.strip():
            continue
        for name, value in fields.items():
            if name in ("name", "villager", "id") or "file" in name:
                for text_value in (value.values() if isinstance(value, dict) else [value]):
                    if isinstance(text_value, str) and _name_key(text_value):
                        table.setdefault(_name_key(text_value), (i, kind.strip()))
    return table


# --------------------------------------------------------------------------------------------
# Apples: Fruit360 class folders; the download's Training/Test split is kept


def apples(tree: SourceTree, *, varieties: tuple[str, ...] | list[str] = DEFAULT_APPLES) -> Selection:
    """Select apple varieties of Fruit360 (``.../Training/<class>/*.jpg`` and ``.../Test/...``).

    Training images form the pool, Test images the held-out split (Fruit360's own split; test
    fraction does not apply). A variety matches a class folder of the same name, or with " 1"
    appended (newer releases number every class). When the archive holds several Fruit360
    variants (original size, 100x100, ...), the 100x100 one is used.
    """
    images = [f for f in tree.files if is_image_name(f)]
    splits = {"training": "train", "test": "test"}
    roots = sorted({"/".join(p[:-3]) for p in (f.split("/") for f in images)
                    if len(p) >= 3 and p[-3].lower() in splits})
    root = None
    if roots:
        root = next((r for r in roots if "100x100" in r), roots[0])
    classes: dict[str, list[Item]] = {}
    for rel in images:
        parts = rel.split("/")
        if root is not None:
            if len(parts) < 3 or "/".join(parts[:-3]) != root or parts[-3].lower() not in splits:
                continue
            classes.setdefault(parts[-2], []).append(Item(rel, "", splits[parts[-3].lower()]))
        elif len(parts) >= 2:
            classes.setdefault(parts[-2], []).append(Item(rel, ""))
    sel = Selection(notes={"root": root or ""})
    for variety in varieties:
        names = {variety.casefold(), f"{variety} 1".casefold()}
        found = [c for c in classes if c.casefold() in names]
        if not found:
            apple_like = sorted(c for c in classes if "apple" in c.lower()) or sorted(classes)[:20]
            raise UserError(f"no folder for the apple variety {variety!r} in {tree.path}; "
                            f"folders there include: {', '.join(apple_like)}")
        label = re.sub(r"[^a-z0-9]+", "_", variety.lower()).strip("_")
        for item in classes[found[0]]:
            item.label = label
            sel.items.append(item)
    sel.ignored = len(images) - len(sel.items)
    return sel


# --------------------------------------------------------------------------------------------
# Impressionism: WikiArt style folder + a genre table (steubk/wikiart classes.csv, or ArtGAN's
# genre_*.csv with genre_class.txt); label = genre


def impressionism(
    tree: SourceTree,
    *,
    style: str = DEFAULT_STYLE,
    genres: tuple[str, ...] | list[str] = DEFAULT_GENRES,
) -> Selection:
    """Select the paintings of one WikiArt style folder whose genre is one of `genres`.

    A painting tagged with none of the genres is left out (counted as ignored); one tagged with
    several of them is skipped as ambiguous. Genres compare without case, and with spaces,
    dashes and underscores alike ("Still Life" == "still_life").
    """
    wanted = {_genre(g) for g in genres}
    in_style = [f for f in tree.files if is_image_name(f)
                and any(p.casefold() == style.casefold() for p in f.split("/")[:-1])]
    if not in_style:
        raise UserError(f"no {style!r} folder with images in {tree.path}; expected the WikiArt layout "
                        f"<Style>/<artist_title>.jpg (Kaggle steubk/wikiart)")
    keys = {rel: _painting_key(rel) for rel in in_style}
    best_name, best_table, best_hits = None, None, 0
    for name, table in _genre_tables(tree):
        hits = sum(1 for k in keys.values() if wanted & {_genre(g) for g in table.get(k, ())})
        if hits > best_hits:
            best_name, best_table, best_hits = name, table, hits
    if best_table is None:
        raise UserError(f"no genre table in {tree.path} labels any {style} painting as {', '.join(sorted(wanted))}; "
                        "expected classes.csv (filename, genre columns) or genre_*.csv with genre_class.txt")
    sel = Selection(notes={"metadata": best_name, "style": style})
    for rel in in_style:
        tags = best_table.get(keys[rel])
        if tags is None:
            sel.skipped.append((rel, f"no row for this painting in {best_name}"))
            continue
        chosen = sorted({_genre(g) for g in tags} & wanted)
        if len(chosen) == 1:
            sel.items.append(Item(rel, chosen[0]))
        elif chosen:
            sel.skipped.append((rel, f"ambiguous: tagged with several chosen genres ({', '.join(chosen)})"))
        else:
            sel.ignored += 1
    return sel


def _genre(text: str) -> str:
    return re.sub(r"[\s_-]+", "_", str(text).strip().lower())


def _painting_key(rel: str) -> str:
    """Style folder + file name, the part of a path every WikiArt table agrees on."""
    return "/".join(rel.split("/")[-2:]).casefold()


def _genre_tables(tree: SourceTree) -> list[tuple[str, dict[str, list[str]]]]:
    """Every table in the download that maps paintings to genre names."""
    names = _genre_class_names(tree)
    tables = []
    for rel in (f for f in tree.files if f.lower().endswith(".csv")):
        rows = list(csv.reader(io.StringIO(_read_text(tree, rel))))
        if not rows:
            continue
        header = [h.strip().lower() for h in rows[0]]
        file_col = next((header.index(h) for h in ("filename", "file", "path", "image", "image_path") if h in header), None)
        table: dict[str, list[str]] = {}
        if file_col is not None and "genre" in header:
            genre_col = header.index("genre")
            for row in rows[1:]:
                if len(row) > max(file_col, genre_col):
                    table[_painting_key(row[file_col])] = _parse_genres(row[genre_col], names)
        elif "genre" in PurePosixPath(rel).name.lower() and names and len(rows[0]) == 2:
            for row in rows:  # ArtGAN: headerless "Style/file.jpg,<genre index>"
                if len(row) == 2:
                    table[_painting_key(row[0])] = _parse_genres(row[1], names)
        if table:
            tables.append((rel, table))
    return tables


def _parse_genres(value: str, names: dict[int, str]) -> list[str]:
    value = value.strip()
    if value.startswith("["):  # steubk/wikiart: "['landscape']" or "['portrait', 'sketch and study']"
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return []
        return [str(v) for v in parsed] if isinstance(parsed, (list, tuple)) else [str(parsed)]
    if value.lstrip("-").isdigit():  # an index: only meaningful with a class-name list
        return [names[int(value)]] if int(value) in names else []
    return [value] if value else []


def _genre_class_names(tree: SourceTree) -> dict[int, str]:
    """ArtGAN's genre_class.txt: lines "<index> <name>"."""
    for rel in tree.files:
        if re.fullmatch(r"genre_?class(es)?\.txt", PurePosixPath(rel).name.lower()):
            names = {}
            for line in _read_text(tree, rel).splitlines():
                parts = line.split(maxsplit=1)
                if len(parts) == 2 and parts[0].isdigit():
                    names[int(parts[0])] = parts[1].strip()
            return names
    return {}
