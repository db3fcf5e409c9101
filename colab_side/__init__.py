"""The runtime side: a private sshd behind a tunnel, and the ticket that tells the laptop how to reach it.

Standard library only, so the notebook cell can import it right after `pip install`.
"""

from colab_side.server import Server, serve, stop

__all__ = ["Server", "serve", "stop"]
