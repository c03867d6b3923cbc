"""Where commands write for the user: only where they may, and never over a file that is not ours.

Pictures vaetune writes carry a mark (the PNG text chunk `Software: vaetune`, the GIF comment
`vaetune`); an exported checkpoint is recognised by its contents. An existing file without
the mark is the user's: a command refuses to replace it and says so. A folder a command fills
(`vaetune train --out`, `vaetune report --out`) must be new, empty or one it filled before.
Every check here runs before the command writes anything, so a refused command leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from vaetune.errors import UserError

SOFTWARE = "vaetune"  # the mark in the pictures vaetune writes
NAME_MAX = 255  # bytes in one file name on common file systems


def png_info():
    """Pillow's PNG metadata carrying the mark; pass as `pnginfo=` to `Image.save`."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", SOFTWARE)
    return info


def gif_comment() -> bytes:
    """The mark as a GIF comment; pass as `comment=` to `Image.save`."""
    return SOFTWARE.encode()


def carries_mark(image) -> bool:
    """Whether an opened PIL image (only its header is read) is a picture vaetune drew: a PNG or GIF
    carrying the mark."""
    mark = image.info.get("Software") if image.format == "PNG" else image.info.get("comment")
    return image.format in ("PNG", "GIF") and mark in (SOFTWARE, gif_comment())


def written_by_vaetune(path: str | Path) -> bool:
    """Whether an existing file is one vaetune wrote: a marked PNG or GIF, or a vaetune checkpoint."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".png", ".gif"):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                return carries_mark(im)
        except (OSError, UnidentifiedImageError, ValueError):
            return False
    if suffix == ".pt":
        from vaetune.checkpoint import load_checkpoint

        try:
            load_checkpoint(path)
        except UserError:
            return False
        return True
    return False


def output_file(path: str | Path, *, what: str = "--out", suffixes: Sequence[str] = (".png",)) -> Path:
    """A file a command is about to write, checked: the right kind, in a folder it can write to,
    and not an existing file vaetune did not write.

    Args:
        path: the file as the user named it.
        what: the argument that named it, for the message.
        suffixes: the kinds the command writes, e.g. (".png",).

    Raises:
        UserError: naming the argument, the path and what is accepted.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{what}: {path} is a folder; give a file name, e.g. {path / ('out' + suffixes[0])}")
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{what}: got {str(path)!r}; give a {' or '.join(suffixes)} file")
    _check_length(path, what)
    if path.exists() and not written_by_vaetune(path):
        raise UserError(f"{what}: {path} exists and was not written by vaetune; give another name, or move it "
                        "away first")
    check_writable(path.parent, what)
    return path


def output_folder(path: str | Path, *, what: str, ours: Callable[[Path], bool]) -> Path:
    """A folder a command is about to fill: new, empty, or one `ours(folder)` recognises."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{what}: {path} is a file; give a folder")
    _check_length(path, what)
    if path.is_dir() and any(path.iterdir()) and not ours(path):
        raise UserError(f"{what}: {path} holds files vaetune did not write; give a new or empty folder")
    check_writable(path, what)
    return path


def check_writable(folder: str | Path, what: str) -> None:
    """The folder exists and takes a file, or can be created: checked on its nearest existing
    ancestor by creating and removing a temporary file (permission bits do not tell for root or
    read-only mounts)."""
    folder = Path(folder).expanduser().absolute()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what}: {existing} is a file; give a folder" if existing == folder
                        else f"{what}: {existing} is a file, so {folder} cannot be a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=existing, prefix=".vaetune-write-test-")
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {existing} ({exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def distinct_names(paths: Sequence[str | Path]) -> list[str]:
    """A short name per input file, distinct from the others: its stem, else as many of its
    folders as it takes (cats/im000.png, dogs/im000.png -> cats_im000, dogs_im000); a file
    given twice gets _2."""
    parts = [_without_anchor(Path(p).expanduser().resolve().with_suffix("")) for p in paths]
    depth = [1] * len(parts)
    while True:
        names = ["_".join(pp[-d:]) for pp, d in zip(parts, depth, strict=True)]
        counts = Counter(names)
        grow = [i for i, n in enumerate(names) if counts[n] > 1 and depth[i] < len(parts[i])]
        if not grow:
            break
        for i in grow:
            depth[i] += 1
    out: list[str] = []
    for name in names:
        unique, k = name, 1
        while unique in out:
            k += 1
            unique = f"{name}_{k}"
        out.append(unique)
    return out


def _without_anchor(path: Path) -> tuple[str, ...]:
    return path.parts[1:] if path.anchor else path.parts


def _check_length(path: Path, what: str) -> None:
    long = next((p for p in path.parts if len(p.encode()) > NAME_MAX), None)
    if long is not None:
        raise UserError(f"{what}: {long[:40]}... is {len(long.encode())} bytes long; a file or folder name "
                        f"takes at most {NAME_MAX}")
