"""Progress of a long step over many files (listing a folder, reading its sizes, decoding its images):
a log line every few seconds with the count, the rate and, when the total is known, the time left.

A step that ends within the first interval says nothing; the CLI's logging puts the lines on the
console, before Ray starts.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

EVERY_S = 5.0  # seconds between two lines of one step


class Progress:
    """Counts what a step has done; `add` logs a line when EVERY_S seconds passed since the last."""

    def __init__(self, what: str, total: int | None = None, unit: str = "images", every: float | None = None):
        self.what, self.total, self.unit = what, total, unit
        self.every = EVERY_S if every is None else every
        self.done = 0
        self.start = time.monotonic()
        self._next = self.start + self.every

    def add(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """`decoding DIR: 25,600 of 100,000 images (26 %), 2,540 a second, about 29 s left`."""
        seconds = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.done / seconds
        if self.total:
            left = f", about {(self.total - self.done) / rate:.0f} s left" if rate > 0 else ""
            return (f"{self.what}: {self.done:,} of {self.total:,} {self.unit} ({100 * self.done / self.total:.0f} %), "
                    f"{rate:,.0f} a second{left}")
        return f"{self.what}: {self.done:,} {self.unit} so far, {rate:,.0f} a second"
