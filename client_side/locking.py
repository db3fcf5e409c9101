"""One lock around every change rdev makes to its files, so two `rdev` runs never interleave writes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from filelock import FileLock, Timeout

from bootstrap.files import ensure_private_dir
from client_side import paths
from client_side.errors import RdevError


@contextmanager
def changing_files() -> Iterator[None]:
    ensure_private_dir(paths.ssh_dir())
    ensure_private_dir(paths.rdev_ssh_dir())
    lock = FileLock(str(paths.lock_file()), timeout=30, mode=0o600)
    try:
        with lock:
            yield
    except Timeout:
        raise RdevError(f"Another rdev is changing the SSH config (lock {paths.lock_file()}): wait for it and run again.") from None
