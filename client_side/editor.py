"""Finding the editor and opening a remote folder in it over Remote-SSH."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from client_side.errors import BadInput, RdevError

DEFAULT_EDITORS = ("code",)


def find(preferred: str | None = None) -> str | None:
    """`--editor` or else `RDEV_EDITOR` (a name on PATH or a path) wins; else the first default editor on PATH."""
    chosen = preferred or os.environ.get("RDEV_EDITOR")
    if chosen:
        found = shutil.which(chosen)
        if not found:
            raise BadInput(f"The editor {chosen!r} (from --editor or RDEV_EDITOR) is not an executable: name one on PATH or give its full path.")
        return found
    return next((found for e in DEFAULT_EDITORS if (found := shutil.which(e))), None)


def command(editor: str, name: str, folder: str) -> list[str]:
    return [editor, "--remote", f"ssh-remote+{name}", folder]


def open_folder(name: str, folder: str, editor: str | None) -> str:
    """Open `folder` on `name` with the `editor` that `find` gave; return a line for the user (what ran, or what to run)."""
    if editor is None:
        return f"No editor found on PATH; open it yourself with: {shlex.join(command('code', name, folder))}"
    argv = command(editor, name, folder)
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RdevError(f"Starting the editor failed ({err}): run it yourself: {shlex.join(argv)}") from None
    if result.returncode != 0:
        raise RdevError(f"The editor exited with code {result.returncode}: run it yourself to see why: {shlex.join(argv)}")
    return f"Opened: {shlex.join(argv)}"
