"""The runtime side: a private sshd behind a tunnel, and the ticket that tells the laptop how to reach it.

Standard library only, so the notebook cell can import it right after `pip install`. The server is
loaded on first use (PEP 562), so that running one small module of the package, such as
`colab_side.notebook.kernel_env` over SSH, does not pay for all of it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # as typing's, without importing typing on every start; type checkers take it as True
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Server", "fetch_editor_server", "serve", "stop"]


def fetch_editor_server(editor_server: str, state_dir: str | os.PathLike | None = None) -> None:
    """Start fetching the laptop's editor server (EDITOR:QUALITY:COMMIT) now, in the background: the cell
    does so first, so that the download also overlaps its pip install. serve(editor_server=) with the same
    value then reports this fetch rather than starting another."""
    from bootstrap.files import ensure_private_dir
    from colab_side import prefetch
    from colab_side.state import state_folder

    folder = state_folder(state_dir)
    ensure_private_dir(folder.root)
    prefetch.in_background(editor_server, folder.editor_server_log)


def __getattr__(name: str) -> Any:
    if name in ("Server", "serve", "stop"):
        from colab_side import server

        return getattr(server, name)
    raise AttributeError(f"module 'colab_side' has no attribute {name!r}")
