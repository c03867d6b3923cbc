"""HTTP downloads that survive a flaky server: one shared rate limit, retries with exponential
back-off on transient failures, and a body check before anything is accepted.

Transient (retried): HTTP 5xx and 429, timeouts, refused or reset connections, bodies that are
shorter than their Content-Length or fail the caller's check (a cut-off image), and an attempt
that outlasts the policy's `deadline`. Anything else (HTTP 404, a malformed URL, a body larger
than the caller's `max_bytes`) fails at once: asking again would not change the answer.

Sources are untrusted: only http(s) URLs are fetched (never file://, ftp:// or data:, which
urllib would otherwise open), redirects included, and a caller that names its source's `Hosts`
gets nothing from anywhere else, however a URL or a redirect points there.
"""

from __future__ import annotations

import dataclasses
import http.client
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from vaetune import __version__

USER_AGENT = f"vaetune/{__version__} (image dataset fetcher; python-urllib)"
MiB = 1 << 20  # the unit of the fetchers' size limits
_CHUNK = 1 << 16  # bytes read at a time: the size and time limits are checked between reads


SCHEMES = ("http", "https")  # the only URLs a fetch follows


@dataclass(frozen=True)
class Hosts:
    """The hosts a fetch may reach: each `host` or `host:port` (no port: the scheme's own, 80 or 443)."""

    names: tuple[str, ...]

    @classmethod
    def of(cls, *urls: str) -> Hosts:
        """The hosts of these URLs (a source's own), in order, each once."""
        return cls(tuple(dict.fromkeys(urllib.parse.urlsplit(u).netloc.lower() for u in urls)))

    def refuses(self, url: str) -> str | None:
        """Why `url` is not fetched (not http(s), or on another host), or None."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.netloc:
            return f"not an http(s) URL; fetched only: http(s) URLs on {self.describe()}"
        if _origin(parts) not in {_origin(urllib.parse.urlsplit(f"{parts.scheme}://{n}")) for n in self.names}:
            return f"on another host than the source's; fetched only: http(s) URLs on {self.describe()}"
        return None

    def describe(self) -> str:
        return " or ".join(self.names)


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, int | None]:
    """(host, port) with the scheme's own port where none is given; http and https alike on theirs."""
    try:
        port = parts.port
    except ValueError:  # a port that is not a number
        return (parts.netloc, None)
    return ((parts.hostname or "").lower(), None if port in (None, 80, 443) else port)


class RetryableError(Exception):
    """A failure that may go away if the request is repeated."""


class PermanentError(Exception):
    """A failure that repeating the request will not fix (HTTP 4xx, bad URL)."""


class DownloadError(Exception):
    """A download that failed for good; the message is the reason for the failure list."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `retries` repeats after the first attempt, waiting `backoff` seconds
    before the first repeat and doubling each time (capped at `max_backoff`, with jitter so
    parallel workers do not retry in lock step). `timeout` bounds each socket operation;
    `deadline` (None: no bound) the seconds one attempt may take in all, so that a server
    trickling a body slowly enough to beat `timeout` is still given up on."""

    retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0
    timeout: float = 30.0
    deadline: float | None = None

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def bounded(self, seconds: float) -> RetryPolicy:
        """This policy with a deadline an attempt: its own, else `seconds` (every download has one)."""
        return self if self.deadline is not None else dataclasses.replace(self, deadline=seconds)


