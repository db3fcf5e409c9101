"""Editors' server archives downloaded on this laptop, for a host that cannot reach the download server (a compute
node, a school server without internet): VS Code's own answer there is to download locally and copy over
(`remote.SSH.localServerDownload`), and rdev does the same before the editor connects.

Each archive is kept in rdev's cache folder under its URL's name, so a second host of the same commit costs no
download. It is downloaded beside its final name and renamed there only once it is whole (as long as the server's
Content-Length says); a cut download never takes the name. The standard library's urllib does it: one streamed
GET with a size check needs no HTTP library of its own. As on the host (bootstrap.editor_servers), only https is
taken from a mirror unless it is on loopback or the user accepts plain http, and no more than MAX_DOWNLOAD bytes:
the host checks what it unpacks, but the laptop must not fill its own disk either.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from bootstrap import editor_servers
from bootstrap.files import ensure_private_dir
from bootstrap.validate import InvalidValue
from client_side.errors import BadInput, RdevError, split
from client_side.local import paths

TIMEOUT = 30  # seconds without a byte before a download is given up


def cached(url: str) -> Path:
    """The archive at `url`, from the cache or downloaded into it; OSError or ValueError when it cannot be had,
    BadInput for plain http the user did not accept, RdevError for a download too large to be an editor's server.
    Only http(s) is fetched (urllib would open file:// too)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{url[:60]!r} is not a download address")
    try:
        editor_servers.check_source(url, editor_servers.insecure_allowed(os.environ))
    except InvalidValue as err:
        raise BadInput(*split(str(err))) from None
    folder = paths.editor_server_cache()
    ensure_private_dir(folder)
    kept = folder / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".tar.gz")
    if kept.is_file():
        return kept
    import urllib.request

    handle, partial = tempfile.mkstemp(prefix=".download-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            try:
                editor_servers.save(answer, out, answer.headers.get("Content-Length"))
            except editor_servers.TooLarge as err:
                raise RdevError(*split(str(err))) from None
        with open(partial, "rb") as got:
            if got.read(2) != b"\x1f\x8b":  # a captive portal's page is no gzip archive, and must not be kept
                raise ValueError(f"{url} did not answer with an archive")
        os.replace(partial, kept)
    finally:
        Path(partial).unlink(missing_ok=True)
    return kept
