"""Tunnel providers: how the laptop reaches the private sshd.

Every provider takes the local sshd port and answers with the public `Endpoint` that goes into
the ticket. The supervisor only needs `start`, `alive` and `stop`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from colab_side.errors import ServeError

PROVIDERS = ("direct", "cloudflared", "ngrok")


@dataclass(frozen=True)
class Endpoint:
    """Where the laptop connects: the ticket's tunnel, host and port."""

    tunnel: str
    host: str
    port: int


class Tunnel(ABC):
    name: str

    def prepare(self) -> None:
        """Slow set-up (finding or downloading a binary) that can run while sshd is installed."""

    @abstractmethod
    def start(self, local_port: int) -> Endpoint:
        """Expose 127.0.0.1:`local_port` (or the listen address) and return the public endpoint."""

    @abstractmethod
    def alive(self) -> bool:
        """False once the tunnel has died and needs a restart."""

    @abstractmethod
    def stop(self) -> None:
        """End the tunnel; safe to call twice."""


def make_tunnel(name: str, *, listen: str, state: Path, binary: str | None = None, hostname: str | None = None,
                token: str | None = None) -> Tunnel:
    if hostname and name != "cloudflared":
        raise ServeError("A hostname is for a named cloudflared tunnel only: leave out --hostname or use --tunnel cloudflared.", 2)
    if name == "direct":
        from colab_side.tunnels.direct import DirectTunnel

        return DirectTunnel(listen)
    if name == "cloudflared":
        from colab_side.tunnels.cloudflared import CloudflaredTunnel

        return CloudflaredTunnel(state, binary, hostname, token)
    if name == "ngrok":
        from colab_side.tunnels.ngrok import NgrokTunnel

        return NgrokTunnel(state, binary, token)
    raise ServeError(f"Unknown tunnel {name!r}: choose one of {', '.join(PROVIDERS)}.", 2)
