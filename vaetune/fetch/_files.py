"""Small file helpers shared by the fetchers: a checked output folder, atomic files and JSON, the
failure list, and the report a fetch returns."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetune.errors import UserError

FAILED_FILE = "failed.txt"


@dataclass
class FetchReport:
    """What a fetch did: counts, and (file, reason) for every image that failed."""

    out: Path
    downloaded: int = 0
    skipped: int = 0  # already present from an earlier run
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = f"{self.downloaded} downloaded, {self.skipped} already present, {len(self.failed)} failed"
        if self.failed:
            text += f" (listed in {self.out / FAILED_FILE})"
        return f"{text}; images in {self.out}"


def writable_dir(path: Path) -> Path:
    """Create `path` and prove it is writable now, before any download starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to the output folder {path}: {exc.strerror or exc}") from None
    return path


def write_file(path: Path, body: bytes) -> None:
    """Write `body` through a `.part` file renamed into place: a file under its final name is
    always complete, and an interrupted fetch leaves at most a `.part` behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_bytes(body)
    os.replace(part, path)


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a `.part` file, so a reader never sees half of it."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
    os.replace(part, path)


def write_failures(out: Path, failed: list[tuple[str, str]]) -> None:
    """List failures in `out/failed.txt` (tab-separated), or remove an earlier run's list."""
    path = out / FAILED_FILE
    if failed:
        lines = "".join(f"{rel}\t{reason}\n" for rel, reason in sorted(failed))
        path.write_text("# file\treason\n" + lines)
    elif path.exists():
        path.unlink()
