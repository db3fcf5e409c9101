"""The runtime side: a private sshd behind a tunnel, and the ticket that tells the laptop how to reach it.

Standard library only, so the notebook cell can import it right after `pip install`. The server is
loaded on first use (PEP 562), so that running one small module of the package, such as
`colab_side.kernel_env` over SSH, does not pay for all of it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Server", "serve", "stop"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from colab_side import server

        return getattr(server, name)
    raise AttributeError(f"module 'colab_side' has no attribute {name!r}")
