"""What every tunnel provider is: something that exposes the local sshd port as a public `Endpoint`."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """Where the laptop connects: the ticket's tunnel, host and port."""

    tunnel: str
    host: str
    port: int


class Tunnel(ABC):
    name: str
    # Whether `prepare` finds (or downloads) a binary: only then is it a step worth timing.
    has_binary = False

    def prepare(self) -> None:
        """Slow set-up (finding or downloading a binary) that can run while sshd is installed."""

    @abstractmethod
    def start(self, local_port: int, halt: threading.Event | None = None) -> Endpoint:
        """Expose 127.0.0.1:`local_port` (or the listen address) and return the public endpoint;
        give up, leaving nothing running, once `halt` is set (the supervisor is stopping)."""

    @abstractmethod
    def alive(self) -> bool:
        """False once the tunnel has died and needs a restart."""
