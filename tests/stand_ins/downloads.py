"""A stand-in for the editors' download servers (update.code.visualstudio.com and VSCodium's GitHub
releases), on loopback: the same paths, archives laid out as the real ones are (a top folder
`vscode-server-linux-x64/` holding `bin/code-server`, `node`, `product.json`; the CLI as one file
`code`; VSCodium's flat, its entries starting with `./`), and, for the benchmark, a rate limit."""

from __future__ import annotations

import functools
import io
import re
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def server_archive(commit: str, padding: int = 0, top: str = "vscode-server-linux-x64") -> bytes:
    """The server's tarball; `padding` bytes of incompressible filler make it as big as a real one."""
    import os

    files = {f"{top}/bin/code-server": f"#!/bin/sh\necho 1.99.0\necho {commit}\necho x64\n".encode(),
             f"{top}/node": b"#!/bin/sh\necho v20\n",
             f"{top}/product.json": f'{{"commit": "{commit}", "quality": "stable"}}'.encode()}
    if padding:
        files[f"{top}/node_modules/filler.bin"] = os.urandom(padding)
    return _tar(files, executable=("code-server", "node"))


def codium_archive(commit: str) -> bytes:
    """VSCodium's server tarball, made with `tar czf ... .` from inside its build folder."""
    return _tar({"./": None, "./bin/": None, "./bin/codium-server": f"#!/bin/sh\necho {commit}\n".encode(),
                 "./node": b"#!/bin/sh\necho v20\n",
                 "./product.json": f'{{"commit": "{commit}", "quality": "stable"}}'.encode()},
                executable=("codium-server", "node"))


def cli_archive(name: str = "code") -> bytes:
    """The CLI's tarball: one file, `code` (`code-insiders` for Insiders)."""
    return _tar({name: b"#!/bin/sh\necho code cli\n"}, executable=(name,))


def _tar(files: dict[str, bytes | None], executable: tuple[str, ...]) -> bytes:
    """A gzipped tar of `files` (None: a folder), in that order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.size = len(data)
            info.mode = 0o755 if name.rsplit("/", 1)[-1] in executable else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Zeros(io.RawIOBase):
    """`size` zero bytes, made as they are read: a member of gigabytes without gigabytes in memory or on disk."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def crafted(*entries: tuple[str, str, str | bytes | int]) -> bytes:
    """A gzipped tar of hand-made entries, as a hostile mirror would serve: (name, kind, what) with kind `file`
    (what: its bytes), `zeros` (what: its size, zeros made lazily and compressed at level 1, so that 2 GB is 10 MB
    and a few seconds), `dir`, `symlink` or `hardlink` (what: the target), `fifo` or `chardev`."""
    types = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
             "chardev": tarfile.CHRTYPE}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, kind, what in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o775 if kind == "dir" else 0o664  # group-writable, as a umask of 002 makes them
            if kind == "file":
                assert isinstance(what, bytes)
                info.size = len(what)
                tar.addfile(info, io.BytesIO(what))
            elif kind == "zeros":
                assert isinstance(what, int)
                info.size = what
                tar.addfile(info, Zeros(what))
            else:
                info.type = types[kind]
                info.linkname = what if isinstance(what, str) else ""
                tar.addfile(info)
    return buffer.getvalue()


class Downloads:
    """Serves VS Code's server and CLI for any commit, and VSCodium's server (of `codium_commit`: its URL
    names a release, not a commit) for any release; counts requests; `rate` in bytes per second."""

    codium_commit = "c" * 40

    def __init__(self, padding: int = 0, rate: float | None = None) -> None:
        self.requests: list[str] = []
        self.padding = padding
        self.rate = rate
        self.cut_after: int | None = None  # bytes after which a download drops, Content-Length saying more
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = owner.answer(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                owner.send(self.wfile, body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @functools.lru_cache(maxsize=8)  # noqa: B019 (one stand-in per test; the filler is made once)
    def answer(self, path: str) -> bytes | None:
        codium = re.fullmatch(r"/VSCodium/vscodium/releases/download/([0-9.]+)/vscodium-reh-linux-(x64|arm64)-\1\.tar\.gz",
                              path)
        if codium:
            return codium_archive(self.codium_commit)
        found = re.fullmatch(r"/commit:([0-9a-f]{40})/(server-linux|cli-alpine)-(x64|arm64)/(stable|insider)", path)
        if not found:
            return None
        if found.group(2) == "server-linux":
            return server_archive(found.group(1), self.padding)
        return cli_archive("code" if found.group(4) == "stable" else "code-insiders")

    def send(self, out: io.BufferedIOBase, body: bytes) -> None:
        body = body[:self.cut_after] if self.cut_after is not None else body
        chunk = 64 * 1024
        for start in range(0, len(body), chunk):
            try:
                out.write(body[start:start + chunk])
            except (BrokenPipeError, ConnectionResetError):
                return  # the client hung up (a download it refused): no error of the stand-in's
            if self.rate:
                time.sleep(chunk / self.rate)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
