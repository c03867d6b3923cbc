"""npm packages as a source of images: one tarball, pinned, checked, and read within limits.

A package's tarball (``<registry>/<name>/-/<name>-<version>.tgz``) is downloaded once with the
retry policy and checked against its ``dist.integrity`` (npm's SRI form, ``sha512-<base64>``):
the one the code records for its pinned version, or for any other version the one the registry
lists at ``<registry>/<name>/<version>``.

Sources are untrusted. The download is refused past `MAX_TARBALL` bytes and given up after
`TARBALL_SECONDS` an attempt; the tarball is inflated only up to `MAX_UNPACKED` bytes; and the
archive is checked from its directory (every tar header is read before any file): a file is read
only when it is a regular file whose size in its header is within the caller's limit.

`fetch_package` is the flow every npm source shares: a re-run with the same options whose files
are all present makes no request (the manifest written next to the images holds the options and
one record per file, each with its ``file`` under OUT); otherwise the tarball is downloaded once,
the source plans its files from the archive, the missing ones are extracted and written through
``.part`` files, then the manifest and ``failed.txt``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import tarfile
import urllib.parse
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vaetune.errors import UserError
from vaetune.fetch._files import FetchReport, writable_dir, write_failures, write_file, write_json
from vaetune.fetch._http import DownloadError, MiB, PermanentError, RetryPolicy, get_with_retries

log = logging.getLogger(__name__)

NPM_REGISTRY = "https://registry.npmjs.org"
MAX_TARBALL = 512 * MiB  # compressed; emoji-datasource-apple@16.0.0, the largest used, is 95 MiB
MAX_UNPACKED = 1024 * MiB  # inflated; the same package unpacks to 98 MiB
MAX_RECORD = 8 * MiB  # the registry's record of one version (a few KiB)
TARBALL_SECONDS = 900.0  # one attempt at the tarball, unless the policy sets its own deadline
INTEGRITY_ALGORITHMS = ("sha512", "sha384", "sha256")


class MemberError(Exception):
    """A file of the archive that is not read; the message is the reason for the failure list."""


class Planned(Protocol):
    """A file a source takes from the package: where it goes under OUT, and its manifest record."""

    rel: str
    record: dict[str, Any]


P = TypeVar("P", bound=Planned)


@dataclass(frozen=True)
class NpmFetch:
    """What one fetch asks for: the package, its version and pin, and where the fetch is recorded.

    `options` (with package and version) go into the manifest: a re-run with the same options and
    all files present makes no request. `key` names the manifest's list of file records.
    """

    package: str
    version: str
    pin: tuple[str, str]  # (version, integrity) recorded in the code
    options: dict[str, Any]
    manifest: str  # file name under OUT
    key: str


def fetch_package(
    out: str | Path,
    job: NpmFetch,
    *,
    registry: str,
    policy: RetryPolicy | None,
    plan: Callable[[PackageArchive, FetchReport], list[P]],
    extract: Callable[[PackageArchive, list[P], FetchReport], Iterable[tuple[P, bytes]]],
) -> FetchReport:
    """Fetch the files a source takes from an npm package into `out`.

    Args:
        plan: the files to take, worked out from the archive (failures go to the report).
        extract: (file, bytes) for each file of a list that is not on disk yet; a file that
            cannot be extracted is added to the report's failures instead.

    Raises:
        UserError: an unusable `registry` or `out`, or a tarball that cannot be had or trusted.
    """
    registry = check_registry(registry)
    out = writable_dir(Path(out))
    options = {"package": job.package, "version": job.version, **job.options}
    report = FetchReport(out=out)
    present = present_files(out / job.manifest, options, job.key)
    if present is not None:
        report.skipped = present
        log.info("all %d files of %s@%s are present in %s", present, job.package, job.version, out)
        return report

    policy = policy or RetryPolicy(timeout=120.0)
    tarball = download_tarball(registry, job.package, job.version, pin=job.pin, policy=policy)
    with PackageArchive(tarball, job.package) as tar:
        files = plan(tar, report)
        todo = [f for f in files if not (out / f.rel).is_file()]
        report.skipped = len(files) - len(todo)
        log.info("%d files of %s@%s, %d already present", len(files), job.package, job.version,
                 report.skipped)
        for f, body in extract(tar, todo, report):
            write_file(out / f.rel, body)
            report.downloaded += 1
    write_json(out / job.manifest, {**options, job.key: [f.record for f in files]})
    write_failures(out, report.failed)
    return report


def check_registry(registry: str) -> str:
    """The registry URL without a trailing slash; a UserError unless it is an http(s) URL."""
    parts = urllib.parse.urlsplit(registry)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(
            f"--registry must be an http(s) URL such as {NPM_REGISTRY}, got {registry!r}"
        )
    return registry.rstrip("/")


def download_tarball(
    registry: str, package: str, version: str, *, pin: tuple[str, str], policy: RetryPolicy
) -> bytes:
    """The tarball of `package`@`version`, checked against its integrity.

    Args:
        registry: the registry URL (checked by `check_registry`).
        pin: (version, integrity) recorded in the code: that version is checked against that
            integrity without asking the registry; another is checked against the registry's.
        policy: retries and timeouts; without a `deadline`, `TARBALL_SECONDS` an attempt.

    Raises:
        UserError: the registry does not answer, or the tarball is too large or fails its check.
    """
    pinned_version, pinned_integrity = pin
    integrity = pinned_integrity if version == pinned_version else None
    if integrity is None:
        url = f"{registry}/{package}/{version}"
        record = _get(url, policy, what=f"the registry's record of {package}@{version}",
                      max_bytes=MAX_RECORD)
        try:
            integrity = json.loads(record)["dist"]["integrity"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{url}: not an npm version record with dist.integrity") from None
    check = _integrity_check(package, version, integrity)
    policy = policy.bounded(TARBALL_SECONDS)
    url = f"{registry}/{package}/-/{package}-{version}.tgz"
    log.info("downloading %s", url)
    return _get(url, policy, what=f"the tarball {package}@{version}", check=check,
                max_bytes=MAX_TARBALL)


def _integrity_check(package: str, version: str, integrity: Any) -> Callable[[bytes], None]:
    algorithm, _, expected = str(integrity).partition("-")
    if algorithm not in INTEGRITY_ALGORITHMS:
        raise UserError(
            f"{package}@{version}: unsupported integrity {integrity!r}; "
            f"accepted: {', '.join(INTEGRITY_ALGORITHMS)}"
        )

    def check(body: bytes) -> None:
        actual = base64.b64encode(hashlib.new(algorithm, body).digest()).decode()
        if actual != expected:  # the length matched, so this is another file: asking again will not help
            raise PermanentError(
                f"integrity mismatch: got {algorithm}-{actual[:16]}..., "
                f"expected {str(integrity)[:23]}..."
            )

    return check


def _get(url: str, policy: RetryPolicy, *, what: str, max_bytes: int, check=None) -> bytes:
    try:
        return get_with_retries(url, policy=policy, check=check, max_bytes=max_bytes)
    except DownloadError as exc:
        raise UserError(f"{what} could not be downloaded from {url}: {exc}") from None


class PackageArchive:
    """The files of an npm tarball, listed from its tar headers before any file is read.

    Use as a context manager. `files` maps each member's name (``package/...``) to its header, in
    the archive's order; `read` returns a file's bytes when its header allows it.
    """

    def __init__(self, tarball: bytes, package: str, *, max_unpacked: int = MAX_UNPACKED):
        self.package = package
        # inflated once, within the limit: members are then read in any order
        unpacked = _gunzip(tarball, package, max_unpacked)
        try:
            self._tar = tarfile.open(fileobj=io.BytesIO(unpacked), mode="r:")
            headers = self._tar.getmembers()  # the whole directory, before any file is read
        except tarfile.TarError as exc:
            raise UserError(f"{package}: the tarball is not a readable tar archive ({exc})") from None
        self.files = {h.name: h for h in headers if not h.isdir()}

    def read(self, name: str, *, max_size: int) -> bytes:
        """The bytes of `name`.

        Raises:
            MemberError: absent, not a regular file (a link, a device), or larger than
                `max_size` by its header (then not read at all).
        """
        header = self.files.get(name)
        if header is None:
            raise MemberError(f"not in the package: {name}")
        if not header.isreg():
            raise MemberError(f"not a regular file in the package: {name}")
        if header.size > max_size:
            raise MemberError(
                f"{name} is {header.size} bytes by its tar header, over the limit of {max_size}; not read"
            )
        fh = self._tar.extractfile(header)
        return fh.read() if fh is not None else b""

    def read_json(self, name: str, *, max_size: int, what: str) -> Any:
        """A JSON file of the package; a UserError (naming `what` the package should be) if not."""
        try:
            return json.loads(self.read(name, max_size=max_size))
        except MemberError as exc:
            raise UserError(f"{self.package}: {exc}; is it {what}?") from None
        except ValueError:
            raise UserError(f"{self.package}: {name} in the tarball is not JSON") from None

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> PackageArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _gunzip(tarball: bytes, package: str, limit: int) -> bytes:
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # the gzip format
    try:
        unpacked = inflate.decompress(tarball, limit + 1)
    except zlib.error as exc:
        raise UserError(f"{package}: the tarball is not gzip data ({exc})") from None
    if len(unpacked) > limit:
        raise UserError(f"{package}: the tarball unpacks to more than {limit} bytes; refused")
    if not inflate.eof:
        raise UserError(f"{package}: the tarball's gzip data ends early")
    return unpacked


def present_files(manifest: Path, options: dict[str, Any], key: str) -> int | None:
    """How many files an earlier fetch with the same `options` listed under `key` in `manifest`,
    when all of them are present under the manifest's folder; else None."""
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or any(recorded.get(k) != v for k, v in options.items()):
        return None
    records = recorded.get(key)
    files = [r.get("file") for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    out = manifest.parent
    if not files or not all(isinstance(f, str) and (out / f).is_file() for f in files):
        return None
    return len(files)
