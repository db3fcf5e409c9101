"""The locks that keep two `rdev` runs from stepping on each other.

`changing_files` is held around every change to rdev's files, so writes never interleave.
`setting_up(name)` is held while one run sets a host up end to end (write, master connection,
probe), so that concurrent connects to one host do not close or race each other's master.
filelock is imported inside, since most commands never take a lock and its import is slow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bootstrap.files import ensure_private_dir
from client_side.errors import RdevError
from client_side.local import paths

FILES_TIMEOUT = 30.0
# A setup may wait for a whole probe of another one (PROBE_TIMEOUT) and a password prompt.
SETUP_TIMEOUT = 300.0


@contextmanager
def changing_files() -> Iterator[None]:
    ensure_private_dir(paths.ssh_dir())
    ensure_private_dir(paths.rdev_ssh_dir())
    with _held(paths.lock_file(), FILES_TIMEOUT, "Another rdev is changing the SSH config"):
        yield


@contextmanager
def setting_up(name: str) -> Iterator[None]:
    lock = paths.host_lock_file(name)
    ensure_private_dir(lock.parent)
    with _held(lock, SETUP_TIMEOUT, f"Another rdev is setting up {name}"):
        yield


@contextmanager
def _held(path: Path, timeout: float, who: str) -> Iterator[None]:
    from filelock import FileLock, Timeout

    # One lock object per path in this process, so a holder may take it again (it counts, not blocks).
    lock = FileLock(str(path), timeout=timeout, mode=0o600, is_singleton=True)
    try:
        lock.acquire()
    except Timeout:
        raise RdevError(f"{who} (lock {path})", "wait for it to finish and run again.") from None
    try:
        yield
    finally:
        lock.release()
