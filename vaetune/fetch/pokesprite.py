"""`vaetune data fetch pokesprite`: the Pokémon box sprites of the npm package pokesprite-images.

The package (PokéSprite, MIT licence; the sprites are from the core series games) holds
``package/pokemon-gen8/regular/<name>.png`` (1 332 box sprites of 68x56 px, mostly RGBA, some
palette with transparency and some grey + alpha), ``package/pokemon-gen8/shiny/<name>.png`` (the
same Pokémon in their shiny colours, 1 333) and a ``female/`` sub-folder of each with the 20
Pokémon whose female differs. Its icons, items and gen-7 folders are left out.

The version is pinned, and the tarball is checked against the npm ``integrity`` (SHA-512)
recorded here for it; another version (``version=``) is checked against the integrity the
registry lists for it. Files are taken by their names in the archive's directory: only plain
names (letters, digits, ``.``, ``_``, ``-``, ending in ``.png``) directly in a variant's folder
or its ``female/`` folder, each read only when its tar header gives at most `MAX_SPRITE` bytes.
Layout written (``OUT`` defaults to ``data/pokesprite``)::

    OUT/<variant>/<name>.png          e.g. regular/pikachu.png, shiny/pikachu.png
    OUT/<variant>/<name>-female.png   from the variant's female/ folder, e.g. regular/pikachu-female.png
    OUT/pokesprite.json               package, version, variants, and one record per file
    OUT/failed.txt                    files that could not be extracted (only if any)

Images are copied byte for byte after a full decode check (resizing and compositing on
``data.background`` are the data module's), through ``<name>.part`` renamed into place. A re-run
whose ``pokesprite.json`` matches and whose files all exist makes no request; otherwise the
tarball is downloaded once and only the missing files are written.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vaetune.data import InvalidImage
from vaetune.errors import UserError
from vaetune.fetch._files import FetchReport
from vaetune.fetch._http import RetryPolicy
from vaetune.fetch._images import check_image
from vaetune.fetch._npm import NPM_REGISTRY, MemberError, NpmFetch, PackageArchive, fetch_package

log = logging.getLogger(__name__)

PACKAGE = "pokesprite-images"
POKESPRITE_VERSION = "2.7.0"
# dist.integrity of pokesprite-images@2.7.0 as the registry lists it (npm's SRI form).
POKESPRITE_INTEGRITY = (
    "sha512-LQuzyaEDl4ow75fPzrVuJB0cIRmxVq4XBecDFajA0WrZI1xHCmXn5OSBul44D+24tA1kMT7GSROmct5FRg8dtQ=="
)
SPRITE_DIR = "package/pokemon-gen8"
VARIANTS = {"regular": ("regular",), "shiny": ("shiny",), "both": ("regular", "shiny")}
FEMALE = "female"  # the sub-folder of a variant with the female forms
MAX_SPRITE = 10 << 20  # bytes by the tar header (10 MiB); the sprites are 1-5 KiB
MANIFEST = "pokesprite.json"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png")


@dataclass(frozen=True)
class _Sprite:
    member: str  # name in the archive, e.g. "package/pokemon-gen8/shiny/female/pikachu.png"
    rel: str  # path under OUT, e.g. "shiny/pikachu-female.png"
    name: str  # the Pokémon (and form), e.g. "pikachu"
    variant: str
    female: bool

    @property
    def record(self) -> dict[str, object]:
        return {"file": self.rel, "name": self.name, "variant": self.variant, "female": self.female}


def fetch_pokesprite(
    out: str | Path = "data/pokesprite",
    *,
    variant: Literal["regular", "shiny", "both"] = "both",
    limit: int | None = None,
    policy: RetryPolicy | None = None,
    registry: str = NPM_REGISTRY,
    version: str = POKESPRITE_VERSION,
) -> FetchReport:
    """Download pokesprite-images from the npm registry and write its gen-8 box sprites.

    The regular and shiny sprites of each Pokémon go into ``out/regular`` and ``out/shiny``, the
    female forms beside them as ``<name>-female.png``, byte for byte as the package ships them.

    Args:
        out: destination folder (created); one sub-folder per variant.
        variant: ``regular``, ``shiny`` or ``both``.
        limit: at most this many images, in the order of their names (with both variants each
            Pokémon's regular and shiny sprite come together); None for all.
        registry, version, policy: the npm registry (a mirror, or a local server in tests); the
            package version, whose tarball must match the integrity pinned here (the default) or
            the one the registry lists (another); retries and timeouts of the download.

    Returns:
        FetchReport, whose failures (file, reason) are also written to ``out/failed.txt``.

    Raises:
        UserError: an unknown variant, a limit below 1, an unwritable `out`, an unreachable
            registry, or a tarball too large, failing its integrity check or without gen-8 sprites.
    """
    if variant not in VARIANTS:
        raise UserError(f"--variant: got {variant!r}; accepted: {', '.join(VARIANTS)}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    variants = list(VARIANTS[variant])
    job = NpmFetch(PACKAGE, version, (POKESPRITE_VERSION, POKESPRITE_INTEGRITY),
                   {"variants": variants, "limit": limit}, MANIFEST, "files")
    return fetch_package(out, job, registry=registry, policy=policy,
                         plan=lambda tar, report: _plan(tar, variants, limit, report), extract=_extract)


def _plan(tar: PackageArchive, variants: list[str], limit: int | None,
          report: FetchReport) -> list[_Sprite]:
    """The sprites of `variants` found in the archive's directory, ordered by file name.

    A member of a variant's folder that is not a plain ``.png`` name directly in it or in its
    ``female/`` folder (a path that climbs out, a deeper folder) is listed as failed, never read.
    """
    sprites: dict[str, _Sprite] = {}
    for member in sorted(tar.files, key=lambda m: (m.count("/"), m)):  # female forms after the rest
        parts = member.split("/")
        if parts[:2] != SPRITE_DIR.split("/") or len(parts) < 4 or parts[2] not in variants:
            continue
        variant, rest = parts[2], parts[3:]
        female = len(rest) == 2 and rest[0] == FEMALE
        name = rest[-1]
        if not (len(rest) == 1 or female) or not _PLAIN_NAME.fullmatch(name):
            report.failed.append((member, "not a plain .png name in a variant's folder; not written"))
            continue
        stem = name.removesuffix(".png")
        rel = f"{variant}/{stem}-female.png" if female else f"{variant}/{name}"
        if rel in sprites:
            report.failed.append((member, f"would overwrite {sprites[rel].member}; not written"))
            continue
        sprites[rel] = _Sprite(member, rel, stem, variant, female)
    if not sprites:
        raise UserError(f"{PACKAGE}: the tarball has no sprites under {SPRITE_DIR}/"
                        f"{{{','.join(variants)}}}/; is it a pokesprite-images package?")
    ordered = sorted(sprites.values(), key=lambda s: (s.name, s.female, variants.index(s.variant)))
    return ordered if limit is None else ordered[:limit]


def _extract(tar: PackageArchive, todo: list[_Sprite], report: FetchReport):
    """(sprite, PNG bytes) for each sprite of `todo` that is small enough by its header and decodes."""
    for s in todo:
        try:
            body = tar.read(s.member, max_size=MAX_SPRITE)
            check_image(body)
        except (MemberError, InvalidImage) as exc:
            report.failed.append((s.rel, str(exc)))
            continue
        yield s, body
