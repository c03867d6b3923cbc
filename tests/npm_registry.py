"""A local npm registry on 127.0.0.1 for the fetch tests of npm packages, and the tarballs it serves."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def tar_gz(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A gzipped tar of regular files (name -> bytes) and symbolic links (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def integrity(body: bytes) -> str:
    """npm's dist.integrity of a tarball, worked out here with hashlib."""
    return "sha512-" + base64.b64encode(hashlib.sha512(body).digest()).decode()


class FakeRegistry:
    """GET /<pkg>/<version> (the version record) and /<pkg>/-/<pkg>-<version>.tgz, as npm does,
    for one package and the given versions, all serving `tarball`. `integrity` is what the version
    record lists; with `trickle` set, a tarball is sent 1 KiB at a time, `trickle` seconds apart."""

    def __init__(self, package: str, tarball: bytes, versions: tuple[str, ...]):
        self.package, self.versions = package, versions
        self.tarball = tarball
        self.integrity = integrity(tarball)
        self.trickle: float | None = None
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with fake.lock:
                    fake.requests[self.path] += 1
                body, code = fake.answer(self.path)
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    fake.send(self, body)
                except OSError:  # the client gave up on a trickled body
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str) -> tuple[bytes, int]:
        package = self.package
        for version in self.versions:
            if path == f"/{package}/{version}":
                tarball = f"{self.url}/{package}/-/{package}-{version}.tgz"
                record = {"name": package, "version": version,
                          "dist": {"integrity": self.integrity, "tarball": tarball}}
                return json.dumps(record).encode(), 200
            if path == f"/{package}/-/{package}-{version}.tgz":
                return self.tarball, 200
        return b"not found", 404

    def send(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if self.trickle is None or len(body) < 1024:
            handler.wfile.write(body)
            return
        for start in range(0, len(body), 1024):
            handler.wfile.write(body[start:start + 1024])
            handler.wfile.flush()
            time.sleep(self.trickle)

    def tarball_requests(self) -> int:
        return sum(n for path, n in self.requests.items() if path.endswith(".tgz"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
