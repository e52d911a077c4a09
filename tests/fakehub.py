"""A local HTTP server that plays the model hub's resolve endpoint (HF_ENDPOINT=http://127.0.0.1:PORT)."""

from __future__ import annotations

import hashlib
import http.server
import threading

REPO_ID, REV, FILE = "acme/tiny-GGUF", "a" * 40, "tiny-F32.gguf"


class FakeHub(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, payload: bytes, port: int):
        super().__init__(("127.0.0.1", port), _Handler)
        self.payload = payload
        self.mode = "ok"  # ok | drop_once | corrupt
        self.requests: list[tuple[str, str | None]] = []
        self.paths: list[str] = []
        self.route = f"/{REPO_ID}/resolve/{REV}/{FILE}"  # the one file it serves


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args):  # quiet
        pass

    def _known(self) -> bool:
        if self.path != self.server.route:
            self.send_error(404)
            return False
        return True

    def _head(self, status: int, start: int) -> None:
        data = self.server.payload
        self.send_response(status)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", REV)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()

    def do_HEAD(self):
        self.server.requests.append(("HEAD", None))
        if self._known():
            self._head(200, 0)

    def do_GET(self):
        rng = self.headers.get("Range")
        self.server.requests.append(("GET", rng))
        self.server.paths.append(self.path)
        if not self._known():
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.server.payload[start:]
        if self.server.mode == "corrupt":
            body = body[:-10] + b"X" * 10
        self._head(206 if start else 200, start)
        if self.server.mode == "drop_once":
            self.server.mode = "ok"
            self.wfile.write(body[: len(body) * 2 // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # the network goes away mid-transfer
            return
        self.wfile.write(body)


def serve(payload: bytes, port: int) -> FakeHub:
    server = FakeHub(payload, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def catalog_entry(payload: bytes) -> dict:
    """A catalog entry for the one file the fake hub serves."""
    return {"name": "tiny", "title": "Tiny", "repo": REPO_ID, "revision": REV, "licence": "MIT", "context_length": 512,
            "params_b": 0.001, "recommended": "F32",
            "files": {"F32": {"filename": FILE, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}}}
