"""Private, atomic file writes used by both sides.

A crash or a full disk must never leave a user's file half written: write a temporary file in
the same folder, fsync it, then rename it over the target. The `atomicwrites` package did this
but is archived, so these few lines stand in for it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing; the folder itself ends up mode 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` in one step; a symlink is followed so a dotfile link survives."""
    write_together({path: data}, mode)


def write_together(changes: dict[Path, bytes], mode: int = 0o600) -> None:
    """Replace several files so that either all change or none does.

    Every new file is written and synced beside its target before the first rename; a rename
    that fails puts back the files already replaced. An OSError names the target, never a
    temporary file.
    """
    staged: list[tuple[Path, Path]] = []
    replaced: list[tuple[Path, bytes | None]] = []
    try:
        for path, data in changes.items():
            target = Path(os.path.realpath(path))
            staged.append((_staged(target, data, mode), target))
        for temporary, target in staged:
            before = target.read_bytes() if target.is_file() else None
            _named(target, os.replace, temporary, target)
            replaced.append((target, before))
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        for target, before in reversed(replaced):
            if before is None:
                target.unlink(missing_ok=True)
            else:
                write_together({target: before}, mode)
        raise
    for folder in {target.parent for _, target in staged}:
        _sync_folder(folder)


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
    if os.name == "posix":
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
