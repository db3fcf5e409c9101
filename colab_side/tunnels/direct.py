"""No tunnel: the laptop reaches sshd on its own address (tailnet, LAN, or this machine)."""

from __future__ import annotations

import socket
import threading

from colab_side.tunnels.base import Endpoint, Tunnel


class DirectTunnel(Tunnel):
    name = "direct"

    def __init__(self, listen: str) -> None:
        self.listen = listen

    def start(self, local_port: int, halt: threading.Event | None = None) -> Endpoint:
        # Listening on every address says nothing about which one the laptop can reach; the
        # machine's own name is the best guess, and tailnets resolve it.
        host = socket.getfqdn() if self.listen in ("0.0.0.0", "::") else self.listen
        return Endpoint("direct", host, local_port)

    def alive(self) -> bool:
        return True
