"""Finding the tunnel binaries, the same way on both sides.

An explicit path always wins, then the environment variable (`RDEV_CLOUDFLARED`), then the
machine's PATH, and last pycloudflared's copy, downloaded (with a progress bar) if missing.
"""

from __future__ import annotations

import os
import shutil


class BinaryUnavailable(Exception):
    """No usable binary; the message says why and what to do."""


def cloudflared(explicit: str | None = None) -> str:
    chosen = explicit or os.environ.get("RDEV_CLOUDFLARED")
    if chosen:
        found = shutil.which(chosen)
        if not found:
            raise BinaryUnavailable(f"cloudflared was given as {chosen!r}, which is not an executable: fix the path.")
        return os.path.abspath(found)
    found = shutil.which("cloudflared")
    if found:
        return os.path.abspath(found)
    return _pycloudflared()


def _pycloudflared() -> str:
    try:
        from pycloudflared.util import download, get_info
    except ImportError:
        raise BinaryUnavailable("cloudflared is not installed: install it or 'pip install pycloudflared', "
                                "or pass its path with --cloudflared.") from None
    try:
        info = get_info()
    except RuntimeError as err:
        raise BinaryUnavailable(f"pycloudflared has no cloudflared for this machine ({err}): "
                                "install cloudflared yourself and pass --cloudflared PATH.") from None
    if os.access(info.executable, os.X_OK):
        return info.executable
    try:
        return download(info)
    except OSError as err:
        raise BinaryUnavailable(f"Downloading cloudflared failed ({err}): install it yourself and pass --cloudflared PATH.") from None
