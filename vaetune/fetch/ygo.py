"""`vaetune data fetch ygo`: Yu-Gi-Oh! card images from the public YGOPRODeck API.

The API (https://ygoprodeck.com/api-guide/) answers ``GET cardinfo.php`` with
``{"data": [card, ...]}``; each card has ``id``, ``name``, ``type``, ``frameType`` (normal,
effect, fusion, spell, trap, ...), ``desc``, ... and ``card_images: [{id, image_url,
image_url_small, image_url_cropped}]`` (421x614 full cards; the cropped field is the art only).
Its documented limit is 20 requests per second (exceeding it blocks the client for an hour), so
downloads are rate limited to 10/s by default, and images are to be stored locally, as here.

The API's answer is untrusted: image URLs are followed only when they are http(s) URLs on the API's
own host or on YGOPRODeck's documented card-image host (``images.ygoprodeck.com``), redirects
included; any other (``file://``, another host) is listed in ``failed.txt`` and never requested.
Every download is bounded: the card list by MAX_CARD_LIST bytes and LIST_SECONDS an attempt, each
image by MAX_IMAGE bytes and IMAGE_SECONDS (a body without a Content-Length is cut off there too).

Layout written (``OUT`` defaults to ``data/ygo``)::

    OUT/<frameType>/<image id>.jpg   one card image each; sub-folders give folder labels
    OUT/cards.json                   the selected cards' metadata (id, name, type, ..., file)
    OUT/failed.txt                   file, URL and reason of each failed image (only if any)

A file is only ever written whole: the body must match its Content-Length and decode as an
image, then it goes to ``<name>.part`` and is renamed into place. Existing files are complete by
construction and are skipped without a request, so an interrupted fetch resumes.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vaetune.data import InvalidImage
from vaetune.data.decode import IMAGE_SUFFIXES
from vaetune.errors import UserError
from vaetune.fetch._files import (
    FAILED_FILE,
    FetchReport,
    writable_dir,
    write_failures,
    write_file,
    write_json,
)
from vaetune.fetch._http import (
    DownloadError,
    Hosts,
    MiB,
    PermanentError,
    RateLimiter,
    RetryableError,
    RetryPolicy,
    get_with_retries,
)
from vaetune.fetch._images import check_image

log = logging.getLogger(__name__)

YGO_API = "https://db.ygoprodeck.com/api/v7/cardinfo.php"
YGO_IMAGES = "https://images.ygoprodeck.com"  # where the API's documented card images live
MAX_CARD_LIST = 256 * MiB  # the whole list with every field is tens of MiB
MAX_IMAGE = 16 * MiB  # a card image is about 0.1 MiB (421x614 JPEG)
LIST_SECONDS = 600.0  # one attempt at the card list, unless the policy sets its own deadline
IMAGE_SECONDS = 120.0  # one attempt at one image, likewise
# Which URL of a card image to fetch: the whole card (421x614) or the art crop alone.
IMAGE_FIELDS = {"full": "image_url", "cropped": "image_url_cropped"}
# Card fields kept in cards.json (prices, sets and banlists change daily and are left out).
CARD_FIELDS = ("id", "name", "type", "humanReadableCardType", "frameType", "desc", "race",
               "attribute", "archetype", "atk", "def", "level", "linkval", "scale")
CARDS_FILE = "cards.json"


@dataclass(frozen=True)
class _Job:
    url: str
    rel: str  # path under OUT, e.g. "effect/46986414.jpg"


def fetch_ygo(
    out: str | Path = "data/ygo",
    *,
    api: str = YGO_API,
    limit: int | None = None,
    art: Literal["full", "cropped"] = "full",
    concurrency: int = 4,
    rate: float | None = 10.0,
    policy: RetryPolicy | None = None,
    min_side: int = 8,
    progress: bool | None = None,
) -> FetchReport:
    """Download the card list and the card images into `out`.

    Args:
        out: destination folder (created).
        api: card-list URL returning YGOPRODeck's ``{"data": [...]}`` JSON.
        limit: at most this many images (the first cards of the list), None for all.
        art: ``"full"`` card images or ``"cropped"`` art only.
        concurrency: parallel image downloads.
        rate: at most this many requests per second, over all workers; None disables.
        policy: retries, back-off and timeout (tests use tiny delays).
        min_side: a decoded image smaller than this (either side) counts as broken.
        progress: show a tqdm bar; None shows it on a terminal only.

    Returns:
        FetchReport; failures are also listed in ``out/failed.txt``.

    Raises:
        UserError: bad arguments, an unwritable `out`, or an `api` that does not answer a card list.
    """
    _check_args(limit=limit, concurrency=concurrency, rate=rate, art=art)
    out = writable_dir(Path(out))
    policy = policy or RetryPolicy()
    limiter = RateLimiter(rate)

    cards = _card_list(api, policy.bounded(LIST_SECONDS), limiter)
    hosts = Hosts.of(api, YGO_IMAGES)
    jobs, records = _plan(cards, IMAGE_FIELDS[art], limit)
    refused = [(job.rel, f"{why} <{job.url}>") for job in jobs if (why := hosts.refuses(job.url))]
    if refused and len(refused) == len(jobs):
        raise UserError(f"the card-list API {api} names no image URL vaetune follows: {refused[0][1]}")
    if refused:
        log.warning("ygo: %d image URL(s) of the card list are not followed (listed in %s): %s",
                    len(refused), out / FAILED_FILE, refused[0][1])
    jobs = [job for job in jobs if not hosts.refuses(job.url)]
    write_json(out / CARDS_FILE, records)

    report = FetchReport(out=out, failed=list(refused))
    policy = policy.bounded(IMAGE_SECONDS)
    todo = [job for job in jobs if not (out / job.rel).is_file()]
    report.skipped = len(jobs) - len(todo)
    log.info("ygo: %d card images listed, %d already present, %d to download", len(jobs), report.skipped, len(todo))

    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(todo), unit="img", desc="ygo", disable=None if progress is None else not progress) as bar:
        futures = {pool.submit(_download, job, out, policy, limiter, min_side, hosts): job for job in todo}
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    future.result()
                    report.downloaded += 1
                except DownloadError as exc:
                    report.failed.append((job.rel, f"{exc} <{job.url}>"))
                    log.warning("ygo: %s failed: %s", job.rel, exc)
                bar.update(1)
        except BaseException:  # Ctrl-C: drop the queue; files in flight finish or stay .part
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    write_failures(out, report.failed)
    return report


def _check_args(*, limit: int | None, concurrency: int, rate: float | None, art: str) -> None:
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    if concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, got {concurrency}")
    if rate is not None and rate <= 0:
        raise UserError(f"--rate must be positive (requests per second), got {rate}")
    if art not in IMAGE_FIELDS:
        raise UserError(f"art must be one of {', '.join(IMAGE_FIELDS)}, got {art!r}")


def _card_list(api: str, policy: RetryPolicy, limiter: RateLimiter) -> list[dict[str, Any]]:
    parts = urllib.parse.urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--api must be an http(s) URL such as {YGO_API}, got {api!r}")
    log.info("ygo: fetching the card list from %s", api)
    try:
        body = get_with_retries(api, policy=policy, limiter=limiter, max_bytes=MAX_CARD_LIST)
    except DownloadError as exc:
        raise UserError(f"the card-list API {api} could not be read: {exc}") from None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: brackets nested deeper than Python's stack
        raise UserError(f"the card-list API {api} did not answer JSON (check --api)") from None
    cards = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(cards, list):
        hint = f": {payload['error']}" if isinstance(payload, dict) and "error" in payload else ""
        raise UserError(f"the card-list API {api} did not answer a YGOPRODeck card list "
                        f'({{"data": [...]}}){hint}')
    return cards


def _plan(cards: list[dict], url_field: str, limit: int | None) -> tuple[list[_Job], list[dict]]:
    """One job per card (its first, canonical artwork) and the metadata records for cards.json."""
    jobs: list[_Job] = []
    records: list[dict] = []
    seen: set[str] = set()
    for card in cards:
        if limit is not None and len(jobs) >= limit:
            break
        if not isinstance(card, dict):
            continue
        images = card.get("card_images") or []
        image = images[0] if images and isinstance(images[0], dict) else None
        url = image.get(url_field) if image else None
        if not url:
            continue
        if not isinstance(url, str):
            continue
        image_id = image.get("id", card.get("id"))
        suffix = Path(urllib.parse.urlsplit(url).path).suffix.lower()
        suffix = suffix if suffix in IMAGE_SUFFIXES else ".jpg"  # a name vaetune.data reads, whatever the URL
        rel = f"{_folder_name(card.get('frameType'))}/{_file_stem(image_id)}{suffix}"
        if rel in seen:
            continue
        seen.add(rel)
        jobs.append(_Job(url=url, rel=rel))
        record = {k: card[k] for k in CARD_FIELDS if k in card}
        record.update(image_id=image_id, image_url=url, file=rel)
        records.append(record)
    return jobs, records


def _folder_name(frame_type: Any) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", str(frame_type or "unknown").lower()).strip("_")
    return name or "unknown"


def _file_stem(image_id: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(image_id))


def _download(job: _Job, out: Path, policy: RetryPolicy, limiter: RateLimiter, min_side: int, hosts: Hosts) -> None:
    def check(body: bytes) -> None:
        try:
            check_image(body, min_side=min_side)
        except InvalidImage as exc:
            if exc.reason.startswith("too large"):  # its header says so: asking again would not change it
                raise PermanentError(str(exc)) from None
            raise RetryableError(str(exc)) from None

    body = get_with_retries(job.url, policy=policy, limiter=limiter, check=check, max_bytes=MAX_IMAGE, hosts=hosts)
    write_file(out / job.rel, body)  # a file under its final name is always a verified image
