"""The laptop's cache of editors' server archives, for hosts without internet: only downloads, only archives,
only whole ones."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from client_side.editors import archives
from client_side.local import paths

GZIP = b"\x1f\x8b" + b"\x00" * 30


class _Answers(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, tuple[bytes, int | None]]] = {}  # path -> (body, Content-Length to claim)

    def do_GET(self) -> None:
        body, length = self.bodies[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_archive_is_downloaded_once_and_kept_private(home: Path, web: str) -> None:
    _Answers.bodies = {"/a": (GZIP, None)}
    first = archives.cached(f"{web}/a")
    assert first.read_bytes() == GZIP and first.parent == paths.editor_server_cache()
    assert first.stat().st_mode & 0o777 == 0o600 and first.parent.stat().st_mode & 0o777 == 0o700
    _Answers.bodies = {}  # a second ask is answered from the cache
    assert archives.cached(f"{web}/a") == first


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x.tar.gz", "/etc/passwd"])
def test_only_download_addresses_are_fetched(home: Path, url: str) -> None:
    with pytest.raises(ValueError, match="is not a download address"):
        archives.cached(url)


def test_a_page_that_is_no_archive_is_not_kept(home: Path, web: str) -> None:
    _Answers.bodies = {"/portal": (b"<html>log in to the Wi-Fi</html>", None)}
    with pytest.raises(ValueError, match="did not answer with an archive"):
        archives.cached(f"{web}/portal")
    assert list(paths.editor_server_cache().iterdir()) == []


def test_a_download_cut_short_is_not_kept(home: Path, web: str) -> None:
    _Answers.bodies = {"/cut": (GZIP, len(GZIP) + 100)}
    with pytest.raises((ValueError, OSError)):
        archives.cached(f"{web}/cut")
    assert list(paths.editor_server_cache().iterdir()) == []