class RateLimiter:
    """At most `rate` request starts per second, shared by every thread that calls `wait()`.

    Starts are spaced evenly `1/rate` seconds apart (a token bucket of depth one), so even a
    burst of workers never exceeds the server's per-second limit. `rate=None` or 0 disables it.
    """

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Sleep until this caller's slot; returns the slot (a `time.monotonic()` value)."""
        if not self.interval:
            return time.monotonic()
        with self._lock:  # reserve the next free slot, then sleep outside the lock
            slot = max(time.monotonic(), self._next)
            self._next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return slot


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, each target checked as the URL itself was (http(s) only; the hosts given)."""

    def __init__(self, hosts: Hosts | None):
        self.hosts = hosts

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        reason = _refused(newurl, self.hosts)
        if reason is not None:
            raise PermanentError(f"redirected to {newurl}, {reason}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _refused(url: str, hosts: Hosts | None) -> str | None:
    if hosts is not None:
        return hosts.refuses(url)
    parts = urllib.parse.urlsplit(url)
    return None if parts.scheme in SCHEMES and parts.netloc else "not an http(s) URL"


def http_get(
    url: str,
    *,
    timeout: float,
    limiter: RateLimiter | None = None,
    max_bytes: int | None = None,
    deadline: float | None = None,
    hosts: Hosts | None = None,
) -> bytes:
    """One GET of `url`: the whole body, checked against its Content-Length.

    Args:
        max_bytes: refuse a body larger than this (announced by Content-Length, or read so far).
        deadline: give up when the whole attempt takes longer than this many seconds.
        hosts: where the URL and its redirects may lead (None: any host, http(s) only).

    Raises:
        RetryableError: 5xx/429, timeout, connection trouble, a truncated body, or past `deadline`.
        PermanentError: any other HTTP error, a URL that is not http(s) (or not on `hosts`), a
            redirect to one, or a body over `max_bytes`.
    """
    reason = _refused(url, hosts)
    if reason is not None:
        raise PermanentError(reason)
    if limiter is not None:
        limiter.wait()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    expected = None
    give_up_at = None if deadline is None else time.monotonic() + deadline
    try:
        with urllib.request.build_opener(_Redirects(hosts)).open(request, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            if max_bytes is not None and expected is not None and expected.isdigit():
                if int(expected) > max_bytes:
                    raise PermanentError(f"{expected} bytes announced, over the limit of {max_bytes}")
            body = _read_body(response, max_bytes, give_up_at, deadline)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise RetryableError(f"HTTP {exc.code} {exc.reason}") from None
        raise PermanentError(f"HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise RetryableError(f"truncated body ({len(exc.partial)} of {expected} bytes)") from None
    except TimeoutError:
        raise RetryableError(f"timed out after {timeout:g} s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise RetryableError(f"timed out after {timeout:g} s") from None
        if isinstance(exc.reason, str) and exc.reason.startswith("unknown url type"):
            raise PermanentError(exc.reason) from None
        raise RetryableError(f"connection error: {exc.reason}") from None
    except (http.client.HTTPException, OSError) as exc:
        raise RetryableError(f"connection error: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # e.g. a URL without a scheme
        raise PermanentError(str(exc)) from None
    if expected is not None and expected.isdigit() and len(body) != int(expected):
        raise RetryableError(f"truncated body ({len(body)} of {expected} bytes)")
    return body


def _read_body(
    response, max_bytes: int | None, give_up_at: float | None, deadline: float | None
) -> bytes:
    """The body as it arrives (one network read at a time), checking its size and the time taken."""
    read = getattr(response, "read1", response.read)  # read() would wait for a whole chunk
    chunks, size = [], 0
    while chunk := read(_CHUNK):
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise PermanentError(f"more than {max_bytes} bytes, over the limit")
        if give_up_at is not None and time.monotonic() > give_up_at:
            raise RetryableError(f"not complete after {deadline:g} s ({size} bytes read)")
        chunks.append(chunk)
    return b"".join(chunks)


def get_with_retries(
    url: str,
    *,
    policy: RetryPolicy,
    limiter: RateLimiter | None = None,
    check: Callable[[bytes], object] | None = None,
    max_bytes: int | None = None,
    hosts: Hosts | None = None,
) -> bytes:
    """GET `url`, retrying transient failures per `policy`; `check(body)` raising
    RetryableError marks a body as unusable (it is retried like a truncated one). A body over
    `max_bytes` fails at once; an attempt past `policy.deadline` is retried; a URL (or redirect)
    that is not http(s), or not on `hosts` when given, is never requested.

    Raises:
        DownloadError: still failing after the last attempt, or a permanent failure.
    """
    attempts = policy.retries + 1
    for attempt in range(attempts):
        try:
            body = http_get(url, timeout=policy.timeout, limiter=limiter, max_bytes=max_bytes,
                            deadline=policy.deadline, hosts=hosts)
            if check is not None:
                check(body)
            return body
        except PermanentError as exc:
            raise DownloadError(str(exc)) from None
        except RetryableError as exc:
            last = exc
            if attempt + 1 < attempts:
                time.sleep(policy.delay(attempt))
    raise DownloadError(f"{last} (gave up after {attempts} attempts)")
