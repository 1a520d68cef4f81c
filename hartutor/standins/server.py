"""A small HTTP server for a mirror folder: byte ranges, and a switch to break transfers.

Serves files from one folder on the loopback interface, with ``Range`` requests (so downloads
resume as from GitHub's and UCF's servers) and, to rehearse a flaky network,
``break_first=N``: the first transfer of each file is cut after ``N`` bytes. Paths are
resolved inside the folder; anything else is 404.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


class _MirrorHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _MirrorServer

    def log_message(self, *args: object) -> None:  # quiet: tests and notebooks read stdout
        pass

    def _file(self) -> Path | None:
        relative = self.path.split("?", 1)[0].lstrip("/")
        candidate = (self.server.root / relative).resolve()
        if not candidate.is_relative_to(self.server.root) or not candidate.is_file():
            return None
        return candidate

    def do_GET(self) -> None:
        path = self._file()
        if path is None:
            self.send_error(404, "no such file")
            return
        size = path.stat().st_size
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        limit = size - start
        with self.server.lock:
            first = path not in self.server.broken
            if first and self.server.break_first is not None:
                self.server.broken.add(path)
                limit = min(limit, self.server.break_first)
        with open(path, "rb") as handle:
            handle.seek(start)
            sent = 0
            while sent < limit:
                chunk = handle.read(min(_CHUNK, limit - sent))
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
        self.server.requests.append((self.path, self.headers.get("Range"), sent))
        if sent < size - start:  # a broken transfer: close without sending the rest
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class _MirrorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, break_first: int | None, port: int = 0):
        super().__init__(("127.0.0.1", port), _MirrorHandler)
        self.root = root
        self.break_first = break_first
        self.broken: set[Path] = set()
        self.requests: list[tuple[str, str | None, int]] = []
        self.lock = threading.Lock()


@contextlib.contextmanager
def serve(
    folder: str | os.PathLike[str], *, port: int = 0, break_first: int | None = None
) -> Iterator[_MirrorServer]:
    """Serve ``folder`` on ``127.0.0.1`` (``port``; 0: a free one) while the block runs.

    The server's ``url`` attribute is its base URL (for ``HARTUTOR_MIRROR``) and
    ``requests`` lists ``(path, Range header, bytes sent)`` per request.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        from hartutor.errors import DataError

        raise DataError(f"{root} is not a folder: build the stand-ins first")
    server = _MirrorServer(root, break_first, port)
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
