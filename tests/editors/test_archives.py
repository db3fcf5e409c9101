"""The laptop's cache of editors' server archives, for hosts without internet: only downloads, only archives,
only whole ones."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bootstrap import editor_servers
from client_side.editors import archives
from client_side.errors import BadInput, RdevError
from client_side.local import paths

GZIP = b"\x1f\x8b" + b"\x00" * 30
UNSAID = -1  # a Content-Length not sent at all: the answer ends when the connection does


class _Answers(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, tuple[bytes, int | None]]] = {}  # path -> (body, Content-Length to claim)

    def do_GET(self) -> None:
        body, length = self.bodies[self.path]
        self.send_response(200)
        if length != UNSAID:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up on a download it refused

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


@pytest.mark.parametrize("length", [None, UNSAID], ids=["said", "unsaid"])
def test_a_download_larger_than_an_editor_server_can_be_is_not_kept(home: Path, web: str, length: int | None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Said in its Content-Length, it is refused before a byte is read; unsaid, as soon as it passes the cap."""
    monkeypatch.setattr(editor_servers, "MAX_DOWNLOAD", 4 << 20)
    _Answers.bodies = {"/big": (GZIP + b"\x00" * (5 << 20), length)}
    with pytest.raises(RdevError) as raised:
        archives.cached(f"{web}/big")
    assert raised.value.problem == "the download is over 4 MB, several times an editor's server"
    assert raised.value.fix == "check the download server, or the mirror RDEV_EDITOR_DOWNLOADS names"
    assert list(paths.editor_server_cache().iterdir()) == []


def test_a_download_of_the_cap_exactly_is_kept(home: Path, web: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(editor_servers, "MAX_DOWNLOAD", 1 << 20)
    _Answers.bodies = {"/full": (GZIP + b"\x00" * ((1 << 20) - len(GZIP)), UNSAID)}
    assert archives.cached(f"{web}/full").stat().st_size == 1 << 20


def test_plain_http_from_the_network_is_refused_unless_the_user_accepts_it(home: Path, web: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.0.0.0 reaches this machine's server, yet is no loopback address: it stands for a mirror on the network.
    url = web.replace("127.0.0.1", "0.0.0.0") + "/a"
    _Answers.bodies = {"/a": (GZIP, None)}
    with pytest.raises(BadInput) as raised:
        archives.cached(url)
    assert str(raised.value) == (f"{url!r} is plain http, which anyone on the way can alter: serve the mirror over "
                                 "https, or set RDEV_EDITOR_DOWNLOADS_INSECURE=1 to accept plain http")
    assert not list(paths.editor_server_cache().glob("*"))  # refused before anything, even the cache folder
    monkeypatch.setenv(editor_servers.INSECURE_VARIABLE, "1")
    assert archives.cached(url).read_bytes() == GZIP
