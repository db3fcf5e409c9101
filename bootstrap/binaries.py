"""Finding the tunnel binaries, the same way on both sides.

An explicit path always wins, then the environment variable (`RDEV_CLOUDFLARED`, `RDEV_NGROK`),
then the machine's PATH, and last the copy pycloudflared or pyngrok keeps, downloaded if missing.
"""

from __future__ import annotations

import os
import shutil


class BinaryUnavailable(Exception):
    """No usable binary: why (`problem`) and what to do (`fix`), apart, as the laptop's errors carry them."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}: {fix}")


def cloudflared(explicit: str | None = None) -> str:
    return given_or_on_path("cloudflared", explicit, "RDEV_CLOUDFLARED") or _pycloudflared()


def ngrok(explicit: str | None = None) -> str:
    return given_or_on_path("ngrok", explicit, "RDEV_NGROK") or _pyngrok()


def given_or_on_path(name: str, explicit: str | None, variable: str) -> str | None:
    chosen = explicit or os.environ.get(variable)
    if chosen:
        found = shutil.which(chosen)
        if not found:
            raise BinaryUnavailable(f"{name} was given as {chosen!r}, which is not an executable", "fix the path.")
        return os.path.abspath(found)
    found = shutil.which(name)
    return os.path.abspath(found) if found else None


def _pycloudflared() -> str:
    try:
        from pycloudflared.util import download, get_info
    except ImportError:
        raise BinaryUnavailable("cloudflared is not installed", "install it or 'pip install pycloudflared', "
                                "or pass its path with --cloudflared.") from None
    try:
        info = get_info()
    except RuntimeError as err:
        raise BinaryUnavailable(f"pycloudflared has no cloudflared for this machine ({err})",
                                "install cloudflared yourself and pass --cloudflared PATH.") from None
    if os.access(info.executable, os.X_OK):
        return info.executable
    try:
        return download(info)
    except OSError as err:
        raise BinaryUnavailable(f"Downloading cloudflared failed ({err})",
                                "install it yourself and pass --cloudflared PATH.") from None


def _pyngrok() -> str:
    try:
        from pyngrok import conf, installer
        from pyngrok.exception import PyngrokError
    except ImportError:
        raise BinaryUnavailable("ngrok is not installed", "install it or 'pip install pyngrok', "
                                "or pass its path with --ngrok.") from None
    path = conf.get_default().ngrok_path
    if os.access(path, os.X_OK):
        return path
    try:
        # Unsupported machines and failed downloads both end up here, with pyngrok's reason.
        installer.install_ngrok(path)
    except (PyngrokError, OSError) as err:
        raise BinaryUnavailable(f"Getting ngrok failed ({err})", "install it yourself and pass --ngrok PATH.") from None
    return path
