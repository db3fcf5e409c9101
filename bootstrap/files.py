"""Private, atomic file writes used by both sides.

A crash or a full disk must never leave a user's file half written: write a temporary file in
the same folder, fsync it, then rename it over the target. The `atomicwrites` package did this
but is archived, so these few lines stand in for it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing; the folder itself ends up mode 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """`path` (made 0600 if missing) locked exclusively for the block: on a host, one rdev helper at a time per user
    where two laptops may call at once. POSIX only, as the runtime side is."""
    import fcntl  # not on Windows, where the laptop side also imports this module

    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600, follow: bool = True) -> None:
    """Replace `path` with `data` in one step; a symlink is followed so a dotfile link survives, unless `follow` is
    False: rdev's own private files (a token, a state record) replace a link planted in their place instead of
    writing where it points."""
    write_together({path: data}, mode, follow)


class NotPutBack(OSError):
    """A write of several files failed, and some of them could not be put back as they were."""


def write_together(changes: dict[Path, bytes], mode: int = 0o600, follow: bool = True) -> None:
    """Replace several files so that either all change or none does.

    Every new file, and a copy of every old one, is written and synced beside its target before
    the first rename, so a full disk stops the write while nothing has changed yet; a rename that
    fails puts the old copies back with renames, which need no space. An OSError names the target,
    never a temporary file; NotPutBack says the files may now disagree. A file that already holds its data with
    `mode` is left as it is: a reconnect rewrites nothing, and an editor watching its settings sees no change.
    """
    changes = {path: data for path, data in changes.items() if not _holds(path, data, mode, follow)}
    staged: list[tuple[Path, Path, Path | None]] = []  # (new, target, copy of the old one)
    replaced: list[tuple[Path, Path | None]] = []
    try:
        for path, data in changes.items():
            target = Path(os.path.realpath(path) if follow else os.path.abspath(path))
            new = _staged(target, data, mode)
            staged.append((new, target, None))
            if target.is_file() and (follow or not target.is_symlink()):
                copy = _staged(target, _named(target, target.read_bytes), stat.S_IMODE(target.stat().st_mode))
                staged[-1] = (new, target, copy)
        for new, target, old in staged:
            _named(target, os.replace, new, target)
            replaced.append((target, old))
    except BaseException as failure:
        not_back = _put_back(replaced)
        for new, _, old in staged:
            for temporary in (new, old):
                if temporary is not None:
                    temporary.unlink(missing_ok=True)
        if not_back and isinstance(failure, OSError):
            raise NotPutBack(failure.errno, f"{failure.strerror}; {', '.join(not_back)} could not be put back",
                             failure.filename) from None
        raise
    for _, _, old in staged:
        if old is not None:
            old.unlink(missing_ok=True)
    for folder in {target.parent for _, target, _ in staged}:
        _sync_folder(folder)


def _holds(path: Path, data: bytes, mode: int, follow: bool) -> bool:
    """Whether `path` is a file with exactly `data` and the permission bits `mode` already (a link, when links are
    not followed, is not)."""
    try:
        status = os.stat(path) if follow else os.lstat(path)
        if not stat.S_ISREG(status.st_mode) or status.st_size != len(data) or stat.S_IMODE(status.st_mode) != mode:
            return False
        with open(path, "rb") as handle:
            return handle.read() == data
    except OSError:
        return False


def _put_back(replaced: list[tuple[Path, Path | None]]) -> list[str]:
    """Undo the renames done so far, each one tried; the files that could not be put back."""
    failed = []
    for target, old in reversed(replaced):
        try:
            if old is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(old, target)
        except OSError:
            failed.append(str(target))
    return failed


def _staged(target: Path, data: bytes, mode: int) -> Path:
    """`data` in a synced temporary file beside `target`, with `mode`."""
    fd, name = _named(target, tempfile.mkstemp, prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            _named(target, handle.write, data)
            _named(target, handle.flush)
            _named(target, os.fsync, handle.fileno())
        os.chmod(temporary, mode)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _named(target: Path, call, *args, **kwargs):
    """`call(...)`, with an OSError re-raised under the target's name rather than a temporary file's."""
    try:
        return call(*args, **kwargs)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(target)) from None


def _sync_folder(folder: Path) -> None:
    """Make the renames durable; every file is already in place, so a failure here changes nothing."""
    if os.name != "posix":
        return
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
