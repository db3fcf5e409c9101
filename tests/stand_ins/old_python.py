"""An old Python first on a test user's PATH, as on RHEL/Rocky 8 (python3 is 3.6), with or without a newer
python3.X beside it.

pyenv's build of 3.6 lives under /root, which a test user cannot read, and loads a shared libpython: the tests use
a copy anyone can read, started by a wrapper that puts its `lib` on LD_LIBRARY_PATH.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from client_side.ssh.shipped import PYTHONS

PYENV_36 = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions" / "3.6.15"


@contextmanager
def python36() -> Iterator[Path]:
    """A readable copy of pyenv's Python 3.6 and a wrapper that runs it: the wrapper's path."""
    root = Path(tempfile.mkdtemp(prefix="rdev-py36-", dir="/tmp"))
    try:
        shutil.copytree(PYENV_36, root / "py", symlinks=True)
        for path in [root, *root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o005 | (0o050 if path.is_dir() else 0))
        wrapper = root / "python3.6"
        wrapper.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH="{root}/py/lib" exec "{root}/py/bin/python3.6" "$@"\n')
        wrapper.chmod(0o755)
        yield wrapper
    finally:
        shutil.rmtree(root, ignore_errors=True)


def put_first(user: str, home: Path, python: Path, newer_beside: bool) -> None:
    """Make `python` the user's python3, first on PATH from the shell's rc file (before Debian's .bashrc returns
    for a non-interactive shell); without `newer_beside`, every python3.X rdev looks for is it too."""
    folder = home / "bin"
    folder.mkdir(exist_ok=True)
    for name in PYTHONS if not newer_beside else ("python3",):
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(python)
    bashrc = home / ".bashrc"
    bashrc.write_text('PATH="$HOME/bin:$PATH"\n' + (bashrc.read_text() if bashrc.exists() else ""))
    for path in (folder, bashrc):
        shutil.chown(path, user, user)
