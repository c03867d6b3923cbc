"""`vaetune data fetch ygo` against a local fake of the YGOPRODeck API: retries on 5xx, timeouts
and truncated or corrupt bodies, permanent failures reported, resume without re-requests."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from vaetune.errors import UserError
from vaetune.fetch import RateLimiter, RetryPolicy, fetch_ygo

# A client timeout no ordinary reply of a local server comes near, even on a loaded machine: the
# exact request counts below hold only if nothing but the "slow" image ever times out.
FAST = RetryPolicy(retries=3, backoff=0.01, max_backoff=0.02, timeout=10)
STALL_GUARD_S = 300  # a hang guard: the "slow" image's stall ends when the client retries


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (42, 61)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


class FakeYgo:
    """A card-list endpoint and card images, each image name with a behaviour:

    ok: always fine; flaky: 500 twice, then fine; slow: its first request stalls until the client
    has given up on it and asked again (past the client timeout, whatever the machine's speed);
    truncated: twice a Content-Length larger than the body; corrupt: once half a PNG with a
    correct Content-Length; broken: always 500; missing: always 404.
    """

    def __init__(self, behaviours: dict[str, str]):
        self.behaviours = dict(behaviours)
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.retried = threading.Event()  # the "slow" image was asked for a second time
        self.images = {name: png_bytes((40 * i % 256, 90, 200)) for i, name in enumerate(behaviours)}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                try:
                    fake.handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def cards(self) -> list[dict]:
        frames = ["normal", "effect", "spell", "trap"]
        return [{"id": 1000 + i, "name": f"Card {name}", "type": "Effect Monster", "frameType": frames[i % 4],
                 "desc": "A test card.", "card_prices": [{"tcgplayer_price": "0.10"}],
                 "card_images": [{"id": 5000 + i, "image_url": f"{self.url}/images/{name}.png",
                                  "image_url_small": f"{self.url}/small/{name}.png",
                                  "image_url_cropped": f"{self.url}/cropped/{name}.png"}]}
                for i, name in enumerate(self.behaviours)]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests[h.path] += 1
            n = self.requests[h.path]
        if h.path == "/api":
            return self.send(h, 200, json.dumps({"data": self.cards()}).encode(), "application/json")
        if h.path == "/notjson":
            return self.send(h, 200, b"<html>hello</html>", "text/html")
        if h.path == "/error":
            return self.send(h, 400, json.dumps({"error": "No card matching your query was found"}).encode())
        name = h.path.rsplit("/", 1)[-1].removesuffix(".png")
        kind = self.behaviours.get(name)
        body = self.images.get(name, b"")
        if kind is None or kind == "missing":
            return self.send(h, 404, b"not found")
        if kind == "broken" or (kind == "flaky" and n <= 2):
            return self.send(h, 500, b"server error")
        if kind == "slow" and n >= 2:
            self.retried.set()
        if kind == "slow" and n == 1:
            self.retried.wait(STALL_GUARD_S)
        if kind == "truncated" and n <= 2:
            return self.send(h, 200, body[: len(body) // 2], "image/png", length=len(body))
        if kind == "corrupt" and n == 1:
            return self.send(h, 200, body[: len(body) // 2], "image/png")
        return self.send(h, 200, body, "image/png")

    @staticmethod
    def send(h, code: int, body: bytes, ctype: str = "text/plain", length: int | None = None) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)

    def image_requests(self, name: str) -> int:
        return self.requests[f"/images/{name}.png"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = FakeYgo({"ok1": "ok", "ok2": "ok", "flaky": "flaky", "slow": "slow", "truncated": "truncated",
                      "corrupt": "corrupt", "broken": "broken", "missing": "missing"})
    yield server
    server.close()


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_fetch_retries_verifies_and_reports(fake, tmp_path):
    out = tmp_path / "ygo"
    report = fetch_ygo(out, api=f"{fake.url}/api", concurrency=4, rate=None, policy=FAST, progress=False)

    assert report.downloaded == 6 and report.skipped == 0
    assert sorted(rel for rel, _ in report.failed) == ["spell/5006.png", "trap/5007.png"]  # broken, missing
    reasons = dict(report.failed)
    assert "HTTP 500" in reasons["spell/5006.png"] and "4 attempts" in reasons["spell/5006.png"]
    assert "HTTP 404" in reasons["trap/5007.png"]

    # Every file under its final name decodes; no partial file is left behind.
    images = [p for p in out.rglob("*.png")]
    assert len(images) == 6
    for path in images:
        with Image.open(path) as im:
            im.load()
            assert im.size == (42, 61)
    assert not list(out.rglob("*.part"))
    assert {p.parent.name for p in images} == {"normal", "effect", "spell", "trap"}

    # Transient failures were retried exactly as often as needed; 404 was not retried.
    assert fake.image_requests("ok1") == 1
    assert fake.image_requests("flaky") == 3
    assert fake.image_requests("slow") == 2
    assert fake.image_requests("truncated") == 3
    assert fake.image_requests("corrupt") == 2
    assert fake.image_requests("broken") == FAST.retries + 1
    assert fake.image_requests("missing") == 1

    failed = (out / "failed.txt").read_text()
    assert "spell/5006.png" in failed and "trap/5007.png" in failed and "/images/broken.png" in failed
    cards = json.loads((out / "cards.json").read_text())
    assert len(cards) == 8 and cards[0]["name"] == "Card ok1" and cards[0]["file"] == "normal/5000.png"
    assert "card_prices" not in cards[0]


@pytest.mark.slow
def test_resume_skips_complete_files_without_requests(fake, tmp_path):
    out = tmp_path / "ygo"
    fetch_ygo(out, api=f"{fake.url}/api", rate=None, policy=FAST, progress=False)
    before = Counter(fake.requests)
    (out / "normal" / "5000.png.part").write_bytes(b"half a file from a killed run")

    fake.behaviours["broken"] = "ok"  # the server recovered
    report = fetch_ygo(out, api=f"{fake.url}/api", rate=None, policy=FAST, progress=False)

    assert report.skipped == 6 and report.downloaded == 1
    assert [rel for rel, _ in report.failed] == ["trap/5007.png"]
    for name in ("ok1", "ok2", "flaky", "slow", "truncated", "corrupt"):
        assert fake.image_requests(name) == before[f"/images/{name}.png"], name
    assert fake.image_requests("broken") == before["/images/broken.png"] + 1
    assert (out / "spell" / "5006.png").is_file()

    fake.behaviours["missing"] = "ok"
    report = fetch_ygo(out, api=f"{fake.url}/api", rate=None, policy=FAST, progress=False)
    assert report.ok and report.downloaded == 1 and not (out / "failed.txt").exists()


def test_limit_and_art_crop(fake, tmp_path):
    report = fetch_ygo(tmp_path / "art", api=f"{fake.url}/api", limit=2, art="cropped", rate=None,
                       policy=FAST, progress=False)
    assert report.ok and report.downloaded == 2
    assert all_files(tmp_path / "art") == ["cards.json", "effect/5001.png", "normal/5000.png"]
    assert fake.requests["/cropped/ok1.png"] == 1 and fake.image_requests("ok1") == 0


def test_user_errors(fake, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write to the output folder"):
        fetch_ygo(blocker / "ygo", api=f"{fake.url}/api", policy=FAST)
    with pytest.raises(UserError, match="--api must be an http"):
        fetch_ygo(tmp_path / "o", api="db.ygoprodeck.com/cardinfo", policy=FAST)
    with pytest.raises(UserError, match="HTTP 404"):
        fetch_ygo(tmp_path / "o", api=f"{fake.url}/no/such/api", policy=FAST)
    with pytest.raises(UserError, match="did not answer JSON"):
        fetch_ygo(tmp_path / "o", api=f"{fake.url}/notjson", policy=FAST)
    with pytest.raises(UserError, match="HTTP 400"):
        fetch_ygo(tmp_path / "o", api=f"{fake.url}/error", policy=FAST)
    with pytest.raises(UserError, match="--concurrency"):
        fetch_ygo(tmp_path / "o", api=f"{fake.url}/api", concurrency=0)


def test_rate_limiter_spaces_requests_across_threads():
    # the slots the limiter grants are what a server sees as the earliest request starts; when a
    # thread actually wakes after its slot depends on the machine's load, so it is only checked
    # to be no earlier than the slot
    limiter = RateLimiter(50.0)
    slots: list[float] = []
    early: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(5):
            slot = limiter.wait()
            woke = time.monotonic()
            with lock:
                slots.append(slot)
                if woke < slot:
                    early.append(slot - woke)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not early, f"calls returned before their slot by {early} s"
    slots.sort()
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    assert len(slots) == 20
    assert min(gaps) >= 1 / 50 - 1e-9  # never two starts closer than 1/rate, whichever thread
    assert slots[-1] - slots[0] >= 19 / 50 - 1e-9


@pytest.mark.slow
def test_cli_subprocess_exit_codes(tmp_path):
    server = FakeYgo({"a": "ok", "b": "ok", "c": "missing"})
    try:
        out = tmp_path / "cli"
        cmd = [sys.executable, "-m", "vaetune.cli", "data", "fetch", "ygo", "--api", f"{server.url}/api",
               "--out", str(out), "--rate", "100", "--concurrency", "2"]
        first = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert first.returncode == 1, first.stderr
        assert "2 downloaded, 0 already present, 1 failed" in first.stdout
        assert "HTTP 404" in (out / "failed.txt").read_text()

        second = subprocess.run(cmd + ["--limit", "2"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert "0 downloaded, 2 already present, 0 failed" in second.stdout
        assert server.requests["/images/a.png"] == 1

        bad_cmd = [sys.executable, "-m", "vaetune.cli", "data", "fetch", "ygo", "--api", "nope", "--out", str(out)]
        bad = subprocess.run(bad_cmd, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "--api must be an http" in bad.stderr
    finally:
        server.close()
