"""cloudflared: a quick tunnel (random *.trycloudflare.com name) or a named tunnel with a token.

pycloudflared's `try_cloudflare` only serves http://, so rdev runs the binary itself with `ssh://`.
"""

from __future__ import annotations

import os
import re
import threading

from bootstrap import binaries
from colab_side.environment import without_secrets
from colab_side.state import StateFolder
from colab_side.tunnels.base import Endpoint
from colab_side.tunnels.process import ProcessTunnel

_QUICK_HOST = re.compile(r"https://([a-z0-9-]+\.trycloudflare\.com)")
_CONNECTED = "Registered tunnel connection"


class CloudflaredTunnel(ProcessTunnel):
    name = "cloudflared"
    find_binary = staticmethod(binaries.cloudflared)

    def __init__(self, state: StateFolder, binary: str | None = None, hostname: str | None = None,
                 token: str | None = None) -> None:
        super().__init__(state, binary)
        self.hostname = hostname
        self.token = token
        self.found_host = hostname

    def start(self, local_port: int, halt: threading.Event | None = None) -> Endpoint:
        # No --pidfile: rdev records the pid with its start time itself (state.record_tunnel).
        argv = [self.binary, "tunnel", "--no-autoupdate"]
        env = without_secrets(dict(os.environ))
        if self.token:
            # The token goes through the environment, which `ps` does not show; cloudflared reads TUNNEL_TOKEN.
            env["TUNNEL_TOKEN"] = self.token
            argv += ["run", "--url", f"ssh://127.0.0.1:{local_port}"]
        else:
            argv += ["--url", f"ssh://127.0.0.1:{local_port}"]
        self.found_host = self.hostname  # a restarted quick tunnel gets a new name
        self._launch(argv, env, halt)
        assert self.found_host is not None  # _launch returns once cloudflared has said its hostname
        return Endpoint("cloudflared", self.found_host, 22)

    def _ready(self, line: str) -> bool:
        match = _QUICK_HOST.search(line)
        if match and not self.hostname:
            self.found_host = match.group(1)
        return _CONNECTED in line and bool(self.found_host)
