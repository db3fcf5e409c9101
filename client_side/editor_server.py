"""Which editor server the remote should fetch ahead: the laptop's editor and its exact commit.

`EDITOR --version` prints the version, the commit and the laptop's architecture, one per line
(docs/editor-servers.md); the remote picks its own architecture. Only VS Code and Insiders are
fetched ahead (bootstrap/editor_servers.py says why the others are not).
"""

from __future__ import annotations

import os
import subprocess

from bootstrap import editor_servers
from bootstrap.validate import InvalidValue
from client_side import shipped
from client_side.editor import Editor

FETCH_TIMEOUT = 300  # a server is tens of MB; a host that cannot fetch it says so well before

_QUALITY = {"code": "stable", "code-insiders": "insider"}


def spec(editor: Editor | None) -> str | None:
    """EDITOR:QUALITY:COMMIT for `editor`, or None when there is none to fetch (or it would not say)."""
    quality = _QUALITY.get(editor.kind.name) if editor else None
    if editor is None or quality is None:
        return None
    try:
        lines = subprocess.run([editor.path, "--version"], capture_output=True, text=True, timeout=15,
                               stdin=subprocess.DEVNULL).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return None
    try:
        return editor_servers.parse(f"code:{quality}:{lines[1].strip()}").text() if len(lines) > 1 else None
    except InvalidValue:
        return None


def fetch_on(name: str, editor: Editor | None) -> str | None:
    """Have host `name` fetch `editor`'s server before the editor connects; the line to show (None
    when there is nothing to fetch). A failure changes nothing: the editor then fetches it itself."""
    wanted = spec(editor)
    if wanted is None:
        return None
    mirror = os.environ.get(editor_servers.BASE_VARIABLE)
    try:
        result = shipped.run(name, "prefetch", wanted, *([mirror] if mirror else []), timeout=FETCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"Editor server: not fetched (no answer within {FETCH_TIMEOUT} s); the editor downloads it itself."
    said = [line for line in result.stdout.decode(errors="replace").splitlines() if line.startswith("Editor server:")]
    if said:
        return "".join(c if c.isprintable() else "?" for c in said[-1])
    return "Editor server: not fetched (the host could not run rdev's fetch); the editor downloads it itself."
