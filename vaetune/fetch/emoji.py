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
registry lists for it. Layout written (``OUT`` defaults to ``data/emoji``)::

    OUT/<category>/<image>.png   e.g. smileys_emotion/1f600.png; without labels OUT/<image>.png
    OUT/emoji.json               package, version, set, size, and one record per written file
    OUT/failed.txt               files that could not be extracted (only if any)

Files are written through ``<name>.part`` and renamed into place. A re-run whose ``emoji.json``
matches and whose files all exist makes no request; otherwise the tarball is downloaded once
and only the missing files are written.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import logging
import os
import re
import tarfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetune.data import InvalidImage
from vaetune.errors import UserError
from vaetune.fetch._files import FetchReport, writable_dir, write_failures, write_json
from vaetune.fetch._http import DownloadError, PermanentError, RetryPolicy, get_with_retries
from vaetune.fetch._images import check_image

log = logging.getLogger(__name__)

NPM_REGISTRY = "https://registry.npmjs.org"
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
    _check_args(emoji_set, size, limit, registry)
    out = writable_dir(Path(out))
    policy = policy or RetryPolicy(timeout=120.0)
    package = package_name(emoji_set)
    options = {
        "package": package,
        "version": version,
        "set": emoji_set,
        "size": size,
        "labels": labels,
        "limit": limit,
    }
    report = FetchReport(out=out)
    present = _complete_manifest(out, options)
    if present is not None:
        report.skipped = present
        log.info("emoji: all %d files of %s@%s are present in %s", present, package, version, out)
        return report

    tarball = _download(registry.rstrip("/"), package, version, emoji_set, policy)
    try:  # decompressed once: members are then read in any order without re-inflating the stream
        unpacked = gzip.decompress(tarball)
    except (OSError, EOFError) as exc:
        raise UserError(f"{package}@{version}: the tarball is not gzip data ({exc})") from None
    with tarfile.open(fileobj=io.BytesIO(unpacked), mode="r:") as tar:
        emoji = _plan(_read_json(tar, "package/emoji.json", package), emoji_set, labels, limit)
        todo = [e for e in emoji if not (out / e.rel).is_file()]
        report.skipped = len(emoji) - len(todo)
        log.info(
            "emoji: %d images of %s@%s at %d px, %d already present",
            len(emoji),
            package,
            version,
            size,
            report.skipped,
        )
        cut = _files if size == FILE_SIZE else _sheet_cells
        for e, body in cut(tar, todo, emoji_set, size, report):
            _write(out / e.rel, body)
            report.downloaded += 1
    write_json(out / MANIFEST, {**options, "emoji": [e.record for e in emoji]})
    write_failures(out, report.failed)
    return report


def _check_args(emoji_set: str, size: int, limit: int | None, registry: str) -> None:
    if emoji_set not in EMOJI_INTEGRITY:
        raise UserError(f"--emoji-set: got {emoji_set!r}; accepted: {', '.join(EMOJI_INTEGRITY)}")
    if size not in EMOJI_SIZES:
        raise UserError(f"--size: got {size}; accepted: {', '.join(map(str, EMOJI_SIZES))}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    parts = urllib.parse.urlsplit(registry)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(
            f"--registry must be an http(s) URL such as {NPM_REGISTRY}, got {registry!r}"
        )


def _complete_manifest(out: Path, options: dict[str, Any]) -> int | None:
    """How many files an earlier fetch with the same options left, if all are there; else None."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in options.items()):
        return None
    files = [r.get("file") for r in manifest.get("emoji", []) if isinstance(r, dict)]
    if not files or not all(isinstance(f, str) and (out / f).is_file() for f in files):
        return None
    return len(files)


def _download(
    registry: str, package: str, version: str, emoji_set: str, policy: RetryPolicy
) -> bytes:
    integrity = EMOJI_INTEGRITY[emoji_set] if version == EMOJI_VERSION else None
    if integrity is None:
        meta = _get(
            f"{registry}/{package}/{version}",
            policy,
            what=f"the registry's record of {package}@{version}",
        )
        try:
            integrity = json.loads(meta)["dist"]["integrity"]
        except (ValueError, KeyError, TypeError):
            raise UserError(
                f"{registry}/{package}/{version}: not an npm version record with dist.integrity"
            ) from None
    algorithm, _, expected = integrity.partition("-")
    if algorithm not in ("sha512", "sha384", "sha256"):
        raise UserError(
            f"{package}@{version}: unsupported integrity {integrity!r}; "
            "accepted: sha512, sha384, sha256"
        )

    def check(body: bytes) -> None:
        actual = base64.b64encode(hashlib.new(algorithm, body).digest()).decode()
        if (
            actual != expected
        ):  # the length matched, so this is another file: asking again will not help
            raise PermanentError(
                f"integrity mismatch: got {algorithm}-{actual[:16]}..., "
                f"expected {integrity[:23]}..."
            )

    url = f"{registry}/{package}/-/{package}-{version}.tgz"
    log.info("emoji: downloading %s", url)
    return _get(url, policy, what=f"the tarball {package}@{version}", check=check)


def _get(url: str, policy: RetryPolicy, *, what: str, check=None) -> bytes:
    try:
        return get_with_retries(url, policy=policy, check=check)
    except DownloadError as exc:
        raise UserError(f"{what} could not be downloaded from {url}: {exc}") from None


def _read_json(tar: tarfile.TarFile, member: str, package: str) -> Any:
    try:
        fh = tar.extractfile(member)
        return json.loads(fh.read()) if fh is not None else None
    except KeyError:
        raise UserError(
            f"{package}: the tarball has no {member}; is it an emoji-datasource package?"
        ) from None
    except ValueError:
        raise UserError(f"{package}: {member} in the tarball is not JSON") from None


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
    tar: tarfile.TarFile, todo: list[_Emoji], emoji_set: str, size: int, report: FetchReport
):
    """(emoji, PNG bytes) for each file of `todo` the package ships under img/<set>/<size>/."""
    for e in todo:
        member = f"package/img/{emoji_set}/{size}/{e.image}"
        try:
            fh = tar.extractfile(member)
            body = fh.read() if fh is not None else b""
            check_image(body, min_side=size)
        except KeyError:
            report.failed.append((e.rel, f"not in the package: {member}"))
            continue
        except InvalidImage as exc:
            report.failed.append((e.rel, str(exc)))
            continue
        yield e, body


def _sheet_cells(
    tar: tarfile.TarFile, todo: list[_Emoji], emoji_set: str, size: int, report: FetchReport
):
    """(emoji, PNG bytes) cut from the sprite sheet img/<set>/sheets-clean/<size>.png."""
    from PIL import Image

    member = f"package/img/{emoji_set}/sheets-clean/{size}.png"
    try:
        fh = tar.extractfile(member)
        sheet = Image.open(io.BytesIO(fh.read() if fh is not None else b""))
        sheet.load()
    except KeyError:
        raise UserError(f"{package_name(emoji_set)}: the tarball has no {member}") from None
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


def _write(dest: Path, body: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(body)
    os.replace(part, dest)  # a file under its final name is always complete
