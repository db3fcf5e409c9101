"""Tunnel providers: how the laptop reaches the private sshd.

Every provider takes the local sshd port and answers with the public `Endpoint` that goes into
the ticket. The supervisor only needs `start` and `alive`; `stop` (state.py) ends a tunnel from any process.
"""

from __future__ import annotations

from colab_side.errors import ServeError
from colab_side.state import StateFolder
from colab_side.tunnels.base import Endpoint, Tunnel

__all__ = ["PROVIDERS", "Endpoint", "Tunnel", "make_tunnel"]

PROVIDERS = ("direct", "cloudflared", "ngrok")


def make_tunnel(name: str, *, listen: str, state: StateFolder, binary: str | None = None, hostname: str | None = None,
                token: str | None = None) -> Tunnel:
    if hostname and name != "cloudflared":
        raise ServeError("A hostname is for a named cloudflared tunnel only: leave out --hostname or use --tunnel cloudflared.", 2)
    # Each provider is imported when chosen: a start carries only its own.
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
