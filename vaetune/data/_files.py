"""Images in a folder (searched recursively) or in a .zip, read in place; folder labels."""

from __future__ import annotations

import logging
import os
import stat
import threading
import zipfile
from collections import Counter
from functools import partial
from pathlib import Path, PurePosixPath

from vaetune.data._items import Item, ItemSource, _digest, _is_image_name, folder_classes
from vaetune.data._progress import Progress
from vaetune.data.decode import read_image_file, too_large_file
from vaetune.errors import UserError
from vaetune.spec import DataConfig

log = logging.getLogger(__name__)

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
        progress = Progress(f"reading the sizes and times of {self.root}", total=len(self.files), unit="files")
        for rel in self.files:
            st = (self.root / rel).stat()
            lines.append(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}")
            progress.add()
        return "folder:" + _digest(lines)

    def items(self) -> list[Item]:
        classes = folder_classes(self.files, self.cfg.labels, self.root.resolve().name)
        return [Item(rel, partial(read_image_file, self.root / rel), c) for rel, c in zip(self.files, classes, strict=True)]


NOT_REGULAR = "(not a regular file: a pipe, socket, device or broken link)"  # its key in `others`


def _walk(root: Path, others: Counter) -> list[str]:
    """Image files below root (relative POSIX paths); the extensions of the other files go to `others`.
    Only regular files (or links to one) count: a named pipe would block the first read forever,
    so anything else is skipped, with one warning naming it, and never opened."""
    out, odd = [], []
    progress = Progress(f"listing {root}", unit="files")
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_folder = Path(folder).relative_to(root)
        progress.add(len(files))
        for f in files:
            if f.startswith(".") and not _is_image_name(f):
                continue
            if not _is_regular(os.path.join(folder, f)):
                odd.append((rel_folder / f).as_posix())
                others[NOT_REGULAR] += 1
            elif _is_image_name(f):
                out.append((rel_folder / f).as_posix())
            else:
                others[_suffix(f)] += 1
    if odd:
        shown = ", ".join(odd[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
        log.warning("%s: skipped %d entries that are not regular files (a pipe, socket, device or broken link): %s",
                    root, len(odd), shown)
    return out


def _is_regular(path: str) -> bool:
    """A regular file, or a link to one; stat does not open the file, so a FIFO cannot block it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # a link to nothing, or to itself
        return False


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
        too_large = too_large_file(self.zip.getinfo(name).file_size, "the zip's directory")
        if too_large is not None:  # the size an entry inflates to is known before a byte is inflated
            raise too_large
        with self._lock:
            try:
                return self.zip.read(name)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                raise OSError(f"bad zip entry: {exc}") from None


