"""A downloaded dataset read in place, whether a folder or the .zip Kaggle hands out.

Files are listed as POSIX paths relative to the root (``Training/Apple Braeburn/0_100.jpg``),
without macOS metadata (``__MACOSX/``, ``._*``) and hidden files, so the preparers never care
which of the two they were given. A file larger than any image vaetune decodes is never read
(a zip's entries are sized from its directory, before a byte is inflated).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from vaetune.data.decode import InvalidImage, too_large_file
from vaetune.errors import UserError


class SourceTree:
    """The files of a folder or a .zip; use as a context manager (closes the zip)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            names = (p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            names = (i.filename for i in self._zip.infolist() if not i.is_dir())
        elif self.path.exists():
            raise UserError(f"{self.path} is neither a folder nor a .zip file")
        else:
            raise UserError(f"{self.path} does not exist (give the downloaded .zip or the folder it unzips to)")
        self.files = sorted(n for n in names if not _hidden(n))

    def size(self, rel: str) -> int:
        """The bytes `rel` holds, from the zip's directory or the file system: nothing is read."""
        if self._zip is not None:
            return self._zip.getinfo(rel).file_size
        return (self.path / rel).stat().st_size

    def too_large(self, rel: str) -> InvalidImage | None:
        """Why `rel` is not read as an image (larger than any image vaetune decodes), or None."""
        return too_large_file(self.size(rel), "the zip's directory" if self._zip is not None else "its size on disk")

    def read(self, rel: str) -> bytes:
        """The bytes of `rel`; a UserError naming it when it is larger than any file vaetune reads (a zip's
        entry is checked from its directory, before a byte is inflated)."""
        too_large = self.too_large(rel)
        if too_large is not None:
            raise UserError(f"{self.path}: {rel}: {too_large.reason}")
        if self._zip is not None:
            return self._zip.read(rel)
        return (self.path / rel).read_bytes()

    def copy_to(self, rel: str, dest: Path) -> None:
        if self._zip is not None:
            with self._zip.open(rel) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(self.path / rel, dest)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> SourceTree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _hidden(rel: str) -> bool:
    parts = rel.split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)
