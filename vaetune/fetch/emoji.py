"""`vaetune data fetch emoji`: the emoji PNGs that the npm package emoji-datasource-<set> ships.

The packages of the emoji-data project (MIT licence; the images are Twitter's Twemoji, Google's
Noto Emoji or Apple's, under their own licences, see the package README) hold
``package/emoji.json`` (one record per emoji: ``image``, ``category``, ``sheet_x``/``sheet_y``,
``has_img_<set>``, ``skin_variations`` with their own records), ``package/img/<set>/64/*.png``
(64x64 RGBA, one file per emoji and skin tone: about 3 800), and sprite sheets
``package/img/<set>/sheets-clean/<size>.png`` for sizes 16, 20, 32 and 64, in which the emoji
at (sheet_x, sheet_y) is the ``size`` square at ``(x * (size + 2) + 1, y * (size + 2) + 1)``.
At 64 px the files are copied byte for byte; smaller sizes are cut from the sheet (at 64 px the
sheet's cells equal the files' pixels).

The version is pinned, and the tarball is checked against the npm ``integrity`` (SHA-512)
recorded here for it; another version (``version=``) is checked against the integrity the
registry lists for it. The download and the archive are read within limits (vaetune.fetch._npm).
Layout written (``OUT`` defaults to ``data/emoji``)::

    OUT/<category>/<image>.png   e.g. smileys_emotion/1f600.png; without labels OUT/<image>.png
    OUT/emoji.json               package, version, set, size, and one record per written file
    OUT/failed.txt               files that could not be extracted (only if any)

Files are written through ``<name>.part`` and renamed into place. A re-run whose ``emoji.json``
matches and whose files all exist makes no request; otherwise the tarball is downloaded once
and only the missing files are written.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetune.data import InvalidImage
from vaetune.errors import UserError
from vaetune.fetch._files import FetchReport
from vaetune.fetch._http import MiB, RetryPolicy
from vaetune.fetch._images import check_image
from vaetune.fetch._npm import (
    NPM_REGISTRY,
    MemberError,
    NpmFetch,
    PackageArchive,
    fetch_package,
)

log = logging.getLogger(__name__)

EMOJI_VERSION = "16.0.0"
# dist.integrity of emoji-datasource-<set>@16.0.0 as the registry lists it (npm's SRI form).
EMOJI_INTEGRITY = {
    "twitter": "sha512-7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ==",
    "google": "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
    "apple": "sha512-dVYjsK0FnCry9F+PBtnivhG2K0xdwlmqYaSgiUtztUdAGPYiHYhZcVKvNBqC791g2qyEcFNTBO6utg4eQ3uLTw==",
}
EMOJI_SIZES = (16, 20, 32, 64)
FILE_SIZE = 64  # the size shipped as one file per emoji; the others come from the sheets
MANIFEST = "emoji.json"
# bytes a file of the package may have by its tar header (the 64 px files are about 10 KiB,
# apple's 64 px sheet 19 MiB, its emoji.json under 2 MiB)
MAX_FILE = 10 * MiB
MAX_SHEET = 64 * MiB
MAX_JSON = 64 * MiB


@dataclass(frozen=True)
class _Emoji:
    image: str  # file name in the package, e.g. "1f600.png"
    rel: str  # path under OUT
    sheet: tuple[int, int]  # (sheet_x, sheet_y)
    record: dict[str, Any]  # kept in OUT/emoji.json


def package_name(emoji_set: str) -> str:
    return f"emoji-datasource-{emoji_set}"


def fetch_emoji(
    out: str | Path = "data/emoji",
    *,
    emoji_set: str = "twitter",
    size: int = 64,
    labels: bool = True,
    limit: int | None = None,
    registry: str = NPM_REGISTRY,
    version: str = EMOJI_VERSION,
    policy: RetryPolicy | None = None,
) -> FetchReport:
    """Download emoji-datasource-<set> from the npm registry and write its PNGs of one size.

    Args:
        out: destination folder (created).
        emoji_set: ``twitter``, ``google`` or ``apple``.
        size: 16, 20, 32 or 64 px.
        labels: one sub-folder per emoji category (so ``data.labels`` sees them), else one folder.
        limit: at most this many images (in the package's sort order), None for all.
        registry: npm registry URL (a mirror, or a local server in tests).
        version: package version; the default is pinned to a known tarball integrity.
        policy: retries, back-off and timeout.

    Returns:
        FetchReport; files that could not be extracted are also listed in ``out/failed.txt``.

    Raises:
        UserError: bad arguments, an unwritable `out`, an unreachable registry, or a tarball that
            fails its integrity check or is not an emoji-datasource package.
    """
    _check_args(emoji_set, size, limit)
    package = package_name(emoji_set)
    options = {"set": emoji_set, "size": size, "labels": labels, "limit": limit}
    job = NpmFetch(package, version, (EMOJI_VERSION, EMOJI_INTEGRITY[emoji_set]), options, MANIFEST, "emoji")

    def plan(tar: PackageArchive, report: FetchReport) -> list[_Emoji]:
        records = tar.read_json("package/emoji.json", max_size=MAX_JSON, what="an emoji-datasource package")
        return _plan(records, emoji_set, labels, limit)

    def extract(tar: PackageArchive, todo: list[_Emoji], report: FetchReport):
        cut = _files if size == FILE_SIZE else _sheet_cells
        return cut(tar, todo, emoji_set, size, report)

    return fetch_package(out, job, registry=registry, policy=policy, plan=plan, extract=extract)


def _check_args(emoji_set: str, size: int, limit: int | None) -> None:
    if emoji_set not in EMOJI_INTEGRITY:
        raise UserError(f"--emoji-set: got {emoji_set!r}; accepted: {', '.join(EMOJI_INTEGRITY)}")
    if size not in EMOJI_SIZES:
        raise UserError(f"--size: got {size}; accepted: {', '.join(map(str, EMOJI_SIZES))}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")


def _plan(records: Any, emoji_set: str, labels: bool, limit: int | None) -> list[_Emoji]:
    """One entry per image of this set (each emoji and each skin tone), in the package's order."""
    if not isinstance(records, list):
        raise UserError(f"{package_name(emoji_set)}: emoji.json is not a list of emoji records")
    out: list[_Emoji] = []
    seen: set[str] = set()
    for parent in sorted(
        (r for r in records if isinstance(r, dict)), key=lambda r: r.get("sort_order", 0)
    ):
        variants = [parent, *(parent.get("skin_variations") or {}).values()]
        for r in variants:
            image = r.get("image")
            if (
                not isinstance(image, str)
                or not r.get(f"has_img_{emoji_set}", False)
                or image in seen
            ):
                continue
            if Path(image).name != image or not image.endswith(".png"):
                continue  # only plain file names: nothing may be written outside OUT
            seen.add(image)
            category = _folder_name(parent.get("category"))
            rel = f"{category}/{image}" if labels else image
            record = {
                "file": rel,
                "unified": r.get("unified"),
                "short_name": parent.get("short_name"),
                "name": parent.get("name"),
                "category": parent.get("category"),
                "subcategory": parent.get("subcategory"),
            }
            out.append(
                _Emoji(
                    image=image,
                    rel=rel,
                    sheet=(int(r.get("sheet_x", -1)), int(r.get("sheet_y", -1))),
                    record=record,
                )
            )
            if limit is not None and len(out) >= limit:
                return out
    return out


def _folder_name(category: Any) -> str:
    """'Smileys & Emotion' -> 'smileys_emotion'."""
    return re.sub(r"[^a-z0-9]+", "_", str(category or "other").lower()).strip("_") or "other"


def _files(
    tar: PackageArchive, todo: list[_Emoji], emoji_set: str, size: int, report: FetchReport
):
    """(emoji, PNG bytes) for each file of `todo` the package ships under img/<set>/<size>/."""
    for e in todo:
        member = f"package/img/{emoji_set}/{size}/{e.image}"
        try:
            body = tar.read(member, max_size=MAX_FILE)
            check_image(body, min_side=size)
        except (MemberError, InvalidImage) as exc:
            report.failed.append((e.rel, str(exc)))
            continue
        yield e, body


def _sheet_cells(
    tar: PackageArchive, todo: list[_Emoji], emoji_set: str, size: int, report: FetchReport
):
    """(emoji, PNG bytes) cut from the sprite sheet img/<set>/sheets-clean/<size>.png."""
    from PIL import Image

    member = f"package/img/{emoji_set}/sheets-clean/{size}.png"
    try:
        sheet = Image.open(io.BytesIO(tar.read(member, max_size=MAX_SHEET)))
        sheet.load()
    except MemberError as exc:
        raise UserError(f"{package_name(emoji_set)}: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{package_name(emoji_set)}: {member} does not decode ({exc})") from None
    sheet = sheet.convert("RGBA")
    cell = size + 2  # a 1 px border around each emoji
    for e in todo:
        x, y = e.sheet
        box = (x * cell + 1, y * cell + 1, x * cell + 1 + size, y * cell + 1 + size)
        if x < 0 or y < 0 or box[2] > sheet.width or box[3] > sheet.height:
            report.failed.append((e.rel, f"sheet position ({x}, {y}) is outside {member}"))
            continue
        buf = io.BytesIO()
        sheet.crop(box).save(buf, format="PNG")
        yield e, buf.getvalue()
